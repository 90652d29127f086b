"""Front end: log-mel fbank against a direct formula, transformers' numpy spectrogram and (when
installed) torchaudio's Kaldi fbank; CMVN; resampling; audio I/O."""

import math

import numpy as np
import pytest
import torch

from multissl.speech.audio import load_audio, resample, save_audio
from multissl.speech.features import FbankConfig, cmvn, log_mel, mel_filters


def _signal(sr: int, seconds: float = 0.5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(sr * seconds)) / sr
    return 0.3 * torch.sin(2 * math.pi * 440 * t) + 0.05 * torch.randn(t.shape, generator=g)


def _kaldi_mel_matrix(sr: int, n_fft: int, n_mels: int, low: float, high: float) -> np.ndarray:
    """Kaldi's MelBanks, written out: triangles over mel(f) = 1127 ln(1 + f / 700), equally spaced."""
    mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)
    edges = np.linspace(mel(low), mel(high), n_mels + 2)
    bins = mel(np.arange(n_fft // 2 + 1) * sr / n_fft)
    w = np.zeros((n_fft // 2 + 1, n_mels))
    for m in range(n_mels):
        left, centre, right = edges[m : m + 3]
        up = (bins - left) / (centre - left)
        down = (right - bins) / (right - centre)
        w[:, m] = np.clip(np.minimum(up, down), 0, None)
    return w


@pytest.mark.parametrize("sr,n_fft", [(16000, None), (8000, 512)])
def test_fbank_matches_direct_formula(sr, n_fft):
    cfg = FbankConfig(sample_rate=sr, n_fft=n_fft)
    wave = _signal(sr)
    ours = log_mel(wave, cfg).double().numpy()
    x = wave.double().numpy()
    win, hop, fft = cfg.win, cfg.hop, cfg.fft
    n = 1 + (len(x) - win) // hop
    assert ours.shape == (n, 80)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / (win - 1))) ** 0.85  # Povey
    melw = _kaldi_mel_matrix(sr, fft, 80, 20.0, sr / 2)
    for t in (0, n // 2, n - 1):
        frame = x[t * hop : t * hop + win].copy()
        frame -= frame.mean()
        frame = np.concatenate([[frame[0] * (1 - 0.97)], frame[1:] - 0.97 * frame[:-1]])
        power = np.abs(np.fft.rfft(frame * window, n=fft)) ** 2
        direct = np.log(np.maximum(power @ melw, np.finfo(np.float32).eps))
        np.testing.assert_allclose(ours[t], direct, rtol=1e-4, atol=2e-3)


def test_fbank_matches_transformers_spectrogram():
    from transformers.audio_utils import spectrogram

    cfg = FbankConfig(sample_rate=16000)
    wave = _signal(16000, 0.3)
    window = torch.hann_window(cfg.win, periodic=False, dtype=torch.float64).pow(0.85).numpy()
    ref = spectrogram(wave.numpy().astype(np.float64), window, frame_length=cfg.win, hop_length=cfg.hop,
                      fft_length=cfg.fft, power=2.0, center=False, preemphasis=0.97,
                      mel_filters=mel_filters(cfg.fft, 80, 16000, 20.0, 8000.0).double().numpy(),
                      log_mel="log", mel_floor=float(np.finfo(np.float32).eps), remove_dc_offset=True,
                      dtype=np.float64).T
    np.testing.assert_allclose(log_mel(wave, cfg).numpy(), ref, rtol=1e-4, atol=2e-3)


def test_fbank_matches_torchaudio_kaldi_when_installed():
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    wave = _signal(16000) * 32768
    ref = kaldi.fbank(wave[None], num_mel_bins=80, sample_frequency=16000, dither=0.0)
    np.testing.assert_allclose(log_mel(wave, FbankConfig()).numpy(), ref.numpy(), rtol=1e-3, atol=1e-2)


def test_tone_peaks_in_its_mel_channel_and_filters_cover_bins():
    cfg = FbankConfig(sample_rate=8000, n_fft=512)
    fb = mel_filters(cfg.fft, 80, 8000, 20.0, 4000.0)
    assert (fb.max(0).values > 0).all()  # no empty filter at 8 kHz with the 512-point FFT
    t = torch.arange(8000) / 8000
    feats = log_mel(torch.sin(2 * math.pi * 1000 * t), cfg)
    centres = (fb * torch.arange(fb.shape[0])[:, None]).sum(0) / fb.sum(0) * 8000 / 512  # Hz
    assert abs(float(centres[feats.mean(0).argmax()]) - 1000) < 60


def test_cmvn_over_valid_frames_keeps_padding_zero():
    x = torch.randn(2, 10, 4) * 3 + 5
    lengths = torch.tensor([10, 6])
    y = cmvn(x, lengths)
    assert torch.allclose(y[1, :6].mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(y[1, :6].std(0, unbiased=False), torch.ones(4), atol=1e-3)
    assert (y[1, 6:] == 0).all()
    assert torch.allclose(y[0], cmvn(x[0]), atol=1e-5)


def test_resample_round_trip_and_band_limit(tmp_path):
    t8 = torch.arange(8000) / 8000
    tone = torch.sin(2 * math.pi * 440 * t8)
    up = resample(tone, 8000, 16000)
    assert up.shape[0] == 16000
    t16 = torch.arange(16000) / 16000
    assert (up[200:-200] - torch.sin(2 * math.pi * 440 * t16[200:-200])).abs().max() < 1e-2
    back = resample(up, 16000, 8000)
    assert (back[100:-100] - tone[100:-100]).abs().max() < 1e-2
    t22 = torch.arange(22050) / 22050
    alias = resample(torch.sin(2 * math.pi * 6000 * t22), 22050, 8000)  # above the new Nyquist
    assert alias[200:-200].abs().max() < 0.02
    save_audio(tmp_path / "a.wav", tone * 0.5, 8000)
    loaded = load_audio(tmp_path / "a.wav")
    assert loaded.shape == tone.shape and (loaded - tone * 0.5).abs().max() < 1e-3
    assert load_audio((tmp_path / "a.wav").read_bytes(), 16000).shape[0] == 16000
