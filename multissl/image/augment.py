"""Batched image augmentations that run on the training device (SimCLR / BYOL / SwAV views).

Every op takes a float batch (B, C, H, W) in [0, 1] and draws its parameters PER SAMPLE with
:func:`multissl.core.sample_random.batch_rand`: under the trainer, from a generator seeded by (seed,
step, micro-batch) that draws the whole global batch's numbers, so sample ``i`` gets the same views with
1 or N processes and a resumed run the same views as an uninterrupted one; in a plain loop, from
torch's global RNG of the batch's device. The ops follow
torchvision's definitions (RandomResizedCrop, RandomHorizontalFlip, ColorJitter, RandomGrayscale,
GaussianBlur, RandomSolarize) as used by SimCLR (Chen et al., ICML 2020, appendix A) and BYOL (Grill et
al., NeurIPS 2020, table 6); the whole pipeline is a handful of kernels per batch instead of B x 6
PIL calls on the CPU. A single image (C, H, W) works too (CPU, per sample).

Known differences from torchvision: crops are resampled with one bilinear ``grid_sample`` (no
antialiasing when a crop is shrunk, which only happens for SwAV's small crops), crop positions are
continuous rather than integer, and RandomResizedCrop's 10 rejection tries are vectorised (same
fallback: the whole image, ratio clamped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from multissl.core.sample_random import batch_rand

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision's rgb_to_grayscale


def _u(n: int, low: float, high: float, x: torch.Tensor, *shape: int) -> torch.Tensor:
    """(n, *shape) uniform samples in [low, high) on x's device, per sample (see ``batch_rand``)."""
    return batch_rand(n, *shape, device=x.device) * (high - low) + low


def _mask(n: int, p: float, x: torch.Tensor) -> torch.Tensor:
    """(n,) bool: True with probability p (drawn even for p in {0, 1}, so the RNG stream is stable)."""
    return batch_rand(n, device=x.device) < p


def _bcast(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1, 1)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) in [0, 255] -> float32 in [0, 1]; float input is returned as float32."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def crop_boxes(b: int, aspect: float, scale: tuple[float, float], ratio: tuple[float, float], x: torch.Tensor,
               tries: int = 10) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """RandomResizedCrop boxes as fractions of the image: (width, height, centre_x, centre_y), each (B,).

    ``aspect`` = W / H of the source. Like torchvision: area ~ U(scale), log-ratio ~ U(log ratio), up to
    ``tries`` draws, first one that fits; otherwise the whole image with the ratio clamped.
    """
    area = _u(b, *scale, x, tries)  # (B, tries)
    logr = _u(b, math.log(ratio[0]), math.log(ratio[1]), x, tries)
    r = logr.exp()
    w = torch.sqrt(area * r / aspect)  # fraction of the width
    h = torch.sqrt(area / r * aspect)  # fraction of the height
    ok = (w <= 1) & (h <= 1)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((b,), -1, device=x.device))
    pick = first.clamp_min(0)[:, None]
    w, h = w.gather(1, pick)[:, 0], h.gather(1, pick)[:, 0]
    # fallback (no try fit): whole image, aspect clamped into the ratio range (torchvision's centre crop)
    fw = min(1.0, ratio[1] / aspect) if aspect > ratio[1] else 1.0
    fh = min(1.0, aspect / ratio[0]) if aspect < ratio[0] else 1.0
    none = first < 0
    w = torch.where(none, torch.full_like(w, fw), w)
    h = torch.where(none, torch.full_like(h, fh), h)
    cx = w / 2 + batch_rand(b, device=x.device) * (1 - w)
    cy = h / 2 + batch_rand(b, device=x.device) * (1 - h)
    return w, h, cx, cy


def random_resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3), flip_p: float = 0.5) -> torch.Tensor:
    """Per-sample RandomResizedCrop + RandomHorizontalFlip as one batched affine resample.

    (B, C, H, W) -> (B, C, size, size); bilinear, like torchvision's default.
    """
    b, _, hgt, wid = x.shape
    w, h, cx, cy = crop_boxes(b, wid / hgt, scale, ratio, x)
    flip = _mask(b, flip_p, x)
    sx = torch.where(flip, -w, w)
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = sx, 2 * cx - 1
    theta[:, 1, 1], theta[:, 1, 2] = h, 2 * cy - 1
    grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma."""
    r, g, b = x.unbind(1)
    return (_GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * b).unsqueeze(1)


def adjust_brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (x * _bcast(f)).clamp_(0, 1)


def adjust_contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    return (mean + _bcast(f) * (x - mean)).clamp_(0, 1)


def adjust_saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    gray = grayscale(x)
    return (gray + _bcast(f) * (x - gray)).clamp_(0, 1)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> HSV in [0, 1] (torchvision's formulas)."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    crd = torch.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / crd, (maxc - g) / crd, (maxc - b) / crd
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return torch.stack((h, s, maxc), 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int64) % 6
    p = (v * (1.0 - s)).clamp(0, 1)
    q = (v * (1.0 - s * f)).clamp(0, 1)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0, 1)
    # sector table: (r, g, b) for i = 0..5
    table = torch.stack([torch.stack(c, 0) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
                                                      (v, p, q))], 0)  # (6, 3, B, H, W)
    idx = i.unsqueeze(0).unsqueeze(0).expand(1, 3, *i.shape)  # (1, 3, B, H, W)
    return table.gather(0, idx)[0].permute(1, 0, 2, 3)


def adjust_hue(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    hsv = rgb_to_hsv(x)
    h = torch.fmod(hsv[:, 0] + f.view(-1, 1, 1) + 1.0, 1.0)
    return hsv_to_rgb(torch.stack((h, hsv[:, 1], hsv[:, 2]), 1))


def color_jitter(x: torch.Tensor, brightness: float, contrast: float, saturation: float, hue: float,
                 p: float = 0.8) -> torch.Tensor:
    """torchvision ColorJitter applied with probability p, factors and op ORDER drawn per sample.

    Samples that are not jittered keep identity factors. (B, 3, H, W) in [0, 1].
    """
    b = x.shape[0]
    apply = _mask(b, p, x)
    one = torch.ones(b, device=x.device)
    fb = torch.where(apply, _u(b, max(0.0, 1 - brightness), 1 + brightness, x), one)
    fc = torch.where(apply, _u(b, max(0.0, 1 - contrast), 1 + contrast, x), one)
    fs = torch.where(apply, _u(b, max(0.0, 1 - saturation), 1 + saturation, x), one)
    fh = torch.where(apply, _u(b, -hue, hue, x), one * 0)
    order = batch_rand(b, 4, device=x.device).argsort(1)  # (B, 4) a random permutation per sample
    ops = [(brightness, lambda t: adjust_brightness(t, fb)), (contrast, lambda t: adjust_contrast(t, fc)),
           (saturation, lambda t: adjust_saturation(t, fs)), (hue, lambda t: adjust_hue(t, fh))]
    for slot in range(4):
        out = x
        for k, (strength, op) in enumerate(ops):
            if strength <= 0:
                continue
            sel = _bcast(order[:, slot] == k)
            out = torch.where(sel, op(x), out)
        x = out
    return x


def random_grayscale(x: torch.Tensor, p: float = 0.2) -> torch.Tensor:
    sel = _bcast(_mask(x.shape[0], p, x))
    return torch.where(sel, grayscale(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, p: float, sigma: tuple[float, float] = (0.1, 2.0),
                  kernel_fraction: float = 0.1) -> torch.Tensor:
    """Per-sample Gaussian blur (sigma ~ U(sigma)) with probability p; kernel = ~10% of the side
    (SimCLR: 23 px at 224), made odd and at least 3. Separable depthwise convolution, reflect padding."""
    b, c, hgt, wid = x.shape
    apply = _mask(b, p, x)
    sig = _u(b, *sigma, x)
    if p <= 0:
        return x
    k = max(3, int(kernel_fraction * min(hgt, wid)) // 2 * 2 + 1)
    t = torch.arange(k, device=x.device, dtype=x.dtype) - (k - 1) / 2
    kern = torch.exp(-(t[None, :] ** 2) / (2 * sig[:, None].to(x.dtype) ** 2))
    kern = kern / kern.sum(1, keepdim=True)  # (B, k)
    kern = kern.repeat_interleave(c, 0)  # (B*C, k)
    y = x.reshape(1, b * c, hgt, wid)
    pad = k // 2
    y = F.conv2d(F.pad(y, (pad, pad, 0, 0), mode="reflect"), kern.view(b * c, 1, 1, k), groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, pad, pad), mode="reflect"), kern.view(b * c, 1, k, 1), groups=b * c)
    return torch.where(_bcast(apply), y.view(b, c, hgt, wid), x)


def random_solarize(x: torch.Tensor, p: float, threshold: float = 0.5) -> torch.Tensor:
    sel = _bcast(_mask(x.shape[0], p, x))
    return torch.where(sel & (x >= threshold), 1.0 - x, x)


@dataclass
class ViewConfig:
    """One view's augmentation recipe; defaults = SimCLR's CIFAR-10 set (colour strength 0.5, no blur)."""

    size: int = 32
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0
    mean: tuple[float, float, float] = CIFAR10_MEAN
    std: tuple[float, float, float] = CIFAR10_STD


class BatchAugment(torch.nn.Module):
    """The SimCLR/BYOL view pipeline on a batch: crop+flip, colour jitter, grayscale, blur, solarize,
    normalise. Input uint8 or float (B, C, H, W) or (C, H, W); output float32 normalised views."""

    def __init__(self, cfg: ViewConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        single = images.dim() == 3
        x = to_float(images[None] if single else images)
        c = self.cfg
        x = random_resized_crop(x, c.size, c.scale, c.ratio, c.flip_p)
        if x.shape[1] == 3:
            x = color_jitter(x, c.brightness, c.contrast, c.saturation, c.hue, c.jitter_p)
            x = random_grayscale(x, c.grayscale_p)
        x = gaussian_blur(x, c.blur_p, c.blur_sigma)
        x = random_solarize(x, c.solarize_p)
        x = normalize(x, c.mean, c.std)
        return x[0] if single else x

    def extra_repr(self) -> str:
        return repr(self.cfg)
