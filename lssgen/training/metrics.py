"""Per-sample quality metrics in plain torch: latent MSE, PSNR and SSIM.

Images are compared in the VAE range [-1, 1] (data range 2), which gives the same PSNR and SSIM
as the usual [0, 1] or [0, 255] conventions. SSIM follows Wang et al. 2004: an 11x11 Gaussian
window with sigma 1.5, K1 = 0.01, K2 = 0.03, "valid" filtering, channels averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

IMAGE_RANGE = 2.0  # [-1, 1]
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(a: Tensor, b: Tensor, ndim: int = 4) -> None:
    if a.shape != b.shape or a.ndim != ndim:
        raise ValueError(
            f"expected two {ndim}-D tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def latent_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error per sample, (B,)."""
    _check_pair(prediction, target)
    return (prediction.double() - target.double()).pow(2).flatten(1).mean(1)


def psnr(prediction: Tensor, target: Tensor, *, data_range: float = IMAGE_RANGE) -> Tensor:
    """Peak signal-to-noise ratio in dB per sample, (B,); inf for identical images."""
    _check_pair(prediction, target)
    mse = (prediction.double() - target.double()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range**2 / mse)


def gaussian_kernel(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """Normalised 1-D Gaussian (size,), float64; the 2-D window is its outer product."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    prediction: Tensor,
    target: Tensor,
    *,
    data_range: float = IMAGE_RANGE,
    window_size: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> Tensor:
    """Structural similarity per sample, (B,): the mean SSIM map over pixels and channels."""
    _check_pair(prediction, target)
    height, width = prediction.shape[-2:]
    if min(height, width) < window_size:
        raise ValueError(
            f"SSIM needs images of at least {window_size}x{window_size}, got {height}x{width}"
        )
    x, y = prediction.float(), target.float()
    # The five local statistics in one separable depthwise blur: 2 x 11 taps instead of 121,
    # float32 because CPU float64 convolutions are an order of magnitude slower.
    stats = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    groups = stats.shape[1]
    g = gaussian_kernel(window_size, sigma).to(stats.device, stats.dtype)
    blurred = F.conv2d(stats, g.view(1, 1, -1, 1).expand(groups, 1, -1, 1), groups=groups)
    blurred = F.conv2d(blurred, g.view(1, 1, 1, -1).expand(groups, 1, 1, -1), groups=groups)
    mu_x, mu_y, e_xx, e_yy, e_xy = blurred.double().chunk(5, dim=1)
    var_x = e_xx - mu_x**2
    var_y = e_yy - mu_y**2
    cov = e_xy - mu_x * mu_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    return (luminance * contrast_structure).flatten(1).mean(1)
