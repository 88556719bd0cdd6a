"""Upsamplers for 32 and 128 latent channels: the layouts we chose (the original released only 4-
and 16-channel ones), trained by `lssgen train-upsampler`, loaded into FLUX.2 [klein]'s pipeline
(whose upsampler runs on the normalised 32-channel spatial latent)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from upsample_training_support import SIZE

from lssgen.cli import main
from lssgen.training.train import default_upsampler_config
from lssgen_core.upsample import LatentUpsampler, UpsamplerConfig
from lssgen_diffusers.flux2_klein import LSSFlux2KleinPipeline
from lssgen_diffusers.testing import save_tiny_pipeline, tiny_vae
from lssgen_diffusers.testing_flux2 import tiny_flux2_klein_pipeline
from lssgen_diffusers.vae import VaeCodec, load_vae
from lssgen_diffusers.vae_space import to_model_latents

TINY = ["--size", str(SIZE), "--batch-size", "4", "--lr", "1e-3", "--num-workers", "0"]


@pytest.mark.parametrize(
    ("channels", "widths", "parameters"), [(32, (128, 64), 585_312), (128, (256, 128), 2_559_232)]
)
def test_released_layouts_for_32_and_128_channels(
    channels: int, widths: tuple[int, int], parameters: int
) -> None:
    config = UpsamplerConfig.released(channels)
    assert (config.in_channels, config.out_channels) == (channels, channels)
    assert config.block_out_channels == widths
    assert (config.is_up_samples, config.strides) == ((True, False), (2, 1))
    assert default_upsampler_config(channels) == config  # what train-upsampler builds
    model = LatentUpsampler(config).eval()
    assert sum(p.numel() for p in model.parameters()) == parameters
    with torch.no_grad():
        out = model(torch.randn(1, channels, 3, 5))
    assert tuple(out.shape) == (1, channels, 6, 10)


def test_other_channel_counts_have_no_released_layout() -> None:
    with pytest.raises(ValueError, match=r"latent_channels must be one of \[4, 16, 32, 128\]"):
        UpsamplerConfig.released(8)


@pytest.fixture(scope="module")
def klein_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny FLUX.2 [klein] pipeline folder (its vae/ is what train-upsampler reads)."""
    return save_tiny_pipeline(tiny_flux2_klein_pipeline(0), tmp_path_factory.mktemp("klein"))


def test_the_flux2_codec_is_the_pipelines_spatial_view(klein_dir: Path) -> None:
    codec = load_vae(klein_dir)
    assert isinstance(codec, VaeCodec)
    assert (codec.latent_channels, codec.spatial_factor) == (32, 8)
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    latent = codec.encode(image)
    raw = codec.vae.encode(image).latent_dist.mode()
    torch.testing.assert_close(latent, to_model_latents(codec.vae, raw))
    assert tuple(codec.decode(latent).shape) == (1, 3, 64, 64)


def train(vae: Path, images: Path, output: Path) -> LatentUpsampler:
    args = ["train-upsampler", "--vae", str(vae), "--images", str(images)]
    assert main([*args, "--output", str(output), *TINY, "--steps", "3"]) == 0
    return LatentUpsampler.from_pretrained(output)


def test_train_upsampler_trains_32_channels_for_flux2_klein(
    klein_dir: Path, train_dir: Path, tmp_path: Path
) -> None:
    trained = train(klein_dir, train_dir, tmp_path / "up32")
    assert trained.config == UpsamplerConfig.released(32)
    summary = json.loads((tmp_path / "up32" / "lssgen_training.json").read_text())
    assert summary["steps_done"] == 3 and summary["latent_channels"] == 32
    # Into the pipeline folder: the LSS pipeline loads it as its latent_upsampler and runs it.
    folder = tmp_path / "pipeline"
    shutil.copytree(klein_dir, folder)
    shutil.copytree(tmp_path / "up32", folder / "latent_upsampler")
    pipe = LSSFlux2KleinPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    loaded = pipe.latent_upsampler
    assert isinstance(loaded, LatentUpsampler)
    for name, tensor in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    calls: list[tuple[int, ...]] = []
    handle = loaded.register_forward_pre_hook(lambda _, args: calls.append(tuple(args[0].shape)))
    try:
        out = pipe(
            prompt="a red circle",
            height=128,
            width=128,
            num_inference_steps=4,
            min_size=64,
            guidance_scale=1.0,
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
        ).images
    finally:
        handle.remove()
    assert calls == [(1, 32, 8, 8)]
    assert tuple(out.shape) == (1, 32, 16, 16) and torch.isfinite(out).all()


def test_train_upsampler_trains_128_channels(
    train_dir: Path, tmp_path: Path, klein_dir: Path
) -> None:
    # A VAE with 128 latent channels; FLUX.2's pipelines use the 32-channel view, and say so.
    vae_dir = tmp_path / "vae128"
    tiny_vae(128, seed=0).save_pretrained(vae_dir)
    trained = train(vae_dir, train_dir, tmp_path / "up128")
    assert trained.config == UpsamplerConfig.released(128)
    with torch.no_grad():
        assert tuple(trained(torch.randn(1, 128, 4, 4)).shape) == (1, 128, 8, 8)
    pipe = LSSFlux2KleinPipeline.from_pretrained(klein_dir, latent_upsampler=trained)
    pipe.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match=r"latent_upsampler.*128.*32|latent_upsampler.*32.*128"):
        pipe(prompt="a", height=128, width=128, num_inference_steps=4, min_size=64)
