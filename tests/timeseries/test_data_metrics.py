"""Windowing, Informer splits, train-only scaling, metrics and the explicit reference-code fields."""

import numpy as np
import torch

from multissl.core import info_nce
from multissl.timeseries.data import (
    ForecastWindows,
    informer_borders,
    load_series,
    make_forecast_data,
    ratio_borders,
)
from multissl.timeseries.methods import ForecastMethod, mask_timesteps
from multissl.timeseries.metrics import evaluate_forecaster, mae, mse
from multissl.timeseries.models import (
    DLinear,
    EncoderForecaster,
    LastValue,
    TransformerEncoderNet,
)


def test_etth1_informer_protocol():
    s = load_series("ett/ETTh1.csv")
    assert s.values.shape == (17420, 7) and s.columns[-1] == "OT"
    assert informer_borders(17420, 96) == [(0, 8640), (8544, 11520), (11424, 14400)]
    d = make_forecast_data(s, 96, 24)
    train_rows = d.scaler.transform(s.values[:8640])
    assert np.allclose(train_rows.mean(0), 0, atol=1e-4) and np.allclose(train_rows.std(0), 1, atol=1e-3)
    assert len(d.train) == 8640 - 96 - 24 + 1 and len(d.val) == 2880 - 24 + 1 and len(d.test) == 2880 - 24 + 1
    _, y = d.test[0]
    assert torch.allclose(y[0], torch.from_numpy(d.scaler.transform(s.values[11520:11521]))[0])
    assert ratio_borders(1000, 10) == [(0, 700), (690, 800), (790, 1000)]


def test_windows_tensors_match_items():
    v = torch.arange(60, dtype=torch.float32).view(30, 2)
    w = ForecastWindows(v, 5, 3)
    x, y = w.tensors()
    assert len(w) == 23 and x.shape == (23, 5, 2) and y.shape == (23, 3, 2)
    for i in (0, 7, 22):
        assert torch.equal(x[i], w[i][0]) and torch.equal(y[i], w[i][1])


def test_metrics_and_batched_evaluation():
    v = torch.randn(200, 3)
    w = ForecastWindows(v, 10, 4)
    res = evaluate_forecaster(LastValue(4), w, batch_size=7)
    x, y = w.tensors()
    pred = x[:, -1:].expand(-1, 4, -1)
    assert abs(res["mse"] - mse(pred, y)) < 1e-9 and abs(res["mae"] - mae(pred, y)) < 1e-9


def test_dlinear_starts_as_the_window_mean():
    x = torch.randn(4, 48, 3)
    model = DLinear(48, 12, 3)
    out = model(x)
    # initial weights 1/L on both parts: seasonal + trend sums to the mean of the input (+ both biases)
    bias = (model.seasonal[0].bias + model.trend[0].bias).detach()  # (12,)
    expected = x.mean(1, keepdim=True) + bias[None, :, None]
    assert out.shape == (4, 12, 3)
    assert torch.allclose(out, expected, atol=1e-5)
    individual = DLinear(48, 12, 3, individual=True)
    bias = torch.stack([(s.bias + t.bias).detach() for s, t in zip(individual.seasonal, individual.trend, strict=True)], 1)
    assert torch.allclose(individual(x), x.mean(1, keepdim=True) + bias[None], atol=1e-5)  # (12, 3) biases


def test_mask_rate_is_the_masked_fraction_not_the_kept_one():
    x = torch.ones(64, 500, 3)
    masked = mask_timesteps(x, 0.3)
    frac = float((masked == 0).all(-1).float().mean())
    assert abs(frac - 0.3) < 0.02  # the reference code would have masked 70 %


def test_l2norm_field_is_honoured():
    enc = TransformerEncoderNet(3, 16, d_model=8, heads=2, layers=1, d_ff=16)
    on = ForecastMethod(EncoderForecaster(enc, 16, 4, 3), "e2e", l2norm=True, queue_size=8, proj_dim=4)
    off = ForecastMethod(EncoderForecaster(enc, 16, 4, 3), "e2e", l2norm=False, queue_size=8, proj_dim=4)
    assert on.l2norm and not off.l2norm
    q, k = torch.randn(5, 4) * 10, torch.randn(5, 4) * 10
    assert not torch.allclose(info_nce(q, k, normalize=False), info_nce(q, k, normalize=True))
    torch.manual_seed(0)
    x = torch.randn(6, 16, 3)
    off.train()
    loss = off.contrastive_loss(x)
    off.queue.flush()  # the trainer's once-per-step push
    assert torch.isfinite(loss) and off.queue.keys().norm(dim=1)[-1] != 1.0  # unnormalised keys were pushed


def test_two_phase_switches_to_mse():
    from multissl.core import Progress

    enc = TransformerEncoderNet(2, 8, d_model=8, heads=2, layers=1, d_ff=16)
    m = ForecastMethod(EncoderForecaster(enc, 8, 2, 2), "two_phase", queue_size=8, proj_dim=4, pretrain_fraction=0.5)
    batch = (torch.randn(4, 8, 2), torch.randn(4, 2, 2))
    assert set(m(batch).logs) == {"contrastive"}
    m.after_step(Progress(5, 10, 0, 10))
    assert set(m(batch).logs) == {"mse"}
    e2e = ForecastMethod(EncoderForecaster(enc, 8, 2, 2), "e2e", queue_size=8, proj_dim=4)
    assert set(e2e(batch).logs) == {"mse", "contrastive"}
