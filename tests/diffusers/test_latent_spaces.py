"""Latent spaces other than 4 or 16 channels: the upsampler works in any channel count a family's
spatial view has (SANA's and FLUX.2's VAEs have 32 channels, FLUX.2 patchified 128)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from lss_testkit import lss_from_stock

from lssgen_core.upsample import LatentUpsampler, UpsamplerConfig


def config(channels: int) -> UpsamplerConfig:
    # The released 16-channel layout (block widths 128, 64), at another channel count.
    return UpsamplerConfig(
        in_channels=channels,
        out_channels=channels,
        block_out_channels=(128, 64),
        is_up_samples=(True, False),
        strides=(2, 1),
    )


@pytest.mark.parametrize("channels", [32, 128])
def test_upsampler_of_any_channel_count_doubles_and_round_trips(
    channels: int, tmp_path: Path
) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        upsampler = LatentUpsampler(config(channels)).eval()
    latents = torch.randn(2, channels, 8, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        doubled = upsampler(latents)
    assert tuple(doubled.shape) == (2, channels, 16, 12)
    assert torch.isfinite(doubled).all()
    upsampler.check_latent_channels(channels)
    with pytest.raises(ValueError, match="latent_upsampler"):
        upsampler.check_latent_channels(16)
    upsampler.save_pretrained(tmp_path / "up")
    loaded = LatentUpsampler.from_pretrained(tmp_path / "up").eval()
    with torch.no_grad():
        assert torch.equal(loaded(latents), doubled)


def test_the_upsampler_is_checked_against_the_familys_spatial_view(lss_pair: Any) -> None:
    pair = lss_pair("flux")
    assert pair.lss.lss_latent_channels == 16  # the unpacked view, not the packed 64
    wrong = lss_from_stock("flux", pair.stock, latent_upsampler=LatentUpsampler(config(32)))
    with pytest.raises(ValueError, match="latent_upsampler"):
        wrong("a circle", height=128, width=128, num_inference_steps=4, min_size=64)
