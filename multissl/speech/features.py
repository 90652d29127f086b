"""Kaldi-style log-mel filterbank (fbank) frames with ``torch.stft``-free framing and utterance CMVN.

TERA (Liu, Li, Lee, TASLP 2021) uses 80-dim log-mel frames, 25 ms window, 10 ms hop, with utterance
CMVN. The computation follows Kaldi's ``compute-fbank-feats`` defaults (as ``torchaudio.compliance.
kaldi.fbank`` does): frames with ``snip_edges``, DC removal, pre-emphasis 0.97, Povey window, FFT
zero-padded to a power of two, power spectrum, triangular filters in Kaldi's mel scale (from
``transformers.audio_utils.mel_filter_bank``), natural log floored at float32 epsilon.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

EPS = float(np.finfo(np.float32).eps)


@lru_cache(maxsize=16)
def mel_filters(n_fft: int, n_mels: int, sample_rate: int, low_freq: float, high_freq: float) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) Kaldi mel filters (triangles in mel space) from transformers."""
    from transformers.audio_utils import mel_filter_bank

    fb = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=low_freq,
                         max_frequency=high_freq, sampling_rate=sample_rate, norm=None, mel_scale="kaldi",
                         triangularize_in_mel_space=True)
    return torch.from_numpy(np.asarray(fb, dtype=np.float32))


@lru_cache(maxsize=16)
def povey_window(length: int) -> torch.Tensor:
    """Kaldi's Povey window: a symmetric Hann window raised to the power 0.85."""
    return torch.hann_window(length, periodic=False, dtype=torch.float64).pow(0.85).float()


@dataclass(frozen=True)
class FbankConfig:
    """Front-end settings; defaults are TERA's (80 mels, 25 ms / 10 ms) with Kaldi's fbank options."""

    sample_rate: int = 16000
    n_mels: int = 80
    frame_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int | None = None  # None: next power of two of the window (Kaldi round_to_power_of_two)
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from Nyquist (Kaldi convention)
    preemphasis: float = 0.97
    remove_dc: bool = True
    dither: float = 0.0

    @property
    def win(self) -> int:
        return round(self.sample_rate * self.frame_ms / 1000)

    @property
    def hop(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def fft(self) -> int:
        return self.n_fft or 1 << (self.win - 1).bit_length()

    @property
    def top(self) -> float:
        return self.high_freq if self.high_freq > 0 else self.sample_rate / 2 + self.high_freq

    def num_frames(self, num_samples: int) -> int:
        """Kaldi ``snip_edges``: whole windows only (at least one frame: short input is zero-padded)."""
        return max(1, 1 + (num_samples - self.win) // self.hop) if num_samples >= self.win else 1


def log_mel(wave: torch.Tensor, cfg: FbankConfig = FbankConfig()) -> torch.Tensor:
    """(T,) or (B, T) waveform -> (F, n_mels) or (B, F, n_mels) log-mel frames (no CMVN).

    A batch must hold equal-length signals; use :func:`log_mel_batch` for padded batches.
    """
    single = wave.dim() == 1
    x = wave[None] if single else wave
    x = x.float()
    if x.shape[-1] < cfg.win:
        x = torch.nn.functional.pad(x, (0, cfg.win - x.shape[-1]))
    frames = x.unfold(-1, cfg.win, cfg.hop)  # (B, F, win)
    if cfg.dither > 0:
        frames = frames + cfg.dither * torch.randn_like(frames)
    if cfg.remove_dc:
        frames = frames - frames.mean(-1, keepdim=True)
    if cfg.preemphasis:
        prev = torch.cat([frames[..., :1], frames[..., :-1]], -1)
        frames = frames - cfg.preemphasis * prev
    frames = frames * povey_window(cfg.win).to(frames.device)
    spec = torch.fft.rfft(frames, n=cfg.fft).abs().pow(2)  # (B, F, fft // 2 + 1) power spectrum
    mel = spec @ mel_filters(cfg.fft, cfg.n_mels, cfg.sample_rate, cfg.low_freq, cfg.top).to(spec.device)
    out = mel.clamp_min(EPS).log()
    return out[0] if single else out


def cmvn(feats: torch.Tensor, lengths: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Utterance-level mean and variance normalisation over valid frames; padding stays zero.

    ``feats`` (F, D) or (B, F, D); ``lengths`` (B,) valid frame counts for a padded batch.
    """
    if feats.dim() == 2:
        return (feats - feats.mean(0)) / (feats.std(0, unbiased=False) + eps)
    b, f, _ = feats.shape
    if lengths is None:
        lengths = torch.full((b,), f, device=feats.device)
    valid = (torch.arange(f, device=feats.device)[None] < lengths[:, None]).unsqueeze(-1)  # (B, F, 1)
    n = lengths.clamp_min(1)[:, None, None].float()
    mean = (feats * valid).sum(1, keepdim=True) / n
    var = (((feats - mean) * valid) ** 2).sum(1, keepdim=True) / n
    return torch.where(valid, (feats - mean) / (var.sqrt() + eps), torch.zeros_like(feats))
