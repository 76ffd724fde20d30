"""A yolo11n-architecture YOLO model for tests: built from ultralytics' own architecture YAML with random weights
(no registry ships trained YOLO weights, and nothing may be downloaded) and saved to a temporary .pt file once per
test session. It exercises the real ultralytics loading, inference, tracking and export paths; it detects nothing
meaningful, so tracking quality is tested with the HOG detector on real video instead."""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from mmchat_ros.backends.tracking import video_frames

VTEST_AVI = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")   # Debian package opencv-doc


@functools.lru_cache(maxsize=None)
def yolo11n_weights() -> Path:
    """Path of the session's yolo11n-architecture .pt (built on first use, removed at exit)."""
    from mmchat_ros.backends.detectors import build_untrained_model
    directory = Path(tempfile.mkdtemp(prefix="mmchat-yolo-"))
    atexit.register(shutil.rmtree, directory, True)
    return build_untrained_model(directory / "yolo11n.pt", "yolo11n.yaml")


def vtest(count: int, start: int = 0) -> list:
    """RGB frames of vtest.avi (768x576 pedestrians, 10 fps)."""
    if not VTEST_AVI.is_file():
        raise FileNotFoundError(f"{VTEST_AVI} is missing: apt-get install opencv-doc")
    return list(video_frames(VTEST_AVI, count, start))
