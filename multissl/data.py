"""Helpers every adapter's loaders share: resolving shipped data sets and clear missing-file errors."""

from __future__ import annotations

import os
from pathlib import Path

from multissl.errors import DataError


def project_root() -> Path:
    """The source checkout that holds ``data/`` and ``recipes/`` (editable install)."""
    return Path(__file__).resolve().parent.parent


def resolve_data_path(path: str | Path, what: str = "data") -> Path:
    """An existing path: as given (``$MULTISSL_DATA`` and ``~`` expanded), relative to the project root,
    under ``data/``, or under ``$MULTISSL_DATA`` (where full data sets live); else a DataError."""
    p = Path(os.path.expandvars(str(path))).expanduser()
    roots = [project_root(), project_root() / "data"]
    if os.environ.get("MULTISSL_DATA"):
        roots.append(Path(os.environ["MULTISSL_DATA"]))
    for candidate in (p, *(r / p for r in roots)):
        if candidate.exists():
            return candidate
    raise DataError(
        f"{what} not found: '{path}' (looked in the working directory, {', '.join(map(str, roots))}). Check the "
        "path, set MULTISSL_DATA to the folder of full data sets, or see data/README.md for the shipped sets.")


class SequenceDataset:
    """A map-style dataset over any indexable sequence (a tensor's rows, a list of strings, ...).

    ``items[i]`` is item ``i``; collation is the DataLoader's (or the task's collate function). It is a
    plain class so importing ``multissl.data`` does not import torch; DataLoader needs only
    ``__len__`` and ``__getitem__``.
    """

    def __init__(self, items) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def numeric_columns(frame, columns: list, path: str | Path, header_lines: int = 1):
    """``frame[columns]`` as a float32 array; a DataError naming the file, line and column of the first
    cell that is not a number, or is empty / NaN / infinite (a NaN would silently poison training or
    give NaN embeddings)."""
    import numpy as np
    import pandas as pd

    out = np.empty((len(frame), len(columns)), dtype=np.float32)
    for j, col in enumerate(columns):
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            raw = frame[col].iloc[i]
            label = frame.index[i]
            line = f"line {int(label) + 1 + header_lines}" if isinstance(label, (int, np.integer)) else f"row {label}"
            what = "is empty or NaN" if pd.isna(raw) else f"holds {str(raw)[:40]!r}, not a finite number"
            raise DataError(f"{path}: {line}, column '{col}' {what} ({int(bad.sum())} such cells in that column); "
                            "fix or drop those rows")
        out[:, j] = values
    return out
