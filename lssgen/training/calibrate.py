"""Scaler calibrations for ``start_sigma="auto"``, measured by the scaler comparison.

:func:`~lssgen.training.scaler_comparison.compare_scalers` scores every scaling mode on
held-out crops of the upsampler's VAE; each mode's relative error (latent MSE over the target
latents' variance) becomes its :class:`~lssgen_core.upsample.calibration.ScalerCalibration`,
stored in the upsampler's config.json. ``lssgen eval-upsampler --calibrate`` and
``lssgen train-upsampler --held-out-images`` use this; the rule that turns an error into a level
is :mod:`lssgen_core.auto_entry`.
"""

from __future__ import annotations

from lssgen.training.scaler_comparison import ScalerComparison
from lssgen_core.auto_entry import auto_entry_level
from lssgen_core.upsample.calibration import ScalerCalibration

# The scaler comparison's method names -> the scaling modes the pipelines know them by.
METHOD_MODES = {
    "upsampler": "resnet",
    "bicubic": "bicubic",
    "bilinear": "bilinear",
    "nearest": "nearest",
    "pixel": "pixel",
}
DEFAULT_CALIBRATION_CROPS = 64


def calibrations_from_comparison(
    result: ScalerComparison, source: str
) -> dict[str, ScalerCalibration]:
    """One calibration per scaling mode the comparison scored (``source``: the images' name)."""
    return {
        METHOD_MODES[score.name]: ScalerCalibration(
            relative_error=result.relative_error(score.name),
            latent_variance=result.latent_variance,
            num_crops=result.num_crops,
            crop_size=result.crop_size,
            source=source,
            downsample=result.downsample,
        )
        for score in result.scores
        if score.name in METHOD_MODES
    }


def auto_levels(calibrations: dict[str, ScalerCalibration]) -> dict[str, float]:
    """The flow level ``start_sigma="auto"`` resolves to for each calibrated mode."""
    return {
        mode: auto_entry_level(c.relative_error, latent_variance=c.latent_variance)
        for mode, c in calibrations.items()
    }


def format_levels(calibrations: dict[str, ScalerCalibration]) -> str:
    """A table of each mode's relative error and auto level."""
    lines = [f"{'mode':<10} {'relative error':>15} {'auto start_sigma':>17}"]
    for mode, level in auto_levels(calibrations).items():
        lines.append(f"{mode:<10} {calibrations[mode].relative_error:>15.4g} {level:>17.4f}")
    return "\n".join(lines)
