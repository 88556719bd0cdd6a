"""Scaler calibrations for ``start_sigma="auto"``, measured by the scaler comparison.

:func:`~lssgen.training.scaler_comparison.compare_scalers` scores every scaling mode on
held-out crops of the upsampler's VAE; each mode's relative error (latent MSE over the target
latents' variance) becomes its :class:`~lssgen_core.upsample.calibration.ScalerCalibration`,
stored in the upsampler's config.json. ``lssgen eval-upsampler --calibrate`` and
``lssgen train-upsampler --held-out-images`` use this; the rule that turns an error into a level
is :mod:`lssgen_core.auto_entry`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import Tensor

from lssgen.training.scaler_comparison import ScalerComparison, compare_with_standard_scalers
from lssgen_core.auto_entry import auto_entry_level
from lssgen_core.upsample.calibration import ScalerCalibration
from lssgen_core.upsample.network import LatentUpsampler

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


def measure_calibrations(
    upsampler: LatentUpsampler,
    high_crops: Tensor,
    encode: Callable[[Tensor], Tensor],
    decode: Callable[[Tensor], Tensor],
    *,
    images: str | Path,
    downsample_mode: str,
    batch_size: int = 8,
) -> dict[str, ScalerCalibration]:
    """Every mode's calibration on ``high_crops`` (uint8 (N, 3, S, S), held out from training)."""
    result = compare_with_standard_scalers(
        upsampler,
        high_crops,
        encode,
        decode,
        downsample_mode=downsample_mode,
        batch_size=batch_size,
        preview_count=0,
    )
    # The folder's name only: config.json files are shared and name no machine's paths.
    return calibrations_from_comparison(result, Path(images).name)
