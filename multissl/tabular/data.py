"""Feature tables: CSV(.gz) / .npy / Parquet with a label column, split deterministically."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from multissl.data import resolve_data_path
from multissl.errors import DataError


@dataclass
class Table:
    """Features (N, F) float32 and integer labels (N,) (labels -1 when unlabelled)."""

    x: torch.Tensor
    y: torch.Tensor


def load_table(path: str, label_column: int | str = -1, header: bool = False) -> Table:
    """Read a numeric table; ``label_column`` is an index or a column name (None = unlabelled)."""
    p = resolve_data_path(path, "table")
    try:
        if p.suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            import pandas as pd

            frame = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p, header=0 if header else None)
            if isinstance(label_column, str):
                label_column = list(frame.columns).index(label_column)
            arr = frame.to_numpy()
    except (ValueError, OSError) as exc:
        raise DataError(f"Cannot read table {p}: {exc}") from None
    arr = _numeric(arr, p, header)
    if label_column is None:
        return Table(torch.from_numpy(arr).float(), torch.full((len(arr),), -1, dtype=torch.long))
    y = arr[:, label_column].astype(np.int64)
    x = np.delete(arr, label_column % arr.shape[1], axis=1)
    return Table(torch.from_numpy(x).float(), torch.from_numpy(y))


def _numeric(arr: np.ndarray, path, header: bool) -> np.ndarray:
    """``arr`` as float64; a DataError naming the file, row and column of the first non-number or NaN cell."""
    offset = 2 if header else 1  # line number in the file of data row 0
    try:
        out = np.asarray(arr, dtype=np.float64)
    except (ValueError, TypeError):
        out = None
        for r, row in enumerate(arr):
            for c, v in enumerate(row):
                try:
                    float(v)
                except (ValueError, TypeError):
                    raise DataError(f"{path}: row {r + 1} (line {r + offset}), column {c + 1} holds {str(v)[:40]!r}, "
                                    "which is not a number; fix or drop that row") from None
    if out is None:  # pragma: no cover - every row converted one by one yet not as a whole
        raise DataError(f"{path}: the table is not numeric")
    bad = np.argwhere(~np.isfinite(out))
    if len(bad):
        r, c = bad[0].tolist()
        raise DataError(f"{path}: row {r + 1} (line {r + offset}), column {c + 1} is empty, NaN or infinite "
                        f"({len(bad)} such cells); fill or drop those rows")
    return out


def split_indices(n: int, fractions: tuple[float, float, float], seed: int) -> tuple[torch.Tensor, ...]:
    """Random train / val / test index split with the given fractions (seeded)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    a = int(round(fractions[0] * n))
    b = a + int(round(fractions[1] * n))
    return perm[:a], perm[a:b], perm[b:]

