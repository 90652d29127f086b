"""Name -> task / eval command / benchmark, discovered from each adapter's ``catalog.py``.

A catalog is a tiny module with plain dicts of ``"module:attr"`` strings, so listing names never
imports torch; the object is imported only when it is used.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from multissl.errors import MultisslError, did_you_mean

KINDS = ("TASKS", "EVALS", "BENCHES")


@dataclass(frozen=True)
class Entry:
    """A registered object: where it lives and a one-line description."""

    name: str
    target: str  # "package.module:attribute"
    description: str

    def load(self) -> Any:
        module_name, _, attr = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise MultisslError(
                f"'{self.name}' needs the Python package '{exc.name}', which is not installed. "
                f"Install the matching extra, e.g. `pip install -e .[all]`."
            ) from exc
        return getattr(module, attr)


def _read_catalog(package_dir: Path, package: str) -> Any | None:
    """Execute ``<package>/catalog.py`` alone, without importing the package (its ``__init__`` may
    import torch); None when the adapter has no catalog."""
    path = package_dir / "catalog.py"
    if not path.is_file():
        return None
    name = f"multissl.{package}.catalog"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _catalog() -> dict[str, dict[str, Entry]]:
    import multissl

    found: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
    for info in sorted(pkgutil.iter_modules(multissl.__path__), key=lambda m: m.name):
        if not info.ispkg:
            continue
        catalog = _read_catalog(Path(info.module_finder.path) / info.name, info.name)
        if catalog is None:
            continue
        for kind in KINDS:
            for name, (target, description) in getattr(catalog, kind, {}).items():
                if name in found[kind]:
                    raise RuntimeError(f"{kind[:-1].lower()} '{name}' registered twice")
                found[kind][name] = Entry(name, target, description)
    return found


def entries(kind: str) -> dict[str, Entry]:
    """All entries of one kind ('TASKS', 'EVALS' or 'BENCHES'), by name."""
    return _catalog()[kind]


def lookup(kind: str, name: str) -> Entry:
    """The entry called ``name``, or a MultisslError listing the closest names."""
    table = entries(kind)
    if name not in table:
        label = {"TASKS": "task", "EVALS": "evaluation", "BENCHES": "benchmark"}[kind]
        raise MultisslError(
            f"Unknown {label} '{name}'.{did_you_mean(name, table)} Known: {', '.join(sorted(table))}."
        )
    return table[name]
