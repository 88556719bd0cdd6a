"""Atomic file writes for everything training and evaluation leave on disk.

Readers (a resumed run, a person opening a report) see the previous file or the new one, never a
half-written one, however the process ends. The mechanics (temp file in the same folder, fsync,
os.replace) live in `io` next to the upsampler's own writer, so there is one implementation.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from lssgen_core.upsample.io import _atomic_write


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically, creating missing parent folders."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(target, data)
    return target


def json_safe(obj: Any) -> Any:
    """`obj` with non-finite floats as the strings "inf", "-inf", "nan" (strict JSON has none)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(value) for value in obj]
    return obj


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Strict, pretty-printed JSON written atomically (see `json_safe` for inf and NaN)."""
    text = json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))
