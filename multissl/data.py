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
