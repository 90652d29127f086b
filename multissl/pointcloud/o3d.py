"""The one place that imports open3d (installed as ``open3d-cpu``), lazily.

open3d's CPU wheel links against libusb-1.0, which many slim systems lack; the ``libusb-package``
wheel ships it, so we preload that library globally before the first ``import open3d``.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

from multissl.errors import MultisslError


@cache
def import_open3d() -> Any:
    """Return the ``open3d`` module (imported once, with libusb preloaded when available)."""
    try:
        import libusb_package

        path = libusb_package.get_library_path()
        if path:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    except (ImportError, OSError):  # pragma: no cover - system libusb may be present
        pass
    try:
        import open3d
    except (ImportError, OSError) as exc:  # pragma: no cover
        raise MultisslError(f"open3d is needed here but cannot be imported ({exc}). "
                            "Install the extra: `pip install -e .[pointcloud]` (open3d-cpu, libusb-package).") from exc
    return open3d
