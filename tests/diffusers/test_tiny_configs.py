"""The tiny models' config data (``lssgen_diffusers.tiny_configs``) and its one builder
(``lssgen_diffusers.testing_build``)."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from lssgen_diffusers.testing import TINY_FAMILIES
from lssgen_diffusers.testing_build import (
    STREAMS,
    configured,
    stream_seed,
    tiny_module,
    tiny_stock_pipeline,
)
from lssgen_diffusers.tiny_configs import tiny_config

GROUPS = ("autoencoders", "denoisers", "pipelines", "schedulers", "text_encoders", "tokenizers")


def entries(group: str) -> list[str]:
    text = files("lssgen_diffusers.tiny_configs").joinpath(f"{group}.json").read_text("utf-8")
    return [name for name in json.loads(text) if not name.startswith("//")]


@pytest.mark.parametrize("group", GROUPS)
def test_every_config_resolves_without_comments_or_extends(group: str) -> None:
    for name in entries(group):
        config = tiny_config(group, name)
        assert "extends" not in config, name
        assert not any(key.startswith("//") for key in config), name


def test_extends_merges_the_base_under_the_own_values() -> None:
    flux = tiny_config("denoisers", "flux")
    assert flux["num_layers"] == 2 and flux["guidance_embeds"] is True
    assert flux["in_channels"] == tiny_config("denoisers", "flux_layout")["in_channels"] == 64
    assert tiny_config("schedulers", "flux2") == {
        **tiny_config("schedulers", "flux"),
        "time_shift_type": "exponential",
    }


def test_every_config_is_a_fresh_copy() -> None:
    text = tiny_config("text_encoders", "qwen_vl_text")
    text["rope_parameters"]["mrope_section"] = [1, 2, 3]
    assert "mrope_section" not in tiny_config("text_encoders", "qwen_vl_text")["rope_parameters"]


def test_an_unknown_config_is_named_in_the_error() -> None:
    with pytest.raises(KeyError, match=r"'nope' in denoisers\.json"):
        tiny_config("denoisers", "nope")


def test_a_misspelled_field_is_refused_by_the_class() -> None:
    with pytest.raises(TypeError, match="latent_chanels"):
        configured(AutoencoderKL, "autoencoders", "kl", latent_chanels=4)


def test_arrays_take_the_type_of_the_signature() -> None:
    unet = configured(UNet2DConditionModel, "denoisers", "unet", cross_attention_dim=32)
    assert unet.config.block_out_channels == (16, 32)  # a tuple, as Diffusers' own default
    assert unet.config.attention_head_dim == (2, 4)
    # A field the builder gives keeps its own type.
    assert configured(
        UNet2DConditionModel,
        "denoisers",
        "unet",
        cross_attention_dim=32,
        block_out_channels=[16, 32],
    ).config.block_out_channels == [16, 32]


def test_a_module_is_drawn_from_its_seed_in_eval_mode_and_leaves_the_rng_alone() -> None:
    state = torch.random.get_rng_state()
    first = tiny_module(AutoencoderKL, "autoencoders", "kl_sd", seed=stream_seed(3, "vae"))
    again = tiny_module(AutoencoderKL, "autoencoders", "kl_sd", seed=stream_seed(3, "vae"))
    other = tiny_module(AutoencoderKL, "autoencoders", "kl_sd", seed=stream_seed(4, "vae"))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not first.training
    weights = [module.encoder.conv_in.weight for module in (first, again, other)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_streams_are_distinct_offsets_below_sixteen() -> None:
    image = [STREAMS[name] for name in ("vae", "denoiser", "text_encoder", "text_encoder_2")]
    assert len(set(image)) == len(image)
    assert all(0 < offset < 16 for offset in STREAMS.values())
    assert stream_seed(1, "vae") == 17


def test_every_family_has_a_pipeline_spec() -> None:
    specs = set(entries("pipelines"))
    assert {kind for kind in TINY_FAMILIES} <= specs


def test_a_part_both_given_and_in_the_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="'scheduler' is both given"):
        tiny_stock_pipeline(dict, "flux", 0, {"scheduler": None})
