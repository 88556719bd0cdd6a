"""``start_sigma="auto"`` with k-diffusion: ``plan_for_model`` resolves it from the upsampler's
calibration before planning, so the VE plan enters where the flow plan at that level does."""

import pytest
import torch
from kd_models import CHANNELS, GaussianVelocity

from lssgen_core.auto_entry import auto_start_sigma
from lssgen_core.plan import plan_stages
from lssgen_core.schedules import flux_schedule
from lssgen_core.upsample import LatentUpsampler, UpsamplerConfig
from lssgen_core.upsample.calibration import ScalerCalibration
from lssgen_kdiffusion import FlowDenoiser, plan_for_model

ARGS = {"num_steps": 12, "patch_size": 2, "min_size": 64}


def calibrated(**errors: float) -> LatentUpsampler:
    torch.manual_seed(0)
    upsampler = LatentUpsampler(UpsamplerConfig.released(CHANNELS))
    upsampler.calibration = {
        mode: ScalerCalibration(
            relative_error=e, latent_variance=1.0, num_crops=4, crop_size=64, source="held"
        )
        for mode, e in errors.items()
    }
    return upsampler


def flow_model() -> FlowDenoiser:
    return FlowDenoiser(GaussianVelocity(), shift=flux_schedule())


@pytest.mark.parametrize(("mode", "error"), [("resnet", 0.05), ("bicubic", 0.3)])
def test_auto_plans_as_the_calibrated_level_does(mode: str, error: float) -> None:
    upsampler = calibrated(resnet=0.05, bicubic=0.3)
    auto = plan_for_model(
        flow_model(), 128, 128, start_sigma="auto", upsampler=upsampler, scaling_mode=mode, **ARGS
    )
    level = auto_start_sigma(upsampler.calibration[mode], scaling_mode=mode)
    assert auto.start_sigma == level
    assert f"(auto: the {mode} scaler" in auto.describe()
    flow = plan_stages(128, 128, schedule=flux_schedule(), start_sigma=level, **ARGS)
    assert [(s.num_steps, s.start_index) for s in auto.stages] == [
        (s.num_steps, s.start_index) for s in flow.stages
    ]


def test_auto_without_a_calibration_is_refused_naming_start_sigma() -> None:
    with pytest.raises(ValueError, match=r"start_sigma='auto'.*'pixel'"):
        plan_for_model(
            flow_model(),
            128,
            128,
            start_sigma="auto",
            upsampler=calibrated(resnet=0.05),
            scaling_mode="pixel",
            **ARGS,
        )
    with pytest.raises(ValueError, match=r"start_sigma='auto'"):
        plan_for_model(flow_model(), 128, 128, start_sigma="auto", **ARGS)
