"""The work folder of an lssgen-mini training run, and how stages publish into it.

One folder holds every stage's output, so each stage finds its inputs by name::

    WORK/text/         tokenizers and frozen text encoders        (lssgen mini text)
    WORK/vae/          AutoencoderKL with its latent statistics    (lssgen mini vae)
    WORK/latents/      cached VAE latents of renders + captions    (lssgen mini latents)
    WORK/transformer/  SD3Transformer2DModel (EMA weights)         (lssgen mini transformer)
    WORK/images/       PNG renders for the upsampler               (lssgen mini images)
    WORK/upsampler/    LatentUpsampler                             (lssgen train-upsampler)
    WORK/checkpoints/<stage>/  resumable training state

A stage writes its output folder next to the final one and renames it into place, so a folder
that exists is complete; `fingerprint` ties a stage's output to the inputs it was made from.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import attrs

SUMMARY_NAME = "lssgen_mini_training.json"


class _Stage:
    """A `Workdir` attribute for one stage's output folder: `WORK/<the attribute's name>`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, work: Workdir, owner: type | None = None) -> Path:
        return work.root / self.name


@attrs.frozen
class Workdir:
    root: Path = attrs.field(converter=Path)

    text = _Stage()
    vae = _Stage()
    latents = _Stage()
    transformer = _Stage()
    images = _Stage()
    upsampler = _Stage()

    def checkpoints(self, stage: str) -> Path:
        return self.root / "checkpoints" / stage


def fingerprint(
    folder: str | os.PathLike[str], suffixes: tuple[str, ...] = (".safetensors",)
) -> str:
    """A short hash of the files under `folder` with these suffixes (names and contents)."""
    digest = hashlib.sha256()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes):
        digest.update(str(path.relative_to(root)).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def publish_folder(target: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Run `write(tmp)` into a fresh sibling folder, then move it to `target`.

    Readers never see a half-written folder: until the rename the old one (if any) is intact.
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    staging = final.with_name(f".{final.name}.{tag}.tmp")
    try:
        write(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if final.exists():
        retired = final.with_name(f".{final.name}.{tag}.old")
        final.rename(retired)
        staging.rename(final)
        shutil.rmtree(retired)
    else:
        staging.rename(final)
    return final
