"""Forecasting data, once for every forecaster: loaders (CSV/Parquet with a date column, any
``datasets`` time series), the Informer split protocol, train-statistics scaling and sliding windows.

Informer protocol (Zhou et al., AAAI 2021, its ``Dataset_ETT_hour`` / ``Dataset_ETT_minute``): 12 / 4 / 4
months of 30 days for train / val / test (rows: months x 30 x 24 for the hourly ETTh files, x 30 x 24 x 4
for the 15-minute ETTm files), each later split starting ``seq_len`` steps early so its first window has
a full input; z-scoring with the TRAIN rows' mean and std; metrics on the scaled values. Protocol
``auto`` picks the ETTm borders for a file named ETTm*, the ETTh ones for ETTh*, else the 70/10/20
ratio split; a file whose date column steps by 15 minutes is refused under the hourly borders (and the
reverse), since those borders would silently cover a quarter of the months.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from multissl.data import resolve_data_path
from multissl.errors import DataError


@dataclass
class Series:
    """A multivariate series (T, C) float32 with its column names (time order kept)."""

    values: np.ndarray
    columns: list[str]
    step_seconds: float | None = None  # median spacing of the date column (None: no parsable dates)
    name: str = ""  # file stem, for protocol "auto"


def load_series(path: str, date_column: str | None = "date", columns: list[str] | None = None,
                split: str = "train") -> Series:
    """Read a series from CSV / Parquet (sorted by ``date_column`` when given), or from a Hugging Face
    ``datasets`` set written ``hf:<name>[:<config>]`` (each of ``columns`` a numeric column; a
    ``target`` sequence column of a one-series-per-row set is stacked as channels)."""
    if path.startswith("hf:"):
        import datasets

        name, _, config = path[3:].partition(":")
        ds = datasets.load_dataset(name, config or None, split=split)
        frame = ds.to_pandas()
        if columns is None and "target" in frame.columns and isinstance(frame["target"].iloc[0], (list, np.ndarray)):
            arr = np.stack([np.asarray(t, np.float32) for t in frame["target"]], 1)
            return Series(arr, [f"series{i}" for i in range(arr.shape[1])])
    else:
        import pandas as pd

        p = resolve_data_path(path, "time series")
        frame = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    if date_column:
        if date_column not in frame.columns:
            raise DataError(f"date column '{date_column}' not in {path} (columns: {list(frame.columns)}); "
                            "set data.date_column (or null)")
        import pandas as pd

        # sort by the parsed time when every date parses ("7/1/2016 0:15" sorts wrongly as text)
        when = pd.to_datetime(frame[date_column], errors="coerce")
        if bool(when.notna().all()):
            frame = frame.assign(_when=when.values).sort_values("_when", kind="stable")
            diffs = frame["_when"].diff().dt.total_seconds().dropna()
            step = float(diffs.median()) if len(diffs) else None
            frame = frame.drop(columns="_when")
        else:
            frame = frame.sort_values(date_column, kind="stable")
            step = None
    else:
        step = None
    cols = columns or [c for c in frame.columns if c != date_column]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(f"columns {missing} not in {path} (columns: {list(frame.columns)})")
    from multissl.data import numeric_columns

    stem = "" if path.startswith("hf:") else resolve_data_path(path, "time series").stem
    return Series(numeric_columns(frame, cols, path, header_lines=1), list(cols), step, stem)


# Steps per day of the Informer borders, and the date spacing each expects.
_INFORMER = {"informer_hourly": (24, 3600.0), "informer_15min": (96, 900.0)}


def infer_protocol(name: str) -> str:
    """Protocol ``auto`` by file name: ETTh* -> Informer hourly months, ETTm* -> Informer 15-min months,
    anything else -> the 70/10/20 ratio split (Informer / Autoformer's custom-data protocol)."""
    n = name.lower()
    if n.startswith("etth"):
        return "informer_hourly"
    if n.startswith("ettm"):
        return "informer_15min"
    return "ratio"


def informer_borders(n: int, seq_len: int, train_months: int = 12, val_months: int = 4, test_months: int = 4,
                     steps_per_day: int = 24) -> list[tuple[int, int]]:
    """(start, end) rows of train / val / test under the Informer ETT protocol (30-day months)."""
    m = 30 * steps_per_day
    a, b, c = train_months * m, (train_months + val_months) * m, (train_months + val_months + test_months) * m
    if c > n:
        raise DataError(f"the series has {n} steps, the Informer split needs {c}")
    return [(0, a), (a - seq_len, b), (b - seq_len, c)]


def ratio_borders(n: int, seq_len: int, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> list[tuple[int, int]]:
    """Chronological train / val / test by fractions (the custom-data protocol of Informer / Autoformer)."""
    a = int(n * fractions[0])
    t = int(n * fractions[2])
    b = n - t
    return [(0, a), (a - seq_len, b), (b - seq_len, n)]


class StandardScaler:
    """Z-scoring with statistics of the training rows only."""

    def __init__(self, train: np.ndarray) -> None:
        self.mean = train.mean(0)
        self.std = train.std(0)
        self.std[self.std == 0] = 1.0

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        return x * self.std + self.mean


class ForecastWindows(Dataset):
    """Sliding windows over rows [start, end): item t -> (x (seq_len, C), y (pred_len, C)), stride 1."""

    def __init__(self, values: np.ndarray | torch.Tensor, seq_len: int, pred_len: int, start: int = 0,
                 end: int | None = None) -> None:
        v = torch.as_tensor(values, dtype=torch.float32)
        self.v = v[start : len(v) if end is None else end]
        self.seq_len, self.pred_len = seq_len, pred_len
        if len(self) <= 0:
            raise DataError(f"{len(self.v)} rows are too few for seq_len={seq_len} + pred_len={pred_len}")

    def __len__(self) -> int:
        return len(self.v) - self.seq_len - self.pred_len + 1

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.v[i : i + self.seq_len], self.v[i + self.seq_len : i + self.seq_len + self.pred_len]

    def tensors(self, every: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """All windows at once (N, seq_len, C), (N, pred_len, C) (every ``every``-th), as strided views."""
        idx = torch.arange(0, len(self), every)
        x = self.v.unfold(0, self.seq_len, 1)[idx].transpose(1, 2)
        y = self.v[self.seq_len :].unfold(0, self.pred_len, 1)[idx].transpose(1, 2)
        return x, y


@dataclass
class ForecastData:
    """Scaled train / val / test windows and the scaler."""

    train: ForecastWindows
    val: ForecastWindows
    test: ForecastWindows
    scaler: StandardScaler
    columns: list[str]


def make_forecast_data(series: Series, seq_len: int, pred_len: int, protocol: str = "informer_hourly",
                       fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), scale: bool = True) -> ForecastData:
    """Split chronologically (``informer_hourly`` / ``informer_15min`` / ``ratio``, or ``auto``: by the
    series' file name, see :func:`infer_protocol`), scale with train statistics, window every split."""
    n = len(series.values)
    if protocol == "auto":
        protocol = infer_protocol(series.name)
    if protocol in _INFORMER:
        per_day, expected = _INFORMER[protocol]
        step = series.step_seconds
        if step is not None and abs(step - expected) > 1e-6:
            other = [k for k, (_, e) in _INFORMER.items() if abs(step - e) < 1e-6]
            raise DataError(f"split {protocol} expects one row per {expected / 60:g} min, but the date column of "
                            f"{series.name or 'the series'} steps by {step / 60:g} min; set data.protocol="
                            f"{other[0] if other else 'ratio'} (or auto)")
        borders = informer_borders(n, seq_len, steps_per_day=per_day)
    elif protocol == "ratio":
        borders = ratio_borders(n, seq_len, fractions)
    else:
        raise DataError(f"unknown split protocol {protocol!r}: auto, informer_hourly, informer_15min or ratio")
    scaler = StandardScaler(series.values[borders[0][0] : borders[0][1]])
    values = scaler.transform(series.values) if scale else series.values.astype(np.float32)
    parts = [ForecastWindows(values, seq_len, pred_len, s, e) for s, e in borders]
    return ForecastData(*parts, scaler=scaler, columns=series.columns)
