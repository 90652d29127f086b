"""Batched biosignal augmentations (Abbaspourazad et al., ICLR 2024, section 3 / appendix): cut-out,
magnitude warping, additive Gaussian noise, time warping and channel permutation.

Every function takes (B, C, L) windows and returns a tensor of the same shape; each sample gets the
augmentation with probability ``p`` (one Bernoulli draw per sample), all in tensor ops on the
batch's device (no Python loop over samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from multissl.config import param


def _apply(x: torch.Tensor, y: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    if p >= 1.0:
        return y
    mask = torch.rand(x.shape[0], 1, 1, device=x.device, generator=generator) < p
    return torch.where(mask, y, x)


def cutout(x: torch.Tensor, p: float, fraction: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one random contiguous window of ``fraction`` of the length (all channels)."""
    b, _, length = x.shape
    width = max(1, int(round(fraction * length)))
    start = torch.randint(0, length - width + 1, (b, 1), device=x.device, generator=generator)
    t = torch.arange(length, device=x.device)[None, :]
    hole = ((t >= start) & (t < start + width))[:, None, :]  # (B, 1, L)
    return _apply(x, x.masked_fill(hole, 0.0), p, generator)


def _smooth_curve(b: int, knots: int, length: int, sigma: float, device, generator) -> torch.Tensor:
    """(B, L) smooth random curves around 1: ``knots`` N(1, sigma) values, cubically interpolated."""
    k = 1.0 + sigma * torch.randn(b, 1, 1, knots + 2, device=device, generator=generator)
    return F.interpolate(k, size=(1, length), mode="bicubic", align_corners=True)[:, 0, 0, :]


def magnitude_warp(x: torch.Tensor, p: float, sigma: float = 0.2, knots: int = 4,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Multiply each sample by a smooth random curve (cubic through ``knots`` N(1, sigma) points)."""
    b, _, length = x.shape
    curve = _smooth_curve(b, knots, length, sigma, x.device, generator)  # (B, L)
    return _apply(x, x * curve[:, None, :], p, generator)


def gaussian_noise(x: torch.Tensor, p: float, sigma: float = 0.05, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add N(0, sigma^2) noise (segments are z-scored, so sigma is relative to the signal's std)."""
    noise = sigma * torch.randn(x.shape, device=x.device, generator=generator, dtype=x.dtype)
    return _apply(x, x + noise, p, generator)


def time_warp(x: torch.Tensor, p: float, sigma: float = 0.2, knots: int = 4,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Smoothly speed up / slow down time: a monotone random warp (cumulative smooth positive speeds)
    rescaled to span the window, then linear resampling of every channel at the warped times."""
    b, c, length = x.shape
    speed = _smooth_curve(b, knots, length, sigma, x.device, generator).clamp_min(0.05)  # (B, L)
    path = torch.cumsum(speed, 1)
    path = (path - path[:, :1]) / (path[:, -1:] - path[:, :1]).clamp_min(1e-6)  # (B, L) in [0, 1]
    grid = torch.stack([path * 2 - 1, torch.zeros_like(path)], -1)[:, None]  # (B, 1, L, 2)
    warped = F.grid_sample(x[:, :, None, :], grid.to(x.dtype), mode="bilinear", align_corners=True)[:, :, 0, :]
    return _apply(x, warped, p, generator)


def channel_permute(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shuffle the channel order of each sample (multi-channel PPG); identity for one channel."""
    b, c, length = x.shape
    if c == 1:
        return x
    perm = torch.rand(b, c, device=x.device, generator=generator).argsort(1)  # (B, C)
    shuffled = torch.gather(x, 1, perm[:, :, None].expand(b, c, length))
    return _apply(x, shuffled, p, generator)


@dataclass
class AugmentConfig:
    """Probabilities and strengths of the five augmentations (paper's probabilities as defaults)."""

    cutout_p: float = param(0.4, "probability of cut-out per segment (paper: 0.4)")
    cutout_fraction: float = param(0.1, "cut-out window as a fraction of the segment")
    magnitude_warp_p: float = param(0.25, "probability of magnitude warping (paper: 0.25)")
    magnitude_warp_sigma: float = param(0.2, "std of the warping curve's knots around 1")
    noise_p: float = param(0.25, "probability of additive Gaussian noise (paper: 0.25)")
    noise_sigma: float = param(0.05, "noise std relative to the z-scored signal")
    time_warp_p: float = param(0.15, "probability of time warping (paper: 0.15)")
    time_warp_sigma: float = param(0.2, "std of the warp speed knots around 1")
    channel_permute_p: float = param(0.25, "probability of channel permutation, multi-channel only (paper: 0.25)")
    knots: int = param(4, "interior knots of the smooth warping curves")

def augment(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """The paper's stochastic pipeline: each augmentation applied independently with its probability."""
    x = cutout(x, cfg.cutout_p, cfg.cutout_fraction, generator)
    x = magnitude_warp(x, cfg.magnitude_warp_p, cfg.magnitude_warp_sigma, cfg.knots, generator)
    x = gaussian_noise(x, cfg.noise_p, cfg.noise_sigma, generator)
    x = time_warp(x, cfg.time_warp_p, cfg.time_warp_sigma, cfg.knots, generator)
    return channel_permute(x, cfg.channel_permute_p, generator)
