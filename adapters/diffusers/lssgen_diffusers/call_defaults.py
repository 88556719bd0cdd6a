"""Recommended call settings a pipeline folder may carry: ``lssgen_call_defaults.json``.

A model's own settings (its native size, the steps and guidance it was tuned for, the LSS
setting that suits it) are not in Diffusers' folder layout, so a tool that loads any pipeline
falls back to its family's defaults: SD3's 28 steps at 1024 px for lssgen-mini, a 256 px model.
The convention, readable without importing the tool that wrote the folder:

* the file ``lssgen_call_defaults.json`` at the top of a Diffusers pipeline folder, beside
  ``model_index.json``;
* one JSON object whose keys are the pipeline's call arguments: ``num_inference_steps``,
  ``height``, ``width``, ``min_size`` (positive ints), ``guidance_scale`` (a finite number),
  ``start_sigma`` (in (0, 1], or ``"auto"``), ``shorten_intermediate_steps`` (a bool),
  ``scaling_mode`` (one of `lssgen_core.upsample.SCALING_MODES`), and any other argument of the
  pipeline's ``__call__`` with a JSON scalar value (lssgen-mini's ``max_sequence_length: 1``),
  passed on as it is;
* values the user gives explicitly always win; the file only replaces the family's defaults.

`lssgen generate` reads it; `lssgen mini assemble` writes it into lssgen-mini's folder.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from lssgen_core.atomic import write_json_atomic
from lssgen_core.auto_entry import AUTO, is_auto
from lssgen_core.upsample.scalers import SCALING_MODES

CALL_DEFAULTS_NAME = "lssgen_call_defaults.json"
POSITIVE_INTS = ("num_inference_steps", "height", "width", "min_size")
LSS_KEYS = ("start_sigma", "min_size", "shorten_intermediate_steps", "scaling_mode")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_call_defaults(values: dict[str, Any]) -> None:
    """Raise ValueError naming the first key whose value is not allowed."""
    for key, value in values.items():
        if key in POSITIVE_INTS:
            ok, allowed = _is_int(value) and value > 0, "a positive int"
        elif key == "guidance_scale":
            ok, allowed = _is_number(value), "a finite number"
        elif key == "start_sigma":
            # "auto": the level the upsampler's calibration gives, as the pipelines take it.
            ok = is_auto(value) or (_is_number(value) and 0 < value <= 1)
            allowed = f"a number in (0, 1] or {AUTO!r}"
        elif key == "shorten_intermediate_steps":
            ok, allowed = isinstance(value, bool), "true or false"
        elif key == "scaling_mode":
            ok, allowed = value in SCALING_MODES, f"one of {', '.join(SCALING_MODES)}"
        else:
            ok = isinstance(value, str | bool) or _is_number(value)
            allowed = "a string, a finite number or a bool"
        if not ok:
            raise ValueError(f"{key} must be {allowed}, got {value!r}")


def read_call_defaults(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The folder's recommended call arguments, checked; None without the file. Every error is
    a ValueError naming the file (and the key)."""
    path = Path(folder) / CALL_DEFAULTS_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    try:
        check_call_defaults(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return data


def write_call_defaults(folder: str | os.PathLike[str], values: dict[str, Any]) -> Path:
    """Write (atomically) the recommended call arguments of the pipeline folder `folder`."""
    check_call_defaults(values)
    return write_json_atomic(Path(folder) / CALL_DEFAULTS_NAME, dict(sorted(values.items())))
