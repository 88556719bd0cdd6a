"""PSNR, SSIM and latent MSE on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

from lssgen.training.metrics import (
    SSIM_K1,
    SSIM_K2,
    gaussian_kernel,
    latent_mse,
    psnr,
    ssim,
)


def _images(seed: int = 0, shape: tuple[int, ...] = (2, 3, 24, 20)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_identical_images_have_infinite_psnr_and_unit_ssim() -> None:
    x = _images()
    assert torch.isinf(psnr(x, x)).all()
    assert torch.equal(ssim(x, x), torch.ones(2, dtype=torch.float64))


def test_psnr_of_a_constant_offset() -> None:
    x = torch.zeros(1, 3, 16, 16)
    # MSE 0.04 in a range of 2: 10 log10(4 / 0.04) = 20 dB; in [0, 1] terms 0.1 and range 1.
    assert psnr(x + 0.2, x).item() == pytest.approx(20.0)
    assert psnr(x + 0.1, x, data_range=1.0).item() == pytest.approx(20.0)


def test_latent_mse_is_per_sample() -> None:
    a = torch.zeros(2, 4, 3, 3)
    b = torch.stack([torch.full((4, 3, 3), 1.0), torch.full((4, 3, 3), 3.0)])
    assert latent_mse(a, b).tolist() == [1.0, 9.0]


def test_ssim_of_flat_images_is_the_luminance_term() -> None:
    a, b = 0.5, -0.25
    x, y = torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b)
    c1 = (SSIM_K1 * 2) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # variances 0: the structure term is 1
    assert ssim(x, y).item() == pytest.approx(expected, rel=1e-6)


def _reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. written out with a 2-D window and scipy, one channel at a time."""
    g = gaussian_kernel().numpy()
    window = np.outer(g, g)
    c1, c2 = (SSIM_K1 * 2) ** 2, (SSIM_K2 * 2) ** 2
    maps = []
    for xc, yc in zip(x, y):

        def blur(t: np.ndarray) -> np.ndarray:
            return correlate2d(t, window, mode="valid")

        mx, my = blur(xc), blur(yc)
        vx, vy, cxy = blur(xc * xc) - mx**2, blur(yc * yc) - my**2, blur(xc * yc) - mx * my
        maps.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(maps))


def test_ssim_matches_a_direct_implementation() -> None:
    x = _images(1)
    y = (x + 0.3 * _images(2)).clamp(-1, 1)
    ours = ssim(x, y)
    for i in range(2):
        expected = _reference_ssim(x[i].double().numpy(), y[i].double().numpy())
        assert ours[i].item() == pytest.approx(expected, abs=1e-5)
    assert 0 < ours.min() < 1


def test_ssim_and_psnr_order_noise_levels() -> None:
    x = _images(3)
    mild, strong = (x + 0.05 * _images(4)).clamp(-1, 1), (x + 0.5 * _images(5)).clamp(-1, 1)
    assert (ssim(x, mild) > ssim(x, strong)).all()
    assert (psnr(x, mild) > psnr(x, strong)).all()
    assert math.isfinite(psnr(x, mild)[0].item())


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="one shape"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
