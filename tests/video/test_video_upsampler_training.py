"""Training a per-frame upsampler through a video VAE: images as one-frame videos
(lssgen_diffusers.video_vae.VideoFrameCodec), end to end with `lssgen train-upsampler`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lssgen.cli import main
from lssgen.training.train import default_upsampler_config, init_upsampler
from lssgen_core.upsample import LatentUpsampler
from lssgen_diffusers.testing_video import tiny_ltx_vae, tiny_wan_vae
from lssgen_diffusers.vae import load_vae
from lssgen_diffusers.video_vae import VideoFrameCodec, video_codec_of


def smooth_images(folder: Path, count: int, size: int = 160) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    grid = np.linspace(0, 1, size)
    for i in range(count):
        fx, fy, phase = rng.uniform(1, 4, 3)
        base = np.sin(2 * np.pi * (fx * grid[None, :] + fy * grid[:, None]) + phase)
        pixels = np.stack([base, base.T, -base], axis=-1) * 100 + 128
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"frame{i:03d}.png")
    return folder


@pytest.mark.parametrize("build", [tiny_wan_vae, tiny_ltx_vae], ids=["wan", "ltx"])
def test_an_image_codes_as_the_first_latent_frame_of_a_video(build) -> None:
    """Causal video VAEs code the first frame alone: an image's latent is that frame's."""
    vae = build(0)
    codec = VideoFrameCodec.from_vae(vae)
    video_codec = video_codec_of(vae)
    assert video_codec is not None
    frames = 1 + vae.temporal_compression_ratio if hasattr(vae, "temporal_compression_ratio") else 5
    size = 2 * codec.spatial_factor
    video = torch.rand(1, 3, frames, size, size) * 2 - 1
    with torch.no_grad():
        as_image = codec.encode(video[:, :, 0])
        as_video = video_codec.encode(video)
    assert as_image.shape == (1, codec.latent_channels, 2, 2)
    torch.testing.assert_close(as_image, as_video[:, :, 0], rtol=1e-4, atol=1e-5)
    assert codec.decode(as_image).shape == (1, 3, size, size)


def test_train_upsampler_through_a_wan_vae(tmp_path: Path) -> None:
    vae_dir = tmp_path / "wan_vae"
    tiny_wan_vae(0).save_pretrained(vae_dir)
    codec = load_vae(vae_dir)
    assert isinstance(codec, VideoFrameCodec)
    assert (codec.latent_channels, codec.spatial_factor) == (16, 8)
    images = smooth_images(tmp_path / "frames", 6)
    out = tmp_path / "upsampler"
    args = [
        "train-upsampler", "--vae", str(vae_dir), "--images", str(images), "--output", str(out),
        "--size", "64", "--batch-size", "2", "--steps", "3", "--lr", "1e-3",
        "--num-workers", "0", "--seed", "0",
    ]  # fmt: skip
    assert main(args) == 0
    trained = LatentUpsampler.from_pretrained(out)
    assert trained.in_channels == 16
    summary = json.loads((out / "lssgen_training.json").read_text())
    assert summary["steps_done"] == 3 and summary["latent_channels"] == 16
    start = init_upsampler(default_upsampler_config(16), 0).state_dict()
    assert any(not torch.equal(start[k], v) for k, v in trained.state_dict().items())
