"""Where the package's data (config/, launch/, sim/) lives: the source checkout, or share/mmchat_ros when installed."""
from __future__ import annotations

import os
import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[3]   # src/mmchat_ros/core/paths.py -> repository root


def share_dir() -> Path:
    """The directory holding config/, launch/ and sim/."""
    override = os.environ.get("MMCHAT_SHARE_DIR")
    if override:
        return Path(override)
    if (_CHECKOUT / "config").is_dir() and (_CHECKOUT / "package.xml").is_file():
        return _CHECKOUT
    # ROS convention: the overlays in AMENT_PREFIX_PATH first, then this interpreter's prefix (the venv).
    for prefix in [*filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)), sys.prefix]:
        candidate = Path(prefix) / "share" / "mmchat_ros"
        if (candidate / "config").is_dir():
            return candidate
    raise FileNotFoundError("cannot find mmchat_ros's config/: set MMCHAT_SHARE_DIR or install the package")


def config_file(name: str) -> Path:
    return share_dir() / "config" / name
