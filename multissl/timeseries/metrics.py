"""Forecast metrics (MSE / MAE on the scaled values, the Informer protocol) and batched evaluation."""

from __future__ import annotations

from collections.abc import Callable

import torch

from multissl.timeseries.data import ForecastWindows


def mse(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(((pred.double() - target.double()) ** 2).mean())


def mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((pred.double() - target.double()).abs().mean())


@torch.no_grad()
def evaluate_forecaster(forecast: Callable[[torch.Tensor], torch.Tensor], windows: ForecastWindows,
                        batch_size: int = 256, device: torch.device | str = "cpu", every: int = 1) -> dict[str, float]:
    """MSE and MAE of ``forecast`` ((B, seq_len, C) -> (B, pred_len, C)) over every window (stride
    ``every``), accumulated exactly over batches (no dropped last batch)."""
    x, y = windows.tensors(every)
    se = ae = 0.0
    count = 0
    for s in range(0, len(x), batch_size):
        p = forecast(x[s : s + batch_size].to(device)).double().cpu()
        t = y[s : s + batch_size].double()
        se += float(((p - t) ** 2).sum())
        ae += float((p - t).abs().sum())
        count += t.numel()
    return {"mse": se / count, "mae": ae / count}
