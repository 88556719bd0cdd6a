"""One positive-integer check serves the planner, the schedules, the upsampler's config, its
calibration and the pipelines' counts: same acceptance, same message, the argument named."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lssgen_core import LSSArgumentError, flux_schedule, plan_stages
from lssgen_core.schedules import exponential_sigmas
from lssgen_core.upsample.calibration import ScalerCalibration
from lssgen_core.upsample.config import UpsamplerConfig
from lssgen_core.validation import check_positive_int


@given(st.integers(1, 10**9))
def test_integers_from_one_pass_as_ints(value: int) -> None:
    assert check_positive_int(value, "n") == value
    numpy_value = check_positive_int(np.int64(value), "n")
    assert numpy_value == value and type(numpy_value) is int


@given(st.one_of(st.integers(max_value=0), st.booleans(), st.floats(), st.text(max_size=3)))
def test_everything_else_is_refused_naming_the_argument(value: object) -> None:
    with pytest.raises(LSSArgumentError, match=r"^count=.* must be an integer >= 1$") as caught:
        check_positive_int(value, "count")
    assert caught.value.argument == "count"


def test_the_shown_name_can_be_more_precise_than_the_argument() -> None:
    with pytest.raises(LSSArgumentError, match=r"^stage_steps\[1\]=0 must") as caught:
        check_positive_int(0, "stage_steps", shown="stage_steps[1]")
    assert caught.value.argument == "stage_steps"


UPSAMPLER = dict(
    in_channels=16, out_channels=16, block_out_channels=(64,), is_up_samples=(True,), strides=(2,)
)
CALIBRATION = dict(
    relative_error=0.1, latent_variance=1.0, num_crops=8, crop_size=64, source="held-out"
)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: plan_stages(64, 64, num_steps=0, schedule=flux_schedule()), "num_steps"),
        (lambda: plan_stages(0, 64, num_steps=4, schedule=flux_schedule()), "height"),
        (lambda: plan_stages(64, 64, num_steps=4, min_size=0), "min_size"),
        (lambda: plan_stages(64, 64, num_steps=4, stage_steps=(4, 0)), "stage_steps"),
        (lambda: plan_stages(64, 64, num_steps=4, final_steps=0), "final_steps"),
        (lambda: exponential_sigmas(0, 0.1, 10.0), "num_steps"),
        (lambda: UpsamplerConfig(**{**UPSAMPLER, "in_channels": 0}), "in_channels"),
        (
            lambda: UpsamplerConfig(**{**UPSAMPLER, "block_out_channels": (0,)}),
            "block_out_channels",
        ),
        (lambda: ScalerCalibration(**{**CALIBRATION, "num_crops": 0}), "num_crops"),
    ],
)
def test_every_count_is_refused_by_the_one_check(call, argument: str) -> None:
    with pytest.raises(LSSArgumentError, match=r"=0 must be an integer >= 1") as caught:
        call()
    assert caught.value.argument == argument
