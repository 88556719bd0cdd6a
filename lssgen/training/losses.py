"""Training loss of the latent upsampler: latent MSE plus optional pixel-space terms.

The original trains with latent MSE + LPIPS(alex) on the decoded prediction, weights 1 and 1. The
pixel terms need the (frozen) VAE decoder in the graph, which costs far more than the upsampler
itself, so they are off unless asked for.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch.nn.functional as F
from torch import Tensor

from lssgen_core.validation import non_negative

Decode = Callable[[Tensor], Tensor]
# (image_a, image_b) in [-1, 1] -> per-sample distance (B,) or a scalar.
Perceptual = Callable[[Tensor, Tensor], Tensor]


@attrs.frozen(eq=False)
class LossTerms:
    """The differentiable total and each term as a float, for logging."""

    total: Tensor
    parts: dict[str, float]


@attrs.frozen(eq=False)
class UpsamplerLoss:
    """latent_weight * MSE(latent) + pixel_weight * L1(decoded, image) + lpips_weight * LPIPS.

    `decode` maps a model-space latent to an image in [-1, 1] and must keep the autograd graph
    (no `torch.no_grad` inside); `lpips` is any perceptual distance, e.g. `lpips.LPIPS`.
    """

    latent_weight: float = attrs.field(default=1.0, validator=non_negative)
    pixel_weight: float = attrs.field(default=0.0, validator=non_negative)
    lpips_weight: float = attrs.field(default=0.0, validator=non_negative)
    decode: Decode | None = None
    lpips: Perceptual | None = None

    def __attrs_post_init__(self) -> None:
        if self.needs_images and self.decode is None:
            raise ValueError("pixel or LPIPS loss weights need a decode callable")
        if self.lpips_weight > 0 and self.lpips is None:
            raise ValueError("lpips_weight > 0 needs an lpips callable")

    @property
    def needs_images(self) -> bool:
        """Whether the loss compares decoded images (so batches must carry the images)."""
        return self.pixel_weight > 0 or self.lpips_weight > 0

    def __call__(
        self, prediction: Tensor, target_latent: Tensor, target_image: Tensor | None = None
    ) -> LossTerms:
        if prediction.shape != target_latent.shape:
            raise ValueError(
                f"upsampled latent {tuple(prediction.shape)} does not match the target "
                f"{tuple(target_latent.shape)}; the training size must be a multiple of the "
                "VAE's downscaling factor"
            )
        mse = F.mse_loss(prediction.float(), target_latent.float())
        total = self.latent_weight * mse
        parts = {"latent_mse": float(mse.detach())}
        if self.needs_images:
            if target_image is None or self.decode is None:
                raise ValueError("pixel-space loss terms need the target image")
            decoded = self.decode(prediction).float()
            if self.pixel_weight > 0:
                l1 = F.l1_loss(decoded, target_image.float())
                total = total + self.pixel_weight * l1
                parts["pixel_l1"] = float(l1.detach())
            if self.lpips_weight > 0 and self.lpips is not None:
                perceptual = self.lpips(decoded, target_image.float()).mean()
                total = total + self.lpips_weight * perceptual
                parts["lpips"] = float(perceptual.detach())
        parts["loss"] = float(total.detach())
        return LossTerms(total, parts)
