"""Read data files that are Python pickles (Planetoid ``ind.*``) without letting them run code.

A pickle names the callables it wants called while loading; a hostile file names ``os.system``.
:class:`RestrictedUnpickler` resolves only an allow-list of plain-data classes (NumPy arrays, SciPy
sparse matrices, lists, dicts, ``defaultdict``) and refuses every other name with the file's path.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from multissl.errors import DataError

# (module, name) pairs that plain-data pickles (NumPy arrays, SciPy sparse matrices, containers) use.
PLAIN_DATA: frozenset[tuple[str, str]] = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("collections", "defaultdict"), ("collections", "OrderedDict"),
    ("builtins", "list"), ("builtins", "dict"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "tuple"), ("builtins", "int"), ("builtins", "float"), ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("builtins", "object"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store NumPy's raw bytes
})
_SPARSE = {"csr_matrix", "csc_matrix", "coo_matrix", "lil_matrix", "dok_matrix", "bsr_matrix", "dia_matrix",
           "csr_array", "csc_array", "coo_array", "lil_array", "dok_array", "bsr_array", "dia_array"}
_SPARSE_MODULES = {"scipy.sparse", "scipy.sparse.csr", "scipy.sparse.csc", "scipy.sparse.coo", "scipy.sparse.lil",
                   "scipy.sparse.dok", "scipy.sparse.bsr", "scipy.sparse.dia", "scipy.sparse._csr",
                   "scipy.sparse._csc", "scipy.sparse._coo", "scipy.sparse._lil", "scipy.sparse._dok",
                   "scipy.sparse._bsr", "scipy.sparse._dia", "scipy.sparse._arrays"}


def allowed(module: str, name: str) -> bool:
    """Whether ``module.name`` is a plain-data class a restricted load may resolve."""
    module = "builtins" if module == "__builtin__" else module
    if (module, name) in PLAIN_DATA:
        return True
    if module in _SPARSE_MODULES and name in _SPARSE:
        return True
    # NumPy's concrete dtype classes (numpy.dtypes.Float64DType, ...) are data descriptions
    return (module == "numpy" and name.endswith("dtype")) or module == "numpy.dtypes"


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :func:`allowed` names; any other name is a DataError naming the file."""

    def __init__(self, file: Any, source: str, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if allowed(module, name):
            return super().find_class(module, name)
        raise DataError(f"{self.source} is a pickle that asks to run {module}.{name}; refused (only NumPy arrays, "
                        "SciPy sparse matrices and plain containers are read from data files). Replace the file "
                        "with a trusted copy.")

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self.source} is a pickle with persistent references; refused (plain data only)")


def load(path: str | Path, encoding: str = "latin1") -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (plain data only); a DataError on anything else."""
    p = Path(path)
    data = p.read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(data), str(p), encoding=encoding).load()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated or not a pickle at all: any failure is a DataError
        raise DataError(f"{p} is not a readable pickle ({type(exc).__name__}: {str(exc)[:120]}); "
                        "replace it with an intact copy.") from None


class _SafePickleModule:
    """Stands in for the ``pickle`` module inside PyG's Planetoid reader: ``load`` is restricted."""

    @staticmethod
    def load(file: Any, encoding: str = "latin1", **_: Any) -> Any:
        name = getattr(file, "path", None) or getattr(file, "name", None) or "pickle file"
        return RestrictedUnpickler(file, str(name), encoding=encoding).load()


def read_planetoid(folder: str | Path, prefix: str) -> Any:
    """PyG's ``read_planetoid_data`` with every ``ind.<prefix>.*`` pickle read by the restricted unpickler."""
    from unittest import mock

    from torch_geometric.io import planetoid

    folder = Path(folder)
    for name in ("x", "tx", "allx", "y", "ty", "ally", "graph"):
        f = folder / f"ind.{prefix}.{name}"
        if not f.is_file():
            raise DataError(f"Planetoid file {f} is missing; a Planetoid folder holds ind.{prefix}."
                            "{x,tx,allx,y,ty,ally,graph,test.index}")
    try:
        with mock.patch.object(planetoid, "pickle", _SafePickleModule):
            return planetoid.read_planetoid_data(str(folder), prefix)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated files, mismatched sizes: any failure is a DataError
        raise DataError(f"Cannot read the Planetoid files ind.{prefix}.* in {folder} ({type(exc).__name__}: "
                        f"{str(exc)[:150]}); replace them with intact copies.") from None
