"""Stage `latents`: the transformer's training set, encoded once by the frozen VAE.

On CPU the VAE encoder costs about as much per image as a transformer training step per sample,
and the transformer sees each scene several times, so scenes are rendered and encoded once, at
the native size and at the LSS first-stage size (a scene renders identically at any size, so the
two latents show the same picture, as the two LSS stages do). Latents are stored in model space
(the VAE's shift and scaling applied), float16, with their captions.

Layout: `manifest.json` (settings and the VAE's fingerprint) and `chunk-NNNNN.safetensors`
(tensors `latents_<size>`; captions as JSON in the metadata), each written atomically. Building
skips chunks that exist, so an interrupted build simply continues; a manifest made with other
settings or another VAE is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import Tensor

from lssgen.mini.train_data import TRAIN_DATA_SEED, captions, render_batch
from lssgen_core.atomic import write_bytes_atomic, write_json_atomic
from lssgen_core.validation import non_negative, positive

MANIFEST = "manifest.json"
FORMAT = "lssgen-mini-latents"
VERSION = 1
METADATA_KEY = "lssgen_mini"


def _sizes(values: Any) -> tuple[int, ...]:
    return tuple(sorted({int(v) for v in values}, reverse=True))


@attrs.frozen
class CacheConfig:
    count: int = attrs.field(default=8192, validator=positive)
    sizes: tuple[int, ...] = attrs.field(default=(256, 128), converter=_sizes)  # native first
    data_seed: int = attrs.field(default=TRAIN_DATA_SEED, validator=non_negative)
    chunk_size: int = attrs.field(default=256, validator=positive)
    encode_batch: int = attrs.field(default=16, validator=positive)

    @property
    def num_chunks(self) -> int:
        return -(-self.count // self.chunk_size)

    def chunk_indices(self, chunk: int) -> range:
        return range(chunk * self.chunk_size, min((chunk + 1) * self.chunk_size, self.count))

    def manifest(self, vae_fingerprint: str) -> dict[str, Any]:
        # encode_batch changes nothing stored, so a rebuild may use another one.
        settings = attrs.asdict(self)
        del settings["encode_batch"]
        return {"format": FORMAT, "version": VERSION, "vae": vae_fingerprint, **settings}


def chunk_path(folder: Path, chunk: int) -> Path:
    return folder / f"chunk-{chunk:05d}.safetensors"


def _check_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    path = folder / MANIFEST
    if not path.is_file():
        write_json_atomic(path, manifest)
        return
    existing = json.loads(path.read_text(encoding="utf-8"))
    if json.loads(json.dumps(manifest)) != existing:
        raise ValueError(
            f"{folder} holds latents made with other settings or another VAE ({existing}); "
            "delete it or choose another folder"
        )


def encode_chunk(encode: Callable[[Tensor], Tensor], config: CacheConfig, chunk: int) -> bytes:
    """The safetensors bytes of one chunk: its scenes' latents at every size, and captions."""

    indices = config.chunk_indices(chunk)
    tensors: dict[str, Tensor] = {}
    for size in config.sizes:
        parts = []
        for first in range(0, len(indices), config.encode_batch):
            batch = indices[first : first + config.encode_batch]
            parts.append(encode(render_batch(config.data_seed, batch, size)).cpu())
        tensors[f"latents_{size}"] = torch.cat(parts).to(torch.float16).contiguous()
    # One metadata key: safetensors writes several in hash order, and chunks should be byte-stable.
    info = {"first": indices[0], "captions": captions(config.data_seed, indices)}
    return save(tensors, metadata={METADATA_KEY: json.dumps(info)})


def build_cache(
    folder: str | os.PathLike[str],
    config: CacheConfig,
    encode: Callable[[Tensor], Tensor],
    vae_fingerprint: str,
    on_chunk: Callable[[int, int], None] | None = None,
) -> int:
    """Encode the chunks `folder` lacks with `encode` (images in [-1, 1] -> model-space latents);
    returns how many were written. `on_chunk(done, total)` reports progress."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    _check_manifest(root, config.manifest(vae_fingerprint))
    written = 0
    for chunk in range(config.num_chunks):
        path = chunk_path(root, chunk)
        if not path.is_file():
            write_bytes_atomic(path, encode_chunk(encode, config, chunk))
            written += 1
        if on_chunk is not None:
            on_chunk(chunk + 1, config.num_chunks)
    return written


@attrs.frozen(eq=False)
class LatentCache:
    """Every cached latent in memory: `latents[size]` is (N, C, h, w) float16, model space."""

    latents: dict[int, Tensor]
    captions: tuple[str, ...]
    fingerprint: str  # of the manifest: which VAE and which scenes

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(sorted(self.latents, reverse=True))

    def __len__(self) -> int:
        return len(self.captions)


def load_cache(folder: str | os.PathLike[str]) -> LatentCache:

    root = Path(folder)
    path = root / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no latent cache in {root} ({MANIFEST} missing); run `latents`")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    config = CacheConfig(
        count=manifest["count"],
        sizes=manifest["sizes"],
        data_seed=manifest["data_seed"],
        chunk_size=manifest["chunk_size"],
    )
    parts: dict[int, list[Tensor]] = {size: [] for size in config.sizes}
    texts: list[str] = []
    for chunk in range(config.num_chunks):
        chunk_file = chunk_path(root, chunk)
        if not chunk_file.is_file():
            raise FileNotFoundError(f"{chunk_file} is missing: finish the `latents` stage first")
        with safe_open(str(chunk_file), framework="pt") as handle:
            texts += json.loads(handle.metadata()[METADATA_KEY])["captions"]
            for size in config.sizes:
                parts[size].append(handle.get_tensor(f"latents_{size}"))
    latents = {size: torch.cat(chunks) for size, chunks in parts.items()}
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    return LatentCache(latents, tuple(texts), digest)
