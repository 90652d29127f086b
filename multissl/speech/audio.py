"""Audio I/O and resampling: wav / flac / ogg through ``soundfile``, band-limited resampling in torch."""

from __future__ import annotations

import io
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from multissl.errors import DataError


def load_audio(source: str | Path | bytes, sample_rate: int | None = None) -> torch.Tensor:
    """Read a wav / flac / ogg file (path or encoded bytes) as a mono float32 tensor (T,) in [-1, 1].

    Multi-channel audio is averaged to mono. With ``sample_rate`` the signal is resampled to it.
    """
    import soundfile as sf

    try:
        handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source)
        data, sr = sf.read(handle, dtype="float32", always_2d=True)
    except (RuntimeError, TypeError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
        raise DataError(f"Cannot decode audio {name}: {exc}. Supported: wav, flac, ogg (libsndfile).") from None
    if data.shape[0] == 0:
        name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
        raise DataError(f"Audio {name} holds no samples (an empty recording); remove it from the data set")
    wave = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    if sample_rate is not None and sr != sample_rate:
        wave = resample(wave, sr, sample_rate)
    return wave


def save_audio(path: str | Path, wave: torch.Tensor, sample_rate: int) -> None:
    """Write a mono float tensor as 16-bit PCM wav."""
    import soundfile as sf

    sf.write(str(path), wave.detach().cpu().clamp(-1, 1).numpy(), sample_rate, subtype="PCM_16")


@lru_cache(maxsize=32)
def _sinc_kernels(orig: int, new: int, zero_crossings: int, rolloff: float) -> tuple[torch.Tensor, int]:
    """Polyphase windowed-sinc kernels (new, 1, taps) for a reduced ratio orig -> new, and the left pad."""
    cutoff = rolloff * min(1.0, new / orig)  # low-pass cut-off, in cycles per input sample x 2
    half = math.ceil(zero_crossings / cutoff)  # half kernel width in input samples
    k = torch.arange(-half, half + orig, dtype=torch.float64)  # input offsets seen by one output block
    phase = torch.arange(new, dtype=torch.float64)[:, None] * orig / new  # (new, 1) output positions
    t = k[None, :] - phase  # (new, taps) distance from input sample to output sample, in input samples
    window = torch.where(t.abs() <= half, torch.cos(math.pi * t / (2 * half)) ** 2, torch.zeros_like(t))
    kernel = cutoff * torch.sinc(cutoff * t) * window
    return kernel[:, None, :].float(), half


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int, zero_crossings: int = 6,
             rolloff: float = 0.99) -> torch.Tensor:
    """Band-limited resampling of (..., T) by a windowed-sinc polyphase filter (Hann-squared window).

    Output sample ``m`` sits at input time ``m * orig / new``; each output is a sinc interpolation of
    the ``2 * zero_crossings / cutoff`` nearest inputs, low-passed below ``rolloff`` x the lower Nyquist.
    """
    if orig_sr == new_sr:
        return wave
    g = math.gcd(int(orig_sr), int(new_sr))
    orig, new = int(orig_sr) // g, int(new_sr) // g
    kernel, half = _sinc_kernels(orig, new, zero_crossings, rolloff)
    shape = wave.shape
    x = wave.reshape(-1, 1, shape[-1]).float()
    x = torch.nn.functional.pad(x, (half, half + orig))
    y = torch.nn.functional.conv1d(x, kernel.to(x.device), stride=orig)  # (N, new, blocks)
    y = y.transpose(1, 2).reshape(x.shape[0], -1)  # interleave the phases
    out_len = math.ceil(shape[-1] * new / orig)
    return y[:, :out_len].reshape(*shape[:-1], out_len).to(wave.dtype if wave.is_floating_point() else torch.float32)


def normalize_level(wave: torch.Tensor, target_db: float = -25.0, eps: float = 1e-8) -> torch.Tensor:
    """Scale a waveform to an RMS level of ``target_db`` dBFS (s3prl's ``target_level: -25``)."""
    rms = wave.pow(2).mean().sqrt()
    return wave * (10 ** (target_db / 20) / (rms + eps))
