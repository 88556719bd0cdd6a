"""The lssgen-mini pipeline folder shipped inside the package, and the calls it was made for.

`load_shipped_pipeline()` gives an `LSSStableDiffusion3Pipeline` (float32, CPU, offline) of the
folder `lssgen/mini/model/`, written by `lssgen mini assemble` (see `lssgen/mini/README.md`).
`MiniSettings` holds the call arguments the demo and the evaluation use: the native 256 px, and
the LSS setting that measured best at >= 1.5x (see `benchmarks/README.md`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs

SHIPPED_MODEL = Path(__file__).resolve().with_name("model")
# What `lssgen mini assemble` writes beside model_index.json: sizes and training runs.
MANIFEST_NAME = "lssgen_mini.json"


@attrs.frozen
class MiniSettings:
    """Call arguments for lssgen-mini: `plain()` is the stock call, `lss()` the LSS one."""

    size: int = 256
    num_inference_steps: int = 20
    guidance_scale: float = 4.0
    min_size: int = 128
    start_sigma: float = 0.6
    shorten_intermediate_steps: bool = True
    max_sequence_length: int = 1  # the model's fast setting (`lssgen.mini.train_text`)

    def plain(self, **overrides: Any) -> dict[str, Any]:
        call = {
            "height": self.size,
            "width": self.size,
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            "max_sequence_length": self.max_sequence_length,
        }
        return {**call, **overrides}

    def lss(self, **overrides: Any) -> dict[str, Any]:
        call = {
            **self.plain(),
            "min_size": self.min_size,
            "start_sigma": self.start_sigma,
            "shorten_intermediate_steps": self.shorten_intermediate_steps,
            "scaling_mode": "resnet",
        }
        return {**call, **overrides}


MINI_SETTINGS = MiniSettings()


def check_model_folder(folder: str | os.PathLike[str]) -> Path:
    """`folder` if it holds an assembled lssgen-mini pipeline, else a FileNotFoundError that says
    how to make one."""
    path = Path(folder)
    missing = [name for name in ("model_index.json", MANIFEST_NAME) if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} is not an lssgen-mini pipeline folder (missing {', '.join(missing)}); "
            "build one with `lssgen mini assemble --work WORK --output FOLDER` "
            "(see lssgen/mini/README.md)"
        )
    return path


def manifest(folder: str | os.PathLike[str] = SHIPPED_MODEL) -> dict[str, Any]:
    """What the folder was made from: `lssgen mini assemble`'s record (sizes, training runs)."""
    path = check_model_folder(folder) / MANIFEST_NAME
    return dict(json.loads(path.read_text(encoding="utf-8")))


def load_shipped_pipeline(folder: str | os.PathLike[str] = SHIPPED_MODEL, **kwargs: Any) -> Any:
    """The lssgen-mini `LSSStableDiffusion3Pipeline`, float32 on the CPU, loaded offline."""
    return load_mini_pipeline(check_model_folder(folder), **kwargs)


def load_mini_pipeline(folder: str | os.PathLike[str], **kwargs: Any) -> Any:
    """`LSSStableDiffusion3Pipeline.from_pretrained(folder)`, offline: float32 unless `kwargs`
    name a dtype (Diffusers loads models as float32 by default, whatever their stored dtype)."""
    # Lazy for start-up: Diffusers takes ~3 s to import; only building or loading models needs it.
    from lssgen_diffusers import LSSStableDiffusion3Pipeline

    return LSSStableDiffusion3Pipeline.from_pretrained(folder, local_files_only=True, **kwargs)
