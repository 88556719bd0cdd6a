"""Compare latent scalers on held-out crops: latent MSE, decoded PSNR / SSIM, time per call.

Each crop gives a pair as in training (high-resolution crop, its 2x downsample), both encoded.
Every scaler maps the low latent to the high latent's size; the result is compared with the
encoded high crop (latent MSE) and, decoded, with the high crop itself (PSNR, SSIM). The VAE's own
reconstruction of the high crop is reported too: no scaler can beat that in pixel space, so it
puts the PSNR / SSIM figures in proportion.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from lssgen.training.metrics import latent_mse, psnr, ssim
from lssgen.training.pairs import downsample, to_signed_unit
from lssgen_core.upsample.network import LatentUpsampler
from lssgen_core.upsample.scalers import (
    Decode,
    Encode,
    InterpolationScaler,
    LatentScaler,
    PixelRoundTripScaler,
)

REFERENCE = "vae reconstruction"
INPUT = "input (nearest 2x)"
TARGET = "target"


@attrs.frozen
class MethodScore:
    """Means over crops; `ms_per_call` is the median wall time of one batch-1 call."""

    name: str
    latent_mse: float
    psnr: float
    ssim: float
    ms_per_call: float

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        if math.isnan(self.ms_per_call):
            data["ms_per_call"] = None  # not timed (the VAE reconstruction row)
        return data


@attrs.frozen(eq=False)
class ScalerComparison:
    scores: tuple[MethodScore, ...]
    reference: MethodScore  # the VAE's reconstruction of the high crop
    num_crops: int
    crop_size: int  # high-resolution side in pixels
    downsample: str
    # Column name -> (K, 3, S, S) images in [-1, 1] for the first K crops, display order.
    previews: dict[str, Tensor]
    # Variance of the target latents (per channel, averaged): relative errors divide by it.
    latent_variance: float = math.nan

    def relative_error(self, name: str) -> float:
        """``name``'s latent MSE over the target latents' variance (what auto entry reads)."""
        return self.score(name).latent_mse / self.latent_variance

    def score(self, name: str) -> MethodScore:
        for score in self.scores:
            if score.name == name:
                return score
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_crops": self.num_crops,
            "crop_size": self.crop_size,
            "low_size": self.crop_size // 2,
            "downsample": self.downsample,
            "latent_variance": self.latent_variance,
            "methods": {
                s.name: {**s.to_dict(), "relative_error": self.relative_error(s.name)}
                for s in self.scores
            },
            "reference": self.reference.to_dict(),
        }


def standard_scalers(
    upsampler: LatentUpsampler | None, encode: Encode, decode: Decode
) -> dict[str, LatentScaler]:
    """The comparison of the original: learned, bicubic / bilinear / nearest latent, pixel."""
    scalers: dict[str, LatentScaler] = {}
    if upsampler is not None:
        scalers["upsampler"] = upsampler
    for mode in ("bicubic", "bilinear", "nearest"):
        scalers[mode] = InterpolationScaler(mode)
    scalers["pixel"] = PixelRoundTripScaler(decode, encode)
    return scalers


def _synchronize(device: torch.device) -> None:
    # Without it, GPU timings measure only the kernel launches.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_calls(scaler: LatentScaler, latents: Tensor) -> tuple[Tensor, list[float]]:
    """Scale each latent alone (batch 1, the pipelines' case); returns outputs and ms per call."""
    scaler(latents[:1])  # warm-up: first-call allocations and kernel selection are not the cost
    outputs, times = [], []
    for i in range(latents.shape[0]):
        _synchronize(latents.device)
        start = time.perf_counter()
        out = scaler(latents[i : i + 1])
        _synchronize(latents.device)
        times.append((time.perf_counter() - start) * 1000.0)
        outputs.append(out)
    return torch.cat(outputs), times


def _decoded(decode: Decode, latents: Tensor, batch_size: int) -> Tensor:
    chunks = [decode(latents[i : i + batch_size]) for i in range(0, len(latents), batch_size)]
    return torch.cat(chunks).float().clamp(-1.0, 1.0)


def _score(
    name: str, predicted: Tensor | None, images: Tensor, targets: Tensor, target_images: Tensor
) -> MethodScore:
    mse = 0.0 if predicted is None else float(latent_mse(predicted, targets).mean())
    return MethodScore(
        name=name,
        latent_mse=mse,
        psnr=float(psnr(images, target_images).mean()),
        ssim=float(ssim(images, target_images).mean()),
        ms_per_call=float("nan"),
    )


@torch.no_grad()
def compare_scalers(
    scalers: Mapping[str, LatentScaler],
    high_crops: Tensor,
    encode: Encode,
    decode: Decode,
    *,
    downsample_mode: str = "nearest",
    batch_size: int = 8,
    preview_count: int = 4,
) -> ScalerComparison:
    """Score each scaler on the uint8 high-resolution crops (N, 3, S, S), S even."""
    if high_crops.ndim != 4 or high_crops.shape[0] == 0:
        raise ValueError(
            f"high_crops must be a non-empty (N, 3, S, S) batch, got {high_crops.shape}"
        )
    images, lows, highs = [], [], []
    for i in range(0, high_crops.shape[0], batch_size):
        high = to_signed_unit(high_crops[i : i + batch_size])
        low = downsample(high, downsample_mode)
        images.append(high)
        lows.append(encode(low).float())
        highs.append(encode(high).float())
    target_images, low_latents, high_latents = torch.cat(images), torch.cat(lows), torch.cat(highs)
    target_images = target_images.to(high_latents.device)
    k = min(preview_count, len(target_images))
    input_preview = F.interpolate(downsample(target_images[:k], downsample_mode), scale_factor=2)
    previews = {TARGET: target_images[:k], INPUT: input_preview}

    recon = _decoded(decode, high_latents, batch_size)
    reference = _score(REFERENCE, None, recon, high_latents, target_images)
    previews[REFERENCE] = recon[:k]
    scores = []
    for name, scaler in scalers.items():
        predicted, times = _timed_calls(scaler, low_latents)
        if predicted.shape != high_latents.shape:
            raise ValueError(
                f"scaler {name!r} gave latents of shape {tuple(predicted.shape[1:])}, expected "
                f"{tuple(high_latents.shape[1:])}"
            )
        decoded = _decoded(decode, predicted.float(), batch_size)
        score = _score(name, predicted.float(), decoded, high_latents, target_images)
        scores.append(attrs.evolve(score, ms_per_call=statistics.median(times)))
        previews[name] = decoded[:k]
    return ScalerComparison(
        scores=tuple(scores),
        reference=reference,
        num_crops=len(target_images),
        crop_size=int(high_crops.shape[-1]),
        downsample=downsample_mode,
        previews={name: images.cpu() for name, images in previews.items()},
        latent_variance=latent_variance(high_latents),
    )


def latent_variance(latents: Tensor) -> float:
    """The variance of (N, C, H, W) latents about each channel's mean, averaged over channels
    (a channel's offset, e.g. a VAE's shift, is not spread the noise has to cover)."""
    per_channel = latents.double().transpose(0, 1).flatten(1)
    return float(per_channel.var(dim=1, correction=0).mean())


def format_table(result: ScalerComparison) -> str:
    """A plain-text table, one row per method, the VAE reconstruction last."""
    header = f"{'method':<20} {'latent MSE':>11} {'PSNR (dB)':>10} {'SSIM':>7} {'ms/call':>9}"
    lines = [header, "-" * len(header)]
    for s in (*result.scores, result.reference):
        ms = "-" if math.isnan(s.ms_per_call) else f"{s.ms_per_call:.3g}"
        lines.append(f"{s.name:<20} {s.latent_mse:>11.4g} {s.psnr:>10.2f} {s.ssim:>7.4f} {ms:>9}")
    lines.append(
        f"{result.num_crops} crops of {result.crop_size}px ({result.downsample} downsample to "
        f"{result.crop_size // 2}px); ms/call: median, batch 1"
    )
    return "\n".join(lines)


def compare_with_standard_scalers(
    upsampler: LatentUpsampler | None,
    high_crops: Tensor,
    encode: Encode,
    decode: Decode,
    **options: Any,
) -> ScalerComparison:
    """:func:`compare_scalers` of ``upsampler`` against the original's other scalers
    (:func:`standard_scalers`); ``options`` are :func:`compare_scalers`'s keywords."""
    scalers = standard_scalers(upsampler, encode, decode)
    return compare_scalers(scalers, high_crops, encode, decode, **options)
