"""Bad LSS arguments fail with a ValueError naming the argument, before any model runs."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest
import torch
from lss_testkit import Pair, latent_call, lss_from_stock, random_upsampler, recorded_inputs

ARGS: dict[str, Any] = latent_call(128, 4, seed=None, min_size=64)

# (id, call arguments replacing ARGS entries (None removes one), message pattern)
BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    # Multiples of 16, which stock FLUX takes as they are, but not of 32 as two stages need.
    ("height", {"height": 144}, r"height=144 must be a multiple of 32"),
    ("width", {"width": 208}, r"width=208 must be a multiple of 32"),
    ("start_sigma=0", {"start_sigma": 0.0}, r"start_sigma=0.0 is outside"),
    ("start_sigma>1", {"start_sigma": 1.5}, r"start_sigma=1.5 is outside"),
    ("scaling_mode", {"scaling_mode": "magic"}, r"scaling_mode='magic' must be one of"),
    ("entry_rule", {"entry_rule": "later"}, r"entry_rule='later' must be one of"),
    ("min_size>target", {"min_size": 256}, r"min_size=256 must be <= min\(height, width\)"),
    (
        "min_resolution>target",
        {"min_size": None, "min_resolution": 256},
        r"min_resolution=256 must be <=",
    ),
    ("min_size+alias", {"min_resolution": 64}, r"pass min_size or its alias min_resolution"),
    ("min_size<1", {"min_size": 0}, r"min_size=0 must be an integer >= 1"),
    ("generator", {"generator": [torch.Generator()] * 3}, r"generator is a list of 3"),
    ("latents", {"latents": torch.zeros(1, 64, 64)}, r"latents has shape \(1, 64, 64\)"),
    ("sigmas", {"sigmas": [1.0, 0.5, 0.25, 0.1]}, r"sigmas fixes one schedule"),
    # The stock check_inputs, run before any stage as the one-stage call runs it.
    ("prompt", {"prompt": None}, r"Provide either `prompt` or `prompt_embeds`"),
]


def assert_refused_before_work(pair: Pair, pipe: Any, pattern: str, **overrides: Any) -> None:
    arguments = {**ARGS, **overrides}
    arguments = {name: value for name, value in arguments.items() if value is not None}
    with ExitStack() as stack:
        calls = [
            stack.enter_context(recorded_inputs(module))
            for module in [pair.denoiser, *pair.text_encoders]
        ]
        with pytest.raises(ValueError, match=pattern):
            pipe(**arguments)
    assert all(recorded == [] for recorded in calls)


@pytest.mark.parametrize(
    ("overrides", "pattern"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
def test_bad_call_is_refused_before_any_work(
    lss_pair: Any, overrides: dict[str, Any], pattern: str
) -> None:
    pair = lss_pair("flux")
    assert_refused_before_work(pair, pair.lss, pattern, **overrides)


def test_resnet_mode_needs_an_upsampler(lss_pair: Any) -> None:
    pair = lss_pair("sd3")
    pipe = lss_from_stock("sd3", pair.stock, latent_upsampler=None)
    assert_refused_before_work(pair, pipe, r"scaling_mode='resnet' \(the default\) uses")
    # The other modes need none, and a single stage needs nothing at all.
    assert pipe(**ARGS, scaling_mode="latent").images.shape[-1] == 16
    assert pipe(**{**ARGS, "start_sigma": 1.0}).images.shape[-1] == 16


def test_upsampler_must_match_the_vae_channels(lss_pair: Any) -> None:
    pair = lss_pair("sd")
    pipe = lss_from_stock("sd", pair.stock, latent_upsampler=random_upsampler(16))
    assert_refused_before_work(
        pair, pipe, r"latent_upsampler has in_channels=16 but the VAE's latent has 4 channels"
    )


def test_upsampler_component_type_is_checked(lss_pair: Any) -> None:
    with pytest.raises(TypeError, match="latent_upsampler must be a LatentUpsampler"):
        lss_from_stock("sd", lss_pair("sd").stock, latent_upsampler=torch.nn.Identity())


def test_default_min_size_larger_than_the_image_means_one_stage(lss_pair: Any) -> None:
    # SDXL's default min_size is 1024; a 128 px image then simply runs as the stock pipeline.
    pair = lss_pair("sdxl")
    arguments = {**ARGS, "min_size": None}
    del arguments["min_size"]
    got = pair.lss(**arguments, generator=torch.Generator().manual_seed(0)).images
    expected = pair.stock(**arguments, generator=torch.Generator().manual_seed(0)).images
    assert pair.lss.lss_plan.is_single_stage
    assert torch.equal(got, expected)
