"""TERA's three input alterations (Liu, Li, Lee, TASLP 2021, Sec. III; s3prl ``pretrain/mockingjay/task.py``).

- Time alteration: per utterance, ``round(L * proportion / span)`` span starts drawn without
  replacement from ``[0, L - span - 1]`` (spans may overlap); with one dice per utterance the spans are
  zeroed (80%), replaced by as many random spans of the same utterance (10%) or left unchanged (10%).
  All chosen frames are reconstruction targets in every case.
- Frequency alteration: per utterance, one block of ``randint(0, int(D * max_fraction))`` consecutive
  channels is zeroed in every frame; the block is a target over the valid frames.
- Magnitude alteration: with probability ``p`` per batch, Gaussian noise N(0, std^2) is added to the
  input (not a target). Unlike s3prl we add it to valid frames only, so padding stays zero.

Padding (frames at or beyond ``lengths``) is never chosen, altered or used as a target.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Altered:
    """Altered input (B, F, D), target mask (B, F, D) bool, and per-utterance time modes (B,) for tests
    (0 = zeroed, 1 = random frames, 2 = unchanged, -1 = no time alteration)."""

    x: torch.Tensor
    mask: torch.Tensor
    time_mode: torch.Tensor


def _rand(generator: torch.Generator | None) -> float:
    return float(torch.rand((), generator=generator))


def _intervals(starts: torch.Tensor, width: int) -> torch.Tensor:
    return (starts[:, None] + torch.arange(width)[None]).reshape(-1)


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, F) True on real frames, False on padding."""
    return torch.arange(max_len, device=lengths.device)[None] < lengths[:, None]


def alter(x: torch.Tensor, lengths: torch.Tensor, *, time: bool = True, proportion: float = 0.15, span: int = 7,
          p_zero: float = 0.8, p_random: float = 0.1, frequency: bool = True, max_frequency: float = 0.2,
          magnitude: bool = True, p_noise: float = 0.15, noise_std: float = 0.2,
          generator: torch.Generator | None = None) -> Altered:
    """Apply TERA's alterations to clean frames ``x`` (B, F, D) with valid ``lengths`` (B,)."""
    b, f, d = x.shape
    out = x.clone()
    mask = torch.zeros(b, f, d, dtype=torch.bool, device=x.device)
    modes = torch.full((b,), -1, dtype=torch.long)
    lens = lengths.tolist()
    for i, n in enumerate(lens):
        if time and proportion > 0:
            valid_start_max = max(n - span - 1, 0)
            count = round(n * proportion / span)
            starts = torch.randperm(valid_start_max + 1, generator=generator)[:count]
            chosen = _intervals(starts, span)
            chosen = chosen[chosen < n]  # an utterance shorter than a span: never touch padding
            if chosen.numel():
                dice = _rand(generator)
                if dice < p_zero:
                    out[i, chosen.to(x.device)] = 0
                    modes[i] = 0
                elif dice < p_zero + p_random:
                    src = _intervals(torch.randperm(valid_start_max + 1, generator=generator)[:count], span)
                    src = src[: len(chosen)].clamp_max(n - 1)
                    out[i, chosen.to(x.device)] = x[i, src.to(x.device)]
                    modes[i] = 1
                else:
                    modes[i] = 2
                mask[i, chosen.to(x.device)] = True
        if frequency and max_frequency > 0:
            width = int(torch.randint(0, int(d * max_frequency) + 1, (), generator=generator))
            if width > 0:
                start = int(torch.randint(0, d - width, (), generator=generator))
                out[i, :, start : start + width] = 0
                mask[i, :n, start : start + width] = True
    if magnitude and p_noise > 0 and _rand(generator) < p_noise:
        noise = torch.randn(out.shape, generator=generator).to(x.device) * noise_std
        out = out + noise * valid_mask(lengths, f).unsqueeze(-1).to(x.dtype)
    return Altered(out, mask, modes)
