"""``start_sigma="auto"`` in the pipelines: resolved from the scaler's calibration before planning.

Also: the calibration key in config.json is one the original implementation's loader (Diffusers'
``ConfigMixin``) drops without a word, so our folders still load there.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.utils import logging as diffusers_logging
from lss_testkit import latent_call, lss_from_stock, random_upsampler, recorded_inputs

from lssgen_core.auto_entry import auto_entry_level
from lssgen_core.upsample.calibration import CALIBRATION_KEY, ScalerCalibration
from lssgen_core.upsample.io import CONFIG_NAME

TARGET = 128
MIN_SIZE = 64
STEPS = 8
# Relative errors whose auto levels at margin 2 are 1/3 (sigma_ve = 2 * 0.25 = 0.5), 0.375
# (sigma_ve 0.6) and 0.6 (sigma_ve 1.5).
ERRORS = {"resnet": 0.0625, "pixel": 0.09, "bicubic": 0.5625}


def calibration(error: float) -> ScalerCalibration:
    return ScalerCalibration(
        relative_error=error, latent_variance=1.0, num_crops=8, crop_size=64, source="held-out"
    )


def calibrated_upsampler(channels: int, **errors: float) -> Any:
    upsampler = random_upsampler(channels)
    upsampler.calibration = {mode: calibration(e) for mode, e in errors.items()}
    return upsampler


def arguments(**overrides: Any) -> dict[str, Any]:
    return latent_call(TARGET, STEPS, min_size=MIN_SIZE, **overrides)


def expected_level(error: float) -> float:
    return math.ceil(auto_entry_level(error) * 10**4) / 10**4


@pytest.fixture(params=["flux", "sd"])
def calibrated(request: pytest.FixtureRequest, lss_pair: Any) -> Any:
    """An LSS pipeline (flow or VP) whose upsampler holds a calibration for three modes."""
    stock = lss_pair(request.param).stock
    upsampler = calibrated_upsampler(stock.vae.config.latent_channels, **ERRORS)
    return lss_from_stock(request.param, stock, latent_upsampler=upsampler)


@pytest.mark.parametrize("mode", ["resnet", "pixel", "latent"])
def test_auto_is_the_calibrated_level_of_the_calls_scaler(calibrated: Any, mode: str) -> None:
    error = ERRORS["bicubic" if mode == "latent" else mode]
    auto = calibrated(**arguments(start_sigma="auto", scaling_mode=mode)).images
    plan = calibrated.lss_plan
    assert plan.start_sigma == expected_level(error)
    assert len(plan.stages) == 2
    described = plan.describe()
    assert f"start_sigma={expected_level(error)} (auto: the {mode} scaler" in described
    # The same call with that number is the same generation, bit for bit.
    fixed = calibrated(**arguments(start_sigma=expected_level(error), scaling_mode=mode)).images
    assert torch.equal(auto, fixed)
    assert "auto" not in calibrated.lss_plan.describe()
    assert calibrated.lss_plan_for(**arguments(start_sigma="auto", scaling_mode=mode)) == plan


def test_each_mode_enters_where_its_own_error_allows(calibrated: Any) -> None:
    levels = {
        mode: calibrated.lss_plan_for(**arguments(start_sigma="auto", scaling_mode=mode))
        for mode in ("resnet", "pixel", "latent")
    }
    assert levels["resnet"].start_sigma < levels["pixel"].start_sigma
    assert levels["pixel"].start_sigma < levels["latent"].start_sigma
    entries = {mode: plan.stages[1].start_index for mode, plan in levels.items()}
    # A lower level enters later in the schedule: fewer full-size steps.
    assert entries["resnet"] >= entries["pixel"] >= entries["latent"]
    assert entries["resnet"] > entries["latent"]


@pytest.mark.parametrize("kind", ["flux", "sd"])
def test_auto_without_a_calibration_is_refused_before_any_work(lss_pair: Any, kind: str) -> None:
    pair = lss_pair(kind)
    channels = pair.stock.vae.config.latent_channels
    only_resnet = lss_from_stock(
        kind, pair.stock, latent_upsampler=calibrated_upsampler(channels, resnet=0.1)
    )
    with (
        recorded_inputs(pair.denoiser) as calls,
        pytest.raises(ValueError, match=r"start_sigma='auto'.*'nearest' scaler.*eval-upsampler"),
    ):
        only_resnet(**arguments(start_sigma="auto", scaling_mode="nearest"))
    without = lss_from_stock(kind, pair.stock, latent_upsampler=None)
    with (
        recorded_inputs(pair.denoiser) as more_calls,
        pytest.raises(ValueError, match=r"start_sigma='auto'.*latent_upsampler.*has none"),
    ):
        without(**arguments(start_sigma="auto", scaling_mode="latent"))
    assert calls == [] and more_calls == []


def test_other_strings_are_refused_naming_start_sigma_and_auto(lss_pair: Any) -> None:
    pipe = lss_pair("flux").lss
    with pytest.raises(TypeError, match=r"start_sigma must be a real number in \(0, 1\] or 'auto'"):
        pipe(**arguments(start_sigma="0.7"))
    with pytest.raises(ValueError, match=r"scaling_mode='bogus'"):
        pipe(**arguments(start_sigma="auto", scaling_mode="bogus"))


def test_a_given_start_sigma_has_no_note(lss_pair: Any) -> None:
    pipe = lss_pair("flux").lss
    plan = pipe.lss_plan_for(**arguments(start_sigma=0.6))
    assert plan.start_sigma_note is None
    assert "start_sigma=0.6, min_size=" in plan.describe()


class OriginalLatentUpSampler(ConfigMixin):
    """Stand-in for the original implementation's ``LatentUpSampler``: a Diffusers ConfigMixin
    with the same ``__init__`` parameters (its loader is ``ConfigMixin.from_config``)."""

    config_name = CONFIG_NAME

    @register_to_config
    def __init__(
        self,
        in_channels: int = 16,
        out_channels: int = 16,
        block_out_channels: tuple[int, ...] = (64,),
        is_up_samples: tuple[bool, ...] = (True,),
        strides: tuple[int, ...] = (2,),
        norm_num_groups: int = 32,
        act_fn: str = "silu",
        interpolate: str = "nearest",
    ) -> None:
        super().__init__()


def test_the_original_loader_reads_a_calibrated_config_unchanged_and_silently(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    upsampler = calibrated_upsampler(16, resnet=0.05, pixel=0.2)
    upsampler.save_pretrained(tmp_path)
    data = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert CALIBRATION_KEY in data
    public = {k: v for k, v in data.items() if k != CALIBRATION_KEY}
    public[CALIBRATION_KEY.lstrip("_")] = data[CALIBRATION_KEY]
    diffusers_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            original = OriginalLatentUpSampler.from_config(data)
            silent = [r for r in caplog.records if "not expected" in r.getMessage()]
            # The same entry without the leading "_" would load too, with a warning each time.
            OriginalLatentUpSampler.from_config(public)
            warned = [r for r in caplog.records if "not expected" in r.getMessage()]
    finally:
        diffusers_logging.disable_propagation()
    assert silent == [] and warned
    for field in ("in_channels", "out_channels", "block_out_channels", "is_up_samples", "strides"):
        assert json.loads(json.dumps(original.config[field])) == data[field], field
    assert original.config["interpolate"] == data["interpolate"]
