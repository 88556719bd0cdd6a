"""Stage `vae`: lssgen-mini's `AutoencoderKL` (8x, 16 latent channels), trained on renders.

Architecture (`VaeArch`): four blocks of (16, 32, 64, 128) channels, one resnet per encoder block,
no mid-block attention (fully convolutional, so 128 px crops teach it every size) and no quant
convs (as the SD3 / FLUX VAEs): 2.63 M parameters (0.98 M encoder). Small channel counts at full
resolution keep encoding cheap, which matters twice on CPU: caching latents for the transformer
and training the upsampler.

Loss: L1 between the image and its reconstruction from a posterior sample, plus `kl_weight` times
the KL to N(0, I) (summed per image, as SD's VAEs). Batches are `crop` px patches of scenes
rendered at 128 or 256 px, randomly flipped; scene `i` of step `k` is scene `k * batch + i` of
the dataset `TRAIN_DATA_SEED`, so the data never repeats and resumes exactly.

After training, `latent_statistics` encodes renders at the native size and stores SD3-style
normalisation in the config (`shift_factor` = mean, `scaling_factor` = 1 / std of the latents),
so model-space latents are about zero-mean, unit-variance, as the flow model and the upsampler
assume.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from lssgen.mini.data_files import read_config
from lssgen.mini.train_data import HELD_OUT_SEED, TRAIN_DATA_SEED, random_crop, render_batch
from lssgen.mini.train_text import seeded
from lssgen_core.errors import LSSArgumentError
from lssgen_core.validation import non_negative, positive

NATIVE_SIZE = 256


def _int_tuple(values: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


@attrs.frozen
class VaeArch:
    block_out_channels: tuple[int, ...] = attrs.field(
        default=(16, 32, 64, 128), converter=_int_tuple
    )
    layers_per_block: int = 1
    latent_channels: int = 16
    norm_num_groups: int = 8

    @property
    def spatial_factor(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)


def build_vae(arch: VaeArch, seed: int) -> Any:
    """A freshly initialised `AutoencoderKL`; the same seed gives the same weights. What `arch`
    does not set is in `configs/vae.json`: no quant convs, no mid-block attention (see the
    module docstring)."""
    # Lazy for start-up: Diffusers takes ~3 s to import; only building or loading models needs it.
    from diffusers import AutoencoderKL

    blocks = len(arch.block_out_channels)
    with seeded(seed):
        return AutoencoderKL(
            **read_config("vae"),
            down_block_types=("DownEncoderBlock2D",) * blocks,
            up_block_types=("UpDecoderBlock2D",) * blocks,
            sample_size=NATIVE_SIZE,
            **attrs.asdict(arch, recurse=False),
        )


@attrs.frozen
class VaeTrainConfig:
    arch: VaeArch = VaeArch()
    crop: int = attrs.field(default=128, validator=positive)
    render_sizes: tuple[int, ...] = attrs.field(default=(128, 256), converter=_int_tuple)
    kl_weight: float = attrs.field(default=1e-6, validator=non_negative)
    data_seed: int = attrs.field(default=TRAIN_DATA_SEED, validator=non_negative)

    def __attrs_post_init__(self) -> None:
        if self.crop % self.arch.spatial_factor:
            raise LSSArgumentError("crop", f"crop must be a multiple of {self.arch.spatial_factor}")
        if not self.render_sizes or min(self.render_sizes) < self.crop:
            raise LSSArgumentError(
                "render_sizes", f"render_sizes must be at least the crop ({self.crop} px)"
            )


@attrs.frozen
class VaeTask:
    """The VAE's loss per step (see the module docstring)."""

    config: VaeTrainConfig
    batch_size: int

    def images(self, step: int, generator: torch.Generator) -> Tensor:
        first = step * self.batch_size
        c = self.config
        return torch.stack(
            [
                random_crop(c.data_seed, first + i, c.render_sizes, c.crop, generator)
                for i in range(self.batch_size)
            ]
        )

    def loss(
        self, net: nn.Module, step: int, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, float]]:
        vae: Any = net  # an AutoencoderKL: encode and decode, not just forward
        images = self.images(step, generator).to(next(net.parameters()).device)
        posterior = vae.encode(images).latent_dist
        recon = vae.decode(posterior.sample(generator=generator)).sample
        l1 = (recon.float() - images).abs().mean()
        kl = posterior.kl().mean()
        loss = l1 + self.config.kl_weight * kl
        return loss, {"l1": float(l1.detach()), "kl": float(kl.detach())}

    def identity(self) -> dict[str, Any]:
        return {"stage": "vae", "batch_size": self.batch_size, **attrs.asdict(self.config)}


@torch.no_grad()
def encode_mode(vae: Any, images: Tensor) -> Tensor:
    """Raw latents (posterior means: no sampling noise in statistics, caches or targets)."""
    return vae.encode(images.to(vae.device, vae.dtype)).latent_dist.mode().float()


@torch.no_grad()
def latent_statistics(
    vae: Any, *, count: int = 128, size: int = NATIVE_SIZE, batch: int = 16
) -> tuple[float, float]:
    """(shift_factor, scaling_factor) from `count` renders at `size`: mean and 1 / std."""
    chunks = []
    for first in range(0, count, batch):
        indices = range(first, min(first + batch, count))
        chunks.append(encode_mode(vae, render_batch(TRAIN_DATA_SEED, indices, size)))
    latents = torch.cat(chunks)
    shift = float(latents.mean())
    return shift, float(1.0 / (latents - shift).std())


@torch.no_grad()
def held_out_psnr(vae: Any, *, count: int = 16, size: int = NATIVE_SIZE) -> float:
    """Mean PSNR (dB, images in [-1, 1]) of the reconstruction of held-out renders."""
    images = render_batch(HELD_OUT_SEED, range(count), size)
    recon = vae.decode(encode_mode(vae, images).to(vae.dtype)).sample.float().cpu()
    mse = (recon.clamp(-1, 1) - images).pow(2).flatten(1).mean(1)
    return float((10 * torch.log10(4.0 / mse.clamp_min(1e-12))).mean())


def finish_vae(vae: Any, *, stats_count: int = 128, size: int = NATIVE_SIZE) -> dict[str, float]:
    """Store the latent normalisation in `vae.config`; returns it with the held-out PSNR."""
    vae.eval()
    shift, scaling = latent_statistics(vae, count=stats_count, size=size)
    if not (math.isfinite(shift) and math.isfinite(scaling)):
        raise ValueError("the VAE's latents are not finite; training diverged")
    vae.register_to_config(shift_factor=shift, scaling_factor=scaling)
    return {
        "shift_factor": shift,
        "scaling_factor": scaling,
        "psnr_db": held_out_psnr(vae, size=size),
    }
