"""Hand-crafted baseline features: heart rate and heart-rate-variability statistics from detected
beats (peaks of the z-scored PPG pulse or ECG R wave), the classic comparison of Abbaspourazad et al. 2024."""

from __future__ import annotations

import numpy as np
import torch

FEATURES = ("hr_bpm", "ibi_mean_s", "sdnn_s", "rmssd_s", "ibi_cv", "beats_per_s")


def beat_features(x: torch.Tensor, fs: float, min_ibi_s: float = 0.33, prominence: float = 0.5) -> torch.Tensor:
    """(N, C, L) z-scored segments -> (N, 6) features from channel 0: heart rate, mean inter-beat
    interval, SDNN, RMSSD, IBI coefficient of variation, beat rate; NaN where fewer than 2 beats."""
    from scipy.signal import find_peaks

    sig = x[:, 0].double().numpy()
    out = np.full((len(sig), len(FEATURES)), np.nan)
    for i, s in enumerate(sig):
        # R waves / PPG pulses may point either way after z-scoring: take the polarity with taller peaks.
        s = s if np.abs(s.max()) >= np.abs(s.min()) else -s
        peaks, _ = find_peaks(s, distance=max(1, int(min_ibi_s * fs)), prominence=prominence)
        out[i, 5] = len(peaks) / (len(s) / fs)
        if len(peaks) < 2:
            continue
        ibi = np.diff(peaks) / fs
        out[i, 0] = 60.0 / np.median(ibi)
        out[i, 1] = ibi.mean()
        out[i, 2] = ibi.std()
        out[i, 3] = np.sqrt(np.mean(np.diff(ibi) ** 2)) if len(ibi) > 1 else np.nan
        out[i, 4] = ibi.std() / ibi.mean()
    return torch.from_numpy(out).float()
