"""Reconstruction quality between two batches of images: PSNR and SSIM.

Images are (B, 3, H, W) tensors in [-1, 1] (the generator's range); both metrics are
computed on [0, 1] values, per image, so a batch gives one number per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _unit(x: torch.Tensor) -> torch.Tensor:
    return ((x.float() + 1) * 0.5).clamp(0, 1)


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"need two (B, C, H, W) batches of one shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) peak signal-to-noise ratio in dB; identical images give +inf."""
    _check_pair(a, b)
    mse = (_unit(a) - _unit(b)).square().flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


def _gaussian_window(size: int, sigma: float, channels: int, device: torch.device
                     ) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5
         ) -> torch.Tensor:
    """(B,) structural similarity (Wang et al. 2004: Gaussian window 11, sigma 1.5,
    K1 0.01, K2 0.03), averaged over channels and valid window positions."""
    _check_pair(a, b)
    x, y = _unit(a), _unit(b)
    size = min(window, x.shape[-1], x.shape[-2])
    w = _gaussian_window(size, sigma, x.shape[1], x.device)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=x.shape[1])

    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx.square()
    vy = blur(y * y) - my.square()
    cov = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx.square() + my.square() + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)
