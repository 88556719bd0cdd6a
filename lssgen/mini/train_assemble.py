"""Stage `assemble`: the trained parts as one Diffusers pipeline folder, ready to ship.

The folder is a stock `StableDiffusion3Pipeline` layout (`model_index.json`, `scheduler/`,
`text_encoder*/`, `tokenizer*/`, `transformer/`, `vae/`) plus `latent_upsampler/`, so
`LSSStableDiffusion3Pipeline.from_pretrained(folder)` loads it offline with no extra arguments
(the stock class loads it too and ignores the upsampler). The transformer and the VAE are stored
in float16 to stay within the 25 MB budget, the small rest in float32; Diffusers loads models as
float32 unless told otherwise, so a plain `from_pretrained` runs on CPU as is.

Scheduler: SD3's `FlowMatchEulerDiscreteScheduler` with a static `shift`. SD3 trains its 256 px
base (also 16 x 16 = 256 tokens) without a shift and only shifts for larger images
(shift = sqrt(tokens / 256)), so lssgen-mini's native 256 px gets shift 1.0 by default.

`lssgen_mini.json` records what the folder was made from (fingerprints of each work folder), the
component sizes and the call arguments the model was trained for (`CALL_KWARGS`).
`lssgen_call_defaults.json` holds the settings to call it with (`lssgen_diffusers.call_defaults`,
read by `lssgen generate`): the demo's LSS call.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from lssgen.mini.model import MANIFEST_NAME, MINI_SETTINGS
from lssgen.mini.train_text import CALL_KWARGS, load_text
from lssgen.mini.train_work import SUMMARY_NAME, Workdir, fingerprint, publish_folder
from lssgen_core.atomic import write_json_atomic
from lssgen_core.upsample import LatentUpsampler
from lssgen_core.upsample.io import CONFIG_NAME
from lssgen_diffusers.aligned_save import align_safetensors
from lssgen_diffusers.call_defaults import write_call_defaults

DEFAULT_SHIFT = 1.0
# Stored in the assembled dtype; the small rest stays float32, so a plain from_pretrained
# (Diffusers loads its models as float32 by default, Transformers in their stored dtype, the
# upsampler in its stored dtype) gives an all-float32 pipeline that runs on CPU.
HALF_COMPONENTS = ("transformer", "vae")
SIZE_BUDGET_BYTES = 25 * 1024 * 1024


@contextlib.contextmanager
def quiet_diffusers() -> Iterator[None]:
    # Lazy for start-up: Diffusers takes ~3 s to import; only building or loading models needs it.
    from diffusers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def mini_scheduler(shift: float = DEFAULT_SHIFT) -> Any:
    # Lazy for start-up: Diffusers takes ~3 s to import; only building or loading models needs it.
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)


def load_upsampler(folder: Path | None) -> Any:
    if folder is None:
        return None

    return LatentUpsampler.from_pretrained(folder, torch_dtype=torch.float32)


def build_pipeline(work: Workdir, *, upsampler: Path | None, shift: float) -> Any:
    """The LSS pipeline of the work folder's parts, float32 on the CPU."""
    # Lazy for start-up: Diffusers takes ~3 s to import; only building or loading models needs it.
    from diffusers import AutoencoderKL, SD3Transformer2DModel

    from lssgen_diffusers import LSSStableDiffusion3Pipeline

    required = {
        "text": work.text / "text_encoder" / CONFIG_NAME,
        "vae": work.vae / CONFIG_NAME,
        "transformer": work.transformer / CONFIG_NAME,
    }
    for stage, path in required.items():
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `lssgen mini {stage}` first")
    text = load_text(work.text)
    options = {"torch_dtype": torch.float32, "local_files_only": True}
    return LSSStableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel.from_pretrained(work.transformer, **options),
        scheduler=mini_scheduler(shift),
        vae=AutoencoderKL.from_pretrained(work.vae, **options),
        **text.components(),
        latent_upsampler=load_upsampler(upsampler),
    )


def component_sizes(folder: str | os.PathLike[str]) -> dict[str, int]:
    """Bytes of weights per component subfolder (everything else is a few kB of JSON)."""
    sizes: dict[str, int] = {}
    for path in sorted(Path(folder).rglob("*.safetensors")):
        component = path.relative_to(folder).parts[0]
        sizes[component] = sizes.get(component, 0) + path.stat().st_size
    return sizes


# Training settings that name files of the training machine: a shipped folder must not carry them.
MACHINE_PATH_KEYS = frozenset({"work", "output", "init_from", "vae", "images", "upsampler"})


def portable(record: Any) -> Any:
    """`record` without the keys that hold paths of the machine it was made on."""
    if isinstance(record, dict):
        return {k: portable(v) for k, v in record.items() if k not in MACHINE_PATH_KEYS}
    if isinstance(record, list):
        return [portable(v) for v in record]
    return record


def _summary(folder: Path) -> dict[str, Any] | None:
    path = folder / SUMMARY_NAME
    return portable(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


def strip_source_paths(folder: Path) -> None:
    """Drop Diffusers' `_name_or_path` (the folder a model was loaded from) from every config."""
    for path in sorted(folder.glob("*/config.json")):
        config = json.loads(path.read_text(encoding="utf-8"))
        if config.pop("_name_or_path", None) is not None:
            write_json_atomic(path, config)


def assemble(
    work: Workdir,
    output: str | os.PathLike[str],
    *,
    upsampler: Path | None,
    shift: float = DEFAULT_SHIFT,
    dtype: torch.dtype = torch.float16,
) -> dict[str, int]:
    """Write the pipeline folder to `output` (replacing it whole); returns its component sizes."""

    pipe = build_pipeline(work, upsampler=upsampler, shift=shift)
    for name in HALF_COMPONENTS:
        with quiet_diffusers():  # its "cast with torch_dtype instead" note does not apply here
            getattr(pipe, name).to(dtype)
    parts = {"text": work.text, "vae": work.vae, "transformer": work.transformer}
    if upsampler is not None:
        parts["upsampler"] = upsampler

    def write(folder: Path) -> None:
        pipe.save_pretrained(folder)
        strip_source_paths(folder)
        align_safetensors(folder)  # bit-exact reloads on CPU (see its docstring)
        write_mini_call_defaults(folder)
        write_json_atomic(
            folder / MANIFEST_NAME,
            {
                "model": "lssgen-mini",
                "pipeline": "LSSStableDiffusion3Pipeline",
                "dtype": str(dtype).removeprefix("torch."),
                "shift": shift,
                "call_kwargs": CALL_KWARGS,
                "fingerprints": {name: fingerprint(path) for name, path in parts.items()},
                "training": {name: _summary(path) for name, path in parts.items()},
                "sizes_bytes": component_sizes(folder),
            },
        )

    return component_sizes(publish_folder(output, write))


def write_mini_call_defaults(folder: str | os.PathLike[str]) -> Path:
    """lssgen-mini's own call settings (`lssgen.mini.model.MINI_SETTINGS`, its LSS call) as the
    folder's `lssgen_call_defaults.json`, so `lssgen generate --model FOLDER` and any tool that
    reads that convention (`lssgen_diffusers.call_defaults`) run it as the demo does."""

    return write_call_defaults(folder, MINI_SETTINGS.lss())
