"""The ``timeseries.forecast`` recipe kind: one forecaster on one horizon, trained with MSE only,
two-phase or end-to-end MSE + contrastive (Zhang et al. 2023); validation MSE selects the checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from multissl.config import param
from multissl.tasks import Task, TaskParts
from multissl.timeseries.data import load_series, make_forecast_data
from multissl.timeseries.methods import ForecastMethod
from multissl.timeseries.metrics import evaluate_forecaster
from multissl.timeseries.models import (
    DLinear,
    EncoderForecaster,
    LastValue,
    TCNEncoderNet,
    TransformerEncoderNet,
)


@dataclass
class SeriesData:
    path: str = param("ett/ETTh1.csv", "CSV/Parquet with a date column (shipped short path or any path), or hf:<name>")
    date_column: str | None = param("date", "column to sort by and drop (None: rows are in time order)")
    columns: list[str] = param([], "channels to use (empty: every column but the date; ETTh1 'M' setting)")
    protocol: Literal["auto", "informer_hourly", "informer_15min", "ratio"] = param(
        "auto", "split: Informer 12/4/4 months (hourly / 15-min rows) or chronological fractions; auto: ETTh* "
        "hourly, ETTm* 15-min, other files ratio (a date spacing that contradicts the months is refused)")
    fractions: tuple[float, float, float] = param((0.7, 0.1, 0.2), "ratio protocol: train / val / test fractions")
    seq_len: int = param(96, "input length (Zhang et al. 2023: 96)")
    pred_len: int = param(24, "horizon (Informer ETTh1: 24, 48, 168, 336, 720)")
    scale: bool = param(True, "z-score with train statistics (metrics are on the scaled values)")


@dataclass
class ForecastModel:
    kind: Literal["transformer", "tcn", "dlinear"] = param("transformer", "forecaster")
    d_model: int = param(64, "transformer width / TCN hidden size")
    heads: int = param(4, "attention heads")
    layers: int = param(2, "transformer layers / TCN residual blocks")
    d_ff: int = param(128, "transformer feed-forward width")
    dropout: float = param(0.05, "dropout")
    kernel: int = param(3, "TCN kernel size")
    moving_avg: int = param(25, "DLinear moving-average kernel (Zeng et al.: 25)")
    individual: bool = param(False, "DLinear: one linear map per channel")
    revin: bool = param(False, "RevIN (Kim et al. 2022) around the forecaster; off as in Informer, DLinear and "
                        "Zhang et al. 2023, whose papers do not use it")
    revin_affine: bool = param(True, "RevIN's learnable per-channel affine map (RevIN's default)")


@dataclass
class ForecastRegime:
    mode: Literal["mse", "e2e", "two_phase"] = param("e2e", "MSE only, end-to-end MSE + contrastive, or two-phase")
    contrastive_weight: float = param(0.5, "weight of the contrastive term in e2e (Zhang et al.: 0.5)")
    mask_rate: float = param(0.3, "probability that a time step is MASKED in a view (Zhang et al.: 0.3)")
    l2norm: bool = param(True, "L2-normalise queries and keys before InfoNCE")
    temperature: float = param(0.07, "InfoNCE temperature (MoCo: 0.07)")
    queue_size: int = param(1024, "MoCo queue of past keys")
    momentum: float = param(0.999, "momentum of the key encoder (MoCo: 0.999)")
    proj_dim: int = param(64, "projection size for the contrastive term")
    pretrain_fraction: float = param(0.5, "two_phase: fraction of the steps spent on contrastive pre-training")


@dataclass
class ForecastEval:
    batch_size: int = param(512, "windows per evaluation batch")
    val_every: int = param(1, "validate on every n-th validation window (1 = all)")


@dataclass
class ForecastConfig:
    data: SeriesData = param(SeriesData(), "series, split, windows")
    model: ForecastModel = param(ForecastModel(), "forecaster")
    method: ForecastRegime = param(ForecastRegime(), "training regime")
    eval: ForecastEval = param(ForecastEval(), "evaluation")


def build_forecaster(m: ForecastModel, seq_len: int, pred_len: int, channels: int):
    if m.kind == "dlinear":
        return DLinear(seq_len, pred_len, channels, m.moving_avg, m.individual, m.revin, m.revin_affine)
    enc = (TransformerEncoderNet(channels, seq_len, m.d_model, m.heads, m.layers, m.d_ff, m.dropout)
           if m.kind == "transformer" else TCNEncoderNet(channels, m.d_model, m.layers, m.kernel, m.dropout))
    return EncoderForecaster(enc, seq_len, pred_len, channels, m.revin, m.revin_affine)


class ForecastTask(Task):
    config_class = ForecastConfig
    description = "multivariate forecasting with an optional contrastive term"

    def build(self, recipe) -> TaskParts:
        cfg: ForecastConfig = recipe.config
        d = cfg.data
        series = load_series(d.path, d.date_column, d.columns or None)
        data = make_forecast_data(series, d.seq_len, d.pred_len, d.protocol, d.fractions, d.scale)
        channels = series.values.shape[1]
        r = cfg.method
        method = ForecastMethod(build_forecaster(cfg.model, d.seq_len, d.pred_len, channels),
                                r.mode if cfg.model.kind != "dlinear" else "mse", r.contrastive_weight, r.mask_rate,
                                r.l2norm, r.temperature, r.queue_size, r.momentum, r.proj_dim, r.pretrain_fraction)

        def device(meth):
            return next(meth.parameters()).device

        def evaluate(meth) -> dict[str, float]:
            res = evaluate_forecaster(meth.forecast, data.val, cfg.eval.batch_size, device(meth), cfg.eval.val_every)
            return {"val/mse": res["mse"], "val/mae": res["mae"]}

        def final(meth) -> dict[str, float]:
            out = {}
            for split, w in (("val", data.val), ("test", data.test)):
                res = evaluate_forecaster(meth.forecast, w, cfg.eval.batch_size, device(meth))
                base = evaluate_forecaster(LastValue(d.pred_len), w, cfg.eval.batch_size)
                out.update({f"{split}/mse": res["mse"], f"{split}/mae": res["mae"],
                            f"{split}/last_value_mse": base["mse"], f"{split}/last_value_mae": base["mae"]})
            return out

        return TaskParts(method, data.train, evaluate=evaluate, final_evaluate=final)
