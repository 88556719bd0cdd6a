"""``start_sigma="auto"``: the entry level that follows from a scaler's measured error.

A later stage starts from the previous stage's latent scaled 2x, ``up = x + d``: the latent the
target size would have (``x``) plus the scaler's error ``d``. Re-noised in flow terms,

    x_s = (1 - s) * up + s * noise = (1 - s) * x + [(1 - s) * d + s * noise].

The model is told level ``s`` and expects the bracket to be ``s * noise`` alone: variance ``s**2``
(the noise is unit-variance). The error adds ``(1 - s)**2 * e * v``, where ``e`` is the scaler's
held-out relative error (mean squared error against the true high-resolution latent, over the
latent variance ``v``; diffusion latents are scaled to ``v`` close to 1). Dividing by ``1 - s``
gives the same in VE terms, independent of the model family:

    x_s / (1 - s) = x + d + sigma_ve * noise,   sigma_ve = s / (1 - s),

so the error is covered when the injected noise's standard deviation is a margin ``k`` above the
error's: ``sigma_ve >= k * sqrt(e * v)`` (with ``v = 1``, the rule ``s / (1 - s) >= k * sqrt(e)``).
The lowest such level, the one to enter at, is

    sigma_ve = k * sqrt(e * v),   s = sigma_ve / (1 + sigma_ve)   (flow),

and its signal-to-noise ratio ``1 / (k**2 * e * v)``. VP and VE models enter at the same
signal-to-noise ratio: the planner's ``entry_rule="sigma"`` converts the flow level through it
(:func:`~lssgen_core.parameterization.convert_sigma`; VP ``sigma_ve / sqrt(1 + sigma_ve**2)``, VE
``sigma_ve`` itself), so the flow level is all a plan needs.

The margin. Entering at the rule's level, the latent really holds noise of variance
``sigma_ve**2 + e * v = sigma_ve**2 * (1 + 1 / k**2)`` where the model is told ``sigma_ve**2``.
:data:`DEFAULT_MARGIN` ``k = 2`` keeps the error to 1/5 of that variance, so the noise the
model sees is 12% (``sqrt(1.25)``) above the level it is told, in VE sigma: about half a step of
a 20-step unshifted flow schedule near ``s = 0.5`` (0.50 to 0.55 is 22% in VE sigma). It is a
stated choice from this argument, not fitted to any model's results. The rule treats the error as
noise of the same spread; an upsampler's error sits mostly in the high frequencies, which the
noise at that level drowns first, so the rule errs towards entering higher rather than lower.

Everything here is pure arithmetic on floats: where a calibration comes from and how it is stored
is :mod:`lssgen_core.upsample.calibration`.
"""

from __future__ import annotations

import math

from lssgen_core.errors import LSSArgumentError
from lssgen_core.upsample.calibration import ScalerCalibration

# The injected noise's standard deviation over the scaler's error's (see the module docstring).
DEFAULT_MARGIN = 2.0
AUTO = "auto"
# The resolved level is shown in plans and reports; four decimals are finer than any schedule's
# spacing (a stage enters at one of its own levels anyway).
DECIMALS = 4


def _check_positive_finite(value: float, argument: str, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise LSSArgumentError(argument, f"{argument}={value!r} must be a finite number {bound}")
    if not math.isfinite(value):
        raise LSSArgumentError(argument, f"{argument}={value!r} must be a finite number")


def entry_ve_sigma(
    relative_error: float, *, latent_variance: float = 1.0, margin: float = DEFAULT_MARGIN
) -> float:
    """The VE sigma ``k * sqrt(e * v)`` at which the injected noise covers the scaler's error."""
    _check_positive_finite(relative_error, "relative_error", allow_zero=True)
    _check_positive_finite(latent_variance, "latent_variance")
    _check_positive_finite(margin, "margin")
    # Two roots, not the root of the product: the product of two tiny numbers underflows to 0.
    return margin * math.sqrt(relative_error) * math.sqrt(latent_variance)


def auto_entry_level(
    relative_error: float, *, latent_variance: float = 1.0, margin: float = DEFAULT_MARGIN
) -> float:
    """The flow level ``s = sigma_ve / (1 + sigma_ve)`` to enter a later stage at, in [0, 1).

    0 for an error-free scaler (nothing to cover), rising with the error towards 1 (pure noise,
    which no finite error reaches).
    """
    sigma_ve = entry_ve_sigma(relative_error, latent_variance=latent_variance, margin=margin)
    return sigma_ve / (1.0 + sigma_ve)


def covered_relative_error(
    level: float, *, latent_variance: float = 1.0, margin: float = DEFAULT_MARGIN
) -> float:
    """The largest relative error flow ``level`` still covers: the inverse of
    :func:`auto_entry_level` (``(s / (1 - s) / k)**2 / v``)."""
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 <= level < 1:
        raise LSSArgumentError("level", f"level={level!r} must be a flow level in [0, 1)")
    _check_positive_finite(latent_variance, "latent_variance")
    _check_positive_finite(margin, "margin")
    return (level / (1.0 - level) / margin) ** 2 / latent_variance


def is_auto(start_sigma: object) -> bool:
    """Whether ``start_sigma`` asks for the automatic entry level (the string ``"auto"``)."""
    return isinstance(start_sigma, str) and start_sigma == AUTO


def auto_start_sigma(
    calibration: ScalerCalibration | None,
    *,
    scaling_mode: str,
    margin: float = DEFAULT_MARGIN,
) -> float:
    """The ``start_sigma`` that ``"auto"`` means for a scaler with ``calibration``: the flow level
    of :func:`auto_entry_level` rounded up to :data:`DECIMALS` decimals, so never below the rule's
    level; in (0, 1] (a calibration's error is > 0; an error so large that this gives 1 means one
    stage: no level below pure noise covers it).

    Raises ValueError naming ``start_sigma`` when there is no calibration for ``scaling_mode``.
    """
    if calibration is None:
        raise LSSArgumentError(
            "start_sigma",
            f"start_sigma='auto' needs the measured error of the {scaling_mode!r} scaler, and "
            "there is none: it is stored in the latent upsampler's config.json (measure it with "
            "`lssgen eval-upsampler ... --calibrate`, or train with `lssgen train-upsampler "
            "--held-out-images DIR`); or pass start_sigma as a float in (0, 1]",
        )
    level = auto_entry_level(
        calibration.relative_error, latent_variance=calibration.latent_variance, margin=margin
    )
    return math.ceil(level * 10**DECIMALS) / 10**DECIMALS


def describe_auto_entry(
    calibration: ScalerCalibration, *, scaling_mode: str, margin: float = DEFAULT_MARGIN
) -> str:
    """How ``"auto"`` was resolved, for a plan's description."""
    measured = (
        f"{calibration.num_crops} crops of {calibration.crop_size} px from {calibration.source}"
    )
    return (
        f"auto: the {scaling_mode} scaler's held-out relative error "
        f"{calibration.relative_error:.4g} (latent variance {calibration.latent_variance:.3g}; "
        f"{measured}), margin {margin:g}"
    )
