"""Saving pipelines whose safetensors weights reload bit for bit on the CPU."""

from __future__ import annotations

import os
import struct
from pathlib import Path

_SAFETENSORS_ALIGNMENT = 64


def align_safetensors(folder: str | os.PathLike[str]) -> list[Path]:
    """Pad the header of every ``*.safetensors`` file under ``folder`` so tensor data starts
    at a 64-byte file offset; returns the files that were rewritten.

    ``safetensors`` pads its JSON header to 8 bytes only, and Diffusers / Transformers load
    tensors zero-copy from the memory-mapped file, so the loaded weights sit at whatever
    alignment the header length gives. MKL's matrix-vector kernels (``F.linear`` with one row,
    e.g. timestep / pooled-text embedders and AdaLN modulation at batch size 1) round
    differently when a weight is not 16-byte aligned, so a pipeline loaded from such a file
    can drift from the in-memory one by ~1 ulp per step. Padding the header with spaces (which
    the safetensors format allows, and its own writer does) removes that. The tensors and
    metadata are unchanged; only the header's trailing padding grows.
    """
    rewritten: list[Path] = []
    for path in sorted(Path(folder).rglob("*.safetensors")):
        data = path.read_bytes()
        (header_len,) = struct.unpack("<Q", data[:8])
        header = data[8 : 8 + header_len].rstrip(b" ")
        new_len = len(header) + (-(8 + len(header)) % _SAFETENSORS_ALIGNMENT)
        if new_len == header_len:
            continue
        padded = header + b" " * (new_len - len(header))
        path.write_bytes(struct.pack("<Q", new_len) + padded + data[8 + header_len :])
        rewritten.append(path)
    return rewritten
