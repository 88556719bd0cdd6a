"""Scaler calibrations: each scaling mode's measured error, stored with the upsampler.

A calibration is what ``start_sigma="auto"`` needs (:mod:`lssgen_core.auto_entry`): a scaler's
relative error on held-out images (mean squared error of the upsampled latent against the
encoded high-resolution crop, over that latent's variance), with the variance and what it was
measured on. ``lssgen eval-upsampler`` and ``lssgen train-upsampler`` measure one per mode (the
learned upsampler, each latent interpolation and the pixel round trip) on the upsampler's VAE,
so every mode enters where its own error allows.

They are stored in the upsampler's ``config.json`` under :data:`CALIBRATION_KEY`. The key begins
with ``_``: Diffusers' ``ConfigMixin``, which the original implementation's ``LatentUpSampler``
loads with, drops such private keys before building the model (as it does ``_class_name`` and
``_diffusers_version``), so the original code loads our folders unchanged and without a
warning; folders without the key (the released checkpoints) load here with no calibration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from lssgen_core.validation import positive_int

CALIBRATION_KEY = "_lssgen_calibration"
# The scaling modes a calibration can be for: "latent" is bicubic by another name.
CALIBRATED_MODES = ("resnet", "bicubic", "bilinear", "nearest", "pixel")
MODE_ALIASES = {"latent": "bicubic"}


def calibration_mode(scaling_mode: str) -> str:
    """The stored name of ``scaling_mode``'s calibration (``"latent"`` is ``"bicubic"``)."""
    return MODE_ALIASES.get(scaling_mode, scaling_mode)


def _finite_positive(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not value > 0
    ):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


@attrs.frozen
class ScalerCalibration:
    """One scaling mode's held-out error (see the module docstring)."""

    relative_error: float = attrs.field(converter=float, validator=_finite_positive)
    latent_variance: float = attrs.field(converter=float, validator=_finite_positive)
    num_crops: int = attrs.field(validator=positive_int)
    crop_size: int = attrs.field(validator=positive_int)  # high-resolution side in pixels
    source: str = attrs.field(validator=attrs.validators.instance_of(str))  # the images' name
    downsample: str = attrs.field(default="nearest", validator=attrs.validators.instance_of(str))

    @property
    def mean_squared_error(self) -> float:
        """The error in the latent's own units: ``relative_error * latent_variance``."""
        return self.relative_error * self.latent_variance

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScalerCalibration:
        known = {field.name for field in attrs.fields(cls)}
        if not isinstance(data, Mapping):
            raise ValueError(f"a calibration must be a JSON object, got {data!r}")
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise ValueError(
                f"unknown calibration keys {unknown}; allowed keys are {sorted(known)}"
            )
        try:
            return cls(**data)
        except TypeError as exc:  # a missing field
            raise ValueError(f"calibration {dict(data)}: {exc}") from exc


def calibrations_from_config(data: Mapping[str, Any]) -> dict[str, ScalerCalibration]:
    """The calibrations a config.json dict holds, by mode (none without its
    :data:`CALIBRATION_KEY`)."""
    stored = data.get(CALIBRATION_KEY)
    if stored is None:
        return {}
    if not isinstance(stored, Mapping):
        raise ValueError(
            f"{CALIBRATION_KEY} must map scaling modes to calibrations, got {stored!r}"
        )
    return check_calibrations(
        {mode: ScalerCalibration.from_dict(entry) for mode, entry in stored.items()}
    )


def check_calibrations(
    calibrations: Mapping[str, ScalerCalibration],
) -> dict[str, ScalerCalibration]:
    """``calibrations`` as a dict keyed by :data:`CALIBRATED_MODES`, or a ValueError naming the
    wrong key or value."""
    checked: dict[str, ScalerCalibration] = {}
    for mode, calibration in calibrations.items():
        if mode not in CALIBRATED_MODES:
            raise ValueError(
                f"calibration for {mode!r}: the calibrated scaling modes are {CALIBRATED_MODES}"
            )
        if not isinstance(calibration, ScalerCalibration):
            raise TypeError(
                f"calibration for {mode!r} must be a ScalerCalibration, got "
                f"{type(calibration).__name__}"
            )
        checked[mode] = calibration
    return checked


def calibrations_to_config(calibrations: Mapping[str, ScalerCalibration]) -> dict[str, Any]:
    """The config.json entries for ``calibrations`` (none when there are none)."""
    if not calibrations:
        return {}
    return {
        CALIBRATION_KEY: {
            mode: calibrations[mode].to_dict() for mode in CALIBRATED_MODES if mode in calibrations
        }
    }
