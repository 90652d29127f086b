"""Helpers every adapter's loaders share: resolving shipped data sets and clear missing-file errors."""

from __future__ import annotations

from pathlib import Path

from multissl.errors import DataError


def project_root() -> Path:
    """The source checkout that holds ``data/`` and ``recipes/`` (editable install)."""
    return Path(__file__).resolve().parent.parent


def resolve_data_path(path: str | Path, what: str = "data") -> Path:
    """An existing path: as given, relative to the project root, or under ``data/``; else a DataError."""
    p = Path(path).expanduser()
    for candidate in (p, project_root() / p, project_root() / "data" / p):
        if candidate.exists():
            return candidate
    raise DataError(
        f"{what} not found: '{path}' (looked in the working directory, {project_root()} and "
        f"{project_root() / 'data'}). Check the path, or see data/README.md for the shipped sets.")


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
