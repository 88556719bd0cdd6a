"""A Diffusers VAE as the `encode` / `decode` pair the upsampler tools need, in model space.

Model space is where the denoiser (and so the latent upsampler) works: the raw VAE latent after the
VAE's own normalisation, from the VAE config's fields:

* SD / SDXL: `z * scaling_factor`;
* SD3 / FLUX / CogView4: `(z - shift_factor) * scaling_factor`;
* VAEs with per-channel `latents_mean` / `latents_std` (the SDXL pipeline's convention, e.g.
  Playground v2.5): `(z - mean) * scaling_factor / std`.

The conversion itself is `lssgen_diffusers.vae_space`, the one the LSS pipelines use, so an
upsampler is trained in exactly the space it is later applied in. FLUX latents are plain
(B, 16, h, w) at the VAE level; 2x2 token packing is the FLUX pipeline's business, not the VAE's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor

from lssgen_core.upsample.io import CONFIG_NAME
from lssgen_diffusers.vae_space import to_model_latents, to_vae_latents
from lssgen_diffusers.video_vae import OnVae, VideoFrameCodec, video_codec_of

VAE_SUBFOLDER = "vae"
PIPELINE_INDEX = "model_index.json"


def find_vae_folder(path: str | os.PathLike[str]) -> Path:
    """The folder holding the VAE's config: `path` itself, or its `vae/` subfolder."""
    folder = Path(path)
    if not folder.exists():
        raise FileNotFoundError(f"VAE folder not found: {folder}")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} is a file; pass a Diffusers VAE folder (with {CONFIG_NAME}) or a pipeline "
            f"folder with a {VAE_SUBFOLDER}/ subfolder"
        )
    sub = folder / VAE_SUBFOLDER
    if (sub / CONFIG_NAME).is_file():
        return sub
    if (folder / PIPELINE_INDEX).is_file():
        raise FileNotFoundError(
            f"{folder} is a pipeline folder ({PIPELINE_INDEX}) but has no {VAE_SUBFOLDER}/"
            f"{CONFIG_NAME}"
        )
    if (folder / CONFIG_NAME).is_file():
        return folder
    raise FileNotFoundError(
        f"{folder} is neither a Diffusers VAE folder ({CONFIG_NAME}) nor a pipeline folder "
        f"({VAE_SUBFOLDER}/{CONFIG_NAME})"
    )


def _raw_latent(output: Any) -> Tensor:
    if isinstance(output, tuple):
        output = output[0]
    dist = getattr(output, "latent_dist", None)
    if dist is not None:
        # The mode (mean), not a sample: training targets and inputs must not carry VAE noise.
        mode: Tensor = dist.mode()
        return mode
    latent = getattr(output, "latent", None)
    if isinstance(latent, Tensor):
        return latent
    raise TypeError(f"VAE.encode returned {type(output).__name__}, which has no latent")


def _image(output: Any) -> Tensor:
    if isinstance(output, tuple):
        output = output[0]
    sample = getattr(output, "sample", output)
    if not isinstance(sample, Tensor):
        raise TypeError(f"VAE.decode returned {type(output).__name__}, which has no sample")
    return sample


@attrs.frozen(eq=False)
class VaeCodec(OnVae):
    """`encode`: image (B, 3, H, W) in [-1, 1] -> model-space latent (float32, no graph);
    `decode`: model-space latent -> image (float32, keeps the graph for pixel losses)."""

    vae: Any  # a Diffusers VAE: duck-typed `encode` / `decode` / `config`
    latent_channels: int
    spatial_factor: int

    @classmethod
    def from_vae(cls, vae: Any) -> VaeCodec:
        config: Mapping[str, Any] = vae.config
        channels = config.get("latent_channels")
        # Diffusers' own rule (pipelines' vae_scale_factor); a DC-AE (SANA) names its blocks
        # encoder_block_out_channels, and SanaPipeline applies the same rule to them.
        blocks = config.get("block_out_channels") or config.get("encoder_block_out_channels")
        if isinstance(channels, int) and isinstance(blocks, Sequence) and blocks:
            return cls(vae, channels, 2 ** (len(blocks) - 1))
        # Other layouts (e.g. a deep-compression VAE): measure instead of guessing.
        codec = cls(vae, 0, 0)
        probe = codec.encode(torch.zeros(1, 3, 64, 64, device=codec.device))
        return cls(vae, int(probe.shape[1]), 64 // int(probe.shape[-1]))

    def encode(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            x = images.clamp(-1.0, 1.0).to(self.device, self.dtype)
            raw = _raw_latent(self.vae.encode(x))
            if raw.ndim != 4:
                raise ValueError(
                    f"the VAE gave a {raw.ndim}-D latent; only image VAEs with (B, C, h, w) "
                    "latents are supported"
                )
            return to_model_latents(self.vae, raw.float())

    def decode(self, latents: Tensor) -> Tensor:
        raw = to_vae_latents(self.vae, latents.float()).to(self.device, self.dtype)
        return _image(self.vae.decode(raw)).float()


#: What the pixel round trip and the upsampler tools take: an image VAE, or a video VAE coding
#: images as one-frame videos.
PixelCodec = VaeCodec | VideoFrameCodec


def _vae_class(folder: Path) -> Any:
    import diffusers

    config_path = folder / CONFIG_NAME
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{config_path} is not valid JSON: {exc}") from exc
    name = config.get("_class_name") if isinstance(config, dict) else None
    cls = getattr(diffusers, str(name) if name else "AutoencoderKL", None)
    if not (isinstance(cls, type) and hasattr(cls, "encode") and hasattr(cls, "decode")):
        raise ValueError(f"{config_path} describes {name!r}, which is not a Diffusers VAE class")
    return cls


def load_vae(
    path: str | os.PathLike[str],
    *,
    torch_dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> PixelCodec:
    """Load a VAE folder or a pipeline folder's `vae/`, frozen, as a `VaeCodec`. Offline only.

    A video VAE (Wan's, LTX-Video's, and Qwen-Image's, whose images are one-frame videos) comes
    as a `VideoFrameCodec`."""
    folder = find_vae_folder(path)
    cls = _vae_class(folder)
    try:
        vae = cls.from_pretrained(folder, torch_dtype=torch_dtype, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"could not load the VAE in {folder}: {exc}") from exc
    vae.requires_grad_(False)
    vae.eval().to(device)
    if video_codec_of(vae) is not None:
        return VideoFrameCodec.from_vae(vae)
    return VaeCodec.from_vae(vae)
