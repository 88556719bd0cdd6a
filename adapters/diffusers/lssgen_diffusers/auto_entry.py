"""``start_sigma="auto"`` in the pipelines: resolved to a number before any planning.

The level follows from the call's scaler's measured error (:mod:`lssgen_core.auto_entry`), read
from the pipeline's ``latent_upsampler``: its config.json stores a calibration per scaling mode
on its VAE (``resnet``, the latent interpolations, ``pixel``), so each mode enters where its own
error allows. The planner then sees a plain float; the plan's ``describe()`` says where it came
from. A call asking for ``"auto"`` whose scaler has no calibration is refused before any work.
"""

from __future__ import annotations

from typing import Any

import attrs

from lssgen_core.auto_entry import AUTO, auto_start_sigma, describe_auto_entry, is_auto
from lssgen_core.errors import LSSArgumentError, LSSArgumentTypeError
from lssgen_core.upsample import SCALING_MODES
from lssgen_diffusers.component import COMPONENT_NAME
from lssgen_diffusers.options import DEFAULT_SCALING_MODE


@attrs.frozen
class ResolvedStartSigma:
    """``start_sigma`` as the planner takes it, and where it came from (None: given)."""

    start_sigma: float | None
    note: str | None = None


def resolve_start_sigma(
    pipe: Any, start_sigma: object, scaling_mode: str | None
) -> ResolvedStartSigma:
    """``start_sigma`` with ``"auto"`` replaced by the level of ``scaling_mode``'s calibration
    (the pipeline's default mode when None); any other value passes through unchanged."""
    if isinstance(start_sigma, str) and not is_auto(start_sigma):
        raise LSSArgumentTypeError(
            "start_sigma",
            f"start_sigma must be a real number in (0, 1] or {AUTO!r}, got {start_sigma!r} (str)",
        )
    if not is_auto(start_sigma):
        return ResolvedStartSigma(start_sigma)  # type: ignore[arg-type]
    mode = DEFAULT_SCALING_MODE if scaling_mode is None else scaling_mode
    if mode not in SCALING_MODES:
        raise LSSArgumentError(
            "scaling_mode", f"scaling_mode={mode!r} must be one of {SCALING_MODES}"
        )
    upsampler = getattr(pipe, COMPONENT_NAME, None)
    # An upsampler of another class (LTX's own, on LSSLTXPipeline) carries no calibration.
    calibrated = getattr(upsampler, "calibration_for", None)
    calibration = None if calibrated is None else calibrated(mode)
    if calibration is None and upsampler is None:
        raise LSSArgumentError(
            "start_sigma",
            f"start_sigma='auto' reads the {mode!r} scaler's measured error from the pipeline's "
            "latent_upsampler (its config.json), but the pipeline has none; load an upsampler "
            "with a calibration (lssgen eval-upsampler --calibrate) or pass start_sigma as a "
            "float in (0, 1]",
        )
    level = auto_start_sigma(calibration, scaling_mode=mode)
    assert calibration is not None  # auto_start_sigma refuses None
    return ResolvedStartSigma(level, describe_auto_entry(calibration, scaling_mode=mode))
