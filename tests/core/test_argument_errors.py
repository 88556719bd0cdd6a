"""A bad argument raises LSSArgumentError carrying the argument's name (issue 15): callers read
``.argument`` instead of parsing the message, which may name the argument anywhere or not first."""

import math

import attrs
import pytest

from lssgen_core.errors import LSSArgumentError, LSSArgumentTypeError
from lssgen_core.plan import plan_stages
from lssgen_core.plan_arguments import check_plan_arguments, check_plan_values
from lssgen_core.upsample import make_latent_scaler
from lssgen_core.validation import fraction, non_negative, one_of, positive

PLAN = dict(height=1024, width=1024, num_steps=8, min_size=512, patch_size=2)


@pytest.mark.parametrize(
    ("bad", "argument"),
    [
        (dict(start_sigma=1.5), "start_sigma"),
        (dict(start_sigma="0.7"), "start_sigma"),
        (dict(start_sigma=math.nan), "start_sigma"),
        (dict(num_steps=0), "num_steps"),
        (dict(min_size=0), "min_size"),
        (dict(min_size=2048), "min_size"),
        (dict(height=1000), "height"),
        (dict(width=-8), "width"),
        (dict(patch_size=0), "patch_size"),
        (dict(vae_scale_factor=1.5), "vae_scale_factor"),
        (dict(shorten_steps="no"), "shorten_steps"),
        (dict(entry_rule="snr"), "entry_rule"),
        (dict(stage_steps=(4, 0)), "stage_steps"),
        (dict(stage_steps=4), "stage_steps"),
        (dict(stage_entries=(1.0,)), "stage_entries"),
        (dict(stage_steps=(4, 2), stage_entries=(0.5, 0.3)), "stage_entries"),
        (dict(stage_steps=(4, 2), final_steps=2), "final_steps"),
        (dict(stage_steps=(4, 2), shorten_steps=True), "shorten_steps"),
        (dict(stage_steps=(4, 2), start_sigma=1.0), "start_sigma"),
        (dict(stage_steps=(4, 2, 1)), "min_size"),  # min_size=512 plans two stages
        (dict(final_steps=2, min_size=1024), "final_steps"),
        (dict(schedule=lambda n, size: [1.0] * (n + 1)), "schedule"),
    ],
)
def test_every_plan_argument_error_names_its_argument(bad, argument):
    with pytest.raises(LSSArgumentError) as info:
        plan_stages(**{**PLAN, **bad})
    assert info.value.argument == argument
    assert argument in str(info.value)


def test_a_value_of_the_wrong_type_is_a_type_error_too():
    with pytest.raises(TypeError) as info:
        plan_stages(**{**PLAN, "start_sigma": "0.7"})
    assert isinstance(info.value, LSSArgumentTypeError)
    assert isinstance(info.value, ValueError)  # one except clause catches every argument error


def test_callers_name_the_arguments_as_they_call_them():
    values = check_plan_values(start_sigma=0.75)
    with pytest.raises(LSSArgumentError) as info:
        check_plan_arguments(
            64, 64, values, num_steps=4, min_size=128, min_size_argument="min_resolution"
        )
    assert info.value.argument == "min_resolution"
    assert str(info.value).startswith("min_resolution=128 must be <= min(height, width) = 64")
    with pytest.raises(LSSArgumentError) as info:
        check_plan_arguments(64, 64, values, num_steps=0, steps_argument="num_inference_steps")
    assert info.value.argument == "num_inference_steps"
    with pytest.raises(LSSArgumentError) as info:
        check_plan_values(stage_steps=(4, 2), shorten_steps=True, shorten_argument="shorten_x")
    assert info.value.argument == "shorten_x" and "shorten_x=True" in str(info.value)


def test_resnet_without_an_upsampler_names_the_latent_upsampler():
    with pytest.raises(LSSArgumentError) as info:
        make_latent_scaler("resnet")
    assert info.value.argument == "latent_upsampler"


@attrs.frozen
class _Config:
    lr: float = attrs.field(default=1.0, validator=positive)
    decay: float = attrs.field(default=0.0, validator=non_negative)
    ema: float = attrs.field(default=0.5, validator=fraction)
    mode: str = attrs.field(default="a", validator=one_of(("a", "b")))


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"lr": 0.0}, "lr"), ({"decay": -1}, "decay"), ({"ema": 2}, "ema"), ({"mode": "c"}, "mode")],
)
def test_config_validators_name_the_field(bad, field):
    with pytest.raises(LSSArgumentError) as info:
        _Config(**bad)
    assert info.value.argument == field
