"""The Diffusers VAE adapter: folder discovery, model-space conventions, encode / decode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lssgen_diffusers.testing import tiny_vae
from lssgen_diffusers.vae import VaeCodec, find_vae_folder, load_vae


def test_vae_folder_and_pipeline_folder_are_both_found(vae4_dir: Path, pipeline_dir: Path) -> None:
    assert find_vae_folder(vae4_dir) == vae4_dir
    assert find_vae_folder(pipeline_dir) == pipeline_dir / "vae"


def test_missing_vae_folders_raise_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="VAE folder not found"):
        find_vae_folder(tmp_path / "nope")
    (tmp_path / "model_index.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"pipeline folder .* has no vae/config\.json"):
        find_vae_folder(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="neither a Diffusers VAE folder"):
        find_vae_folder(empty)
    with pytest.raises(FileNotFoundError, match="is a file"):
        find_vae_folder(tmp_path / "model_index.json")


def test_vae_folder_without_weights_is_a_clear_error(tmp_path: Path, vae4_dir: Path) -> None:
    shutil.copy(vae4_dir / "config.json", tmp_path / "config.json")
    with pytest.raises(ValueError, match="could not load the VAE"):
        load_vae(tmp_path)


@pytest.mark.parametrize("kind", ["sd", "flux", "sdxl_mean_std"])
def test_codec_latents_follow_each_family_convention(kind: str) -> None:
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    if kind == "sd":
        vae = tiny_vae(4, seed=0, scaling_factor=0.18215)
    elif kind == "flux":
        vae = tiny_vae(16, seed=0, scaling_factor=0.3611, shift_factor=0.1159)
    else:
        vae = tiny_vae(4, seed=0, scaling_factor=0.5)
        vae.register_to_config(latents_mean=[0.1, -0.2, 0.3, 0.0], latents_std=[1.5, 0.5, 2, 1])
    with torch.no_grad():
        raw = vae.encode(image).latent_dist.mode()
    scale = vae.config.scaling_factor
    if kind == "sd":
        expected = raw * scale
    elif kind == "flux":
        expected = (raw - 0.1159) * scale
    else:
        mean = torch.tensor(vae.config.latents_mean).view(1, 4, 1, 1)
        std = torch.tensor(vae.config.latents_std).view(1, 4, 1, 1)
        expected = (raw - mean) * scale / std
    codec = VaeCodec.from_vae(vae)
    latent = codec.encode(image)
    assert torch.allclose(latent, expected, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(codec.decode(latent), vae.decode(raw).sample, atol=1e-5)


def test_codec_encodes_into_model_space_like_the_pipelines() -> None:
    vae = tiny_vae(16, seed=0)  # SD3 factors: scaling 1.5305, shift 0.0609
    codec = VaeCodec.from_vae(vae)
    assert (codec.latent_channels, codec.spatial_factor) == (16, 8)
    image = torch.rand(2, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        raw = vae.encode(image).latent_dist.mode()
    expected = (raw - vae.config.shift_factor) * vae.config.scaling_factor
    latent = codec.encode(image)
    assert latent.shape == (2, 16, 4, 6) and latent.dtype == torch.float32
    assert torch.allclose(latent, expected)
    decoded = codec.decode(latent)
    with torch.no_grad():
        direct = vae.decode(latent / vae.config.scaling_factor + vae.config.shift_factor).sample
    assert torch.allclose(decoded, direct, atol=1e-6)


def test_decode_keeps_the_graph_for_pixel_losses(codec4) -> None:
    latent = torch.randn(1, 4, 4, 4, requires_grad=True)
    codec4.decode(latent).abs().mean().backward()
    assert latent.grad is not None and latent.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in codec4.vae.parameters())


def test_load_vae_from_a_pipeline_folder(pipeline_dir: Path, codec4) -> None:
    codec = load_vae(pipeline_dir)
    image = torch.rand(1, 3, 16, 16) * 2 - 1
    assert torch.equal(codec.encode(image), codec4.encode(image))
    assert not any(p.requires_grad for p in codec.vae.parameters())


def test_non_vae_class_is_refused(tmp_path: Path, vae4_dir: Path) -> None:
    shutil.copytree(vae4_dir, tmp_path / "v")
    config = json.loads((tmp_path / "v" / "config.json").read_text())
    config["_class_name"] = "DDIMScheduler"
    (tmp_path / "v" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not a Diffusers VAE class"):
        load_vae(tmp_path / "v")
