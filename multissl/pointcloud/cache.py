"""Where generated point-cloud data (the procedural shape set, simulated LiDAR scenes) is cached."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$MULTISSL_CACHE/pointcloud`` (default ``~/.cache/multissl/pointcloud``); not shipped."""
    return Path(os.environ.get("MULTISSL_CACHE", Path.home() / ".cache" / "multissl")) / "pointcloud"
