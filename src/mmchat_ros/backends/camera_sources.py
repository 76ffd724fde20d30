"""Camera frame sources for the camera node: a V4L2 device, a video file, a folder of images, or frames pushed
in from elsewhere (the simulator's camera topic). No ROS here.

Every source yields RGB uint8 frames through ``read()``, which returns a ``Frame`` or None (nothing new yet) and
raises ``SourceError`` when the source is broken (device gone, corrupt file, ...). ``ReconnectingSource`` wraps any
source: it reopens a broken one with exponential back-off and reports each failure once, so the node keeps
running through a camera being unplugged or a file being replaced.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class SourceError(RuntimeError):
    """The source cannot deliver frames now (it may recover: reopen later)."""


class EndOfStream(SourceError):
    """A finite source (file or folder played once) has no more frames."""


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray          # HxWx3 uint8
    capture_time: float      # time.time() when the frame was taken from the source (wall clock, s)
    index: int               # frame number since the source was opened
    origin_stamp: object = None   # the capture stamp a relayed frame came with (a ROS Time message), if any


class FrameSource(Protocol):
    description: str
    paced: bool              # True: read() blocks until the device has a frame (a camera); False: files, folders

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


def _cv2():
    import cv2
    return cv2


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """OpenCV's BGR (or grey, or BGRA) to RGB."""
    cv2 = _cv2()
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def fit_frame(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """The frame at width x height (no-op when it already is; 0 keeps the source size)."""
    if width <= 0 or height <= 0 or (rgb.shape[1] == width and rgb.shape[0] == height):
        return rgb
    cv2 = _cv2()
    shrinking = width < rgb.shape[1] or height < rgb.shape[0]
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


class _OpenCvCapture:
    """What the sources read through cv2.VideoCapture share: numbering the frames and releasing the capture."""
    capture = None
    count = 0

    def _next_frame(self, bgr_image) -> Frame:
        self.count += 1
        return Frame(bgr_to_rgb(bgr_image), time.time(), self.count - 1)

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


class V4L2Source(_OpenCvCapture):
    """A camera through OpenCV's V4L2 backend (device index N = /dev/videoN)."""
    paced = True

    def __init__(self, device: int, width: int = 640, height: int = 480, fps: float = 30.0):
        self.device, self.width, self.height, self.fps = device, width, height, fps
        self.description = f"V4L2 device /dev/video{device}"
        self.capture = None
        self.count = 0

    def open(self) -> None:
        cv2 = _cv2()
        if not Path(f"/dev/video{self.device}").exists():
            present = ", ".join(video_devices()) or "none"
            raise SourceError(f"/dev/video{self.device} does not exist (V4L2 devices present: {present})")
        capture = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open /dev/video{self.device} (busy, or no permission: add the user to the "
                              "'video' group)")
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.width), (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                            (cv2.CAP_PROP_FPS, self.fps)):
            if value > 0:
                capture.set(prop, value)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)     # the newest frame, not a queue of old ones
        self.capture, self.count = capture, 0

    def read(self) -> Frame | None:
        if self.capture is None:
            raise SourceError("device not open")
        ok, image = self.capture.read()
        if not ok or image is None:
            raise SourceError(f"/dev/video{self.device} stopped delivering frames (unplugged?)")
        return self._next_frame(image)


class VideoFileSource(_OpenCvCapture):
    """A video file, played once or looped; frames come as fast as they are read (the node paces them)."""
    paced = False

    def __init__(self, path: str, loop: bool = True):
        self.path, self.loop = Path(path).expanduser(), loop
        self.description = f"video file {self.path}{' (looped)' if loop else ''}"
        self.capture = None
        self.count = 0
        self.native_fps = float("nan")

    def open(self) -> None:
        cv2 = _cv2()
        if not self.path.is_file():
            raise SourceError(f"video file {self.path} not found")
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot decode video file {self.path} (corrupt or unsupported format)")
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise SourceError(f"video file {self.path} has no readable frame (corrupt or empty)")
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self.native_fps = capture.get(cv2.CAP_PROP_FPS) or float("nan")
        self.capture, self.count = capture, 0

    def read(self) -> Frame | None:
        if self.capture is None:
            raise SourceError("video file not open")
        ok, image = self.capture.read()
        if not ok or image is None:
            if not self.loop:
                raise EndOfStream(f"end of {self.path}")
            # Loop: reopen rather than seek (seeking is unreliable in some containers).
            self.close()
            self.open()
            ok, image = self.capture.read()
            if not ok or image is None:
                raise SourceError(f"video file {self.path} stopped decoding")
        return self._next_frame(image)


class ImageFolderSource:
    """The images of a folder in name order, played once or looped. Unreadable images are skipped (and reported
    through ``on_skip``); a folder with none readable is an error."""
    paced = False

    def __init__(self, path: str, loop: bool = True, on_skip: Callable[[str], None] | None = None):
        self.path, self.loop = Path(path).expanduser(), loop
        self.description = f"image folder {self.path}{' (looped)' if loop else ''}"
        self.on_skip = on_skip or (lambda message: None)
        self.files: list[Path] = []
        self.position = 0
        self.count = 0
        self.skipped: set[Path] = set()

    def open(self) -> None:
        if not self.path.is_dir():
            raise SourceError(f"image folder {self.path} not found")
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise SourceError(f"image folder {self.path} has no images ({', '.join(IMAGE_SUFFIXES)})")
        self.position, self.count = 0, 0

    def read(self) -> Frame | None:
        cv2 = _cv2()
        if not self.files:
            raise SourceError("image folder not open")
        for _ in range(len(self.files)):
            if self.position >= len(self.files):
                if not self.loop:
                    raise EndOfStream(f"end of {self.path}")
                self.position = 0
            path = self.files[self.position]
            self.position += 1
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None or image.dtype != np.uint8 or image.ndim not in (2, 3):
                if path not in self.skipped:
                    self.skipped.add(path)
                    self.on_skip(f"skipping unreadable image {path}")
                continue
            stamp = time.time()
            self.count += 1
            return Frame(bgr_to_rgb(image), stamp, self.count - 1)
        raise SourceError(f"no readable image left in {self.path}")

    def close(self) -> None:
        self.files = []


class PushedFrameSource:
    """Frames handed in by someone else (the camera node's subscription to the simulator's camera): ``read()``
    gives the newest one not given before, or None."""
    paced = False

    def __init__(self, description: str = "pushed frames"):
        self.description = description
        self._lock = threading.Lock()
        self._arrived = threading.Event()
        self._latest: Frame | None = None
        self.count = 0

    def push(self, rgb: np.ndarray, capture_time: float, origin_stamp: object = None) -> None:
        with self._lock:
            self._latest = Frame(rgb, capture_time, self.count, origin_stamp)
            self.count += 1
        self._arrived.set()

    def wake(self) -> None:
        """End a ``wait`` early without a frame (shutdown)."""
        self._arrived.set()

    def wait(self, timeout: float) -> bool:
        """Block until a frame is pushed (True) or ``timeout`` passes (False)."""
        arrived = self._arrived.wait(timeout)
        self._arrived.clear()
        return arrived

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        with self._lock:
            frame, self._latest = self._latest, None
        return frame

    def close(self) -> None:
        pass


class ReconnectingSource:
    """Keeps a source alive: a failure closes it and it is reopened after a back-off that doubles up to
    ``max_backoff_s``. ``on_event(level, message)`` hears every state change once (not every retry)."""

    def __init__(self, source: FrameSource, on_event: Callable[[str, str], None] | None = None,
                 initial_backoff_s: float = 0.5, max_backoff_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.source = source
        self.on_event = on_event or (lambda level, message: None)
        self.initial_backoff_s, self.max_backoff_s = initial_backoff_s, max_backoff_s
        self.clock = clock
        self.is_open = False
        self.ended = False
        self.failures = 0
        self.reconnects = 0
        self.backoff_s = initial_backoff_s
        self.retry_at = -math.inf
        self.last_error = ""

    @property
    def description(self) -> str:
        return self.source.description

    def _fail(self, error: Exception) -> None:
        message = str(error)
        if message != self.last_error:
            self.on_event("error", f"{self.source.description}: {message}; retrying every "
                                   f"{self.initial_backoff_s:g}-{self.max_backoff_s:g} s")
        self.last_error = message
        self.failures += 1
        try:
            self.source.close()
        except Exception:   # closing a broken device may fail too; it is being replaced anyway
            pass
        self.is_open = False
        self.retry_at = self.clock() + self.backoff_s
        self.backoff_s = min(self.max_backoff_s, self.backoff_s * 2.0)

    def read(self) -> Frame | None:
        """A frame, or None when there is none now (not yet, broken and waiting to retry, or ended)."""
        if self.ended:
            return None
        if not self.is_open:
            if self.clock() < self.retry_at:
                return None
            try:
                self.source.open()
            except Exception as exc:
                self._fail(exc)
                return None
            self.is_open = True
            if self.failures:
                self.reconnects += 1
                self.on_event("info", f"{self.source.description}: recovered after {self.failures} failed "
                                      "attempt(s)")
            else:
                self.on_event("info", f"{self.source.description}: opened")
            self.failures, self.backoff_s, self.last_error = 0, self.initial_backoff_s, ""
        try:
            frame = self.source.read()
        except EndOfStream as exc:
            self.on_event("info", f"{exc}: no more frames")
            self.ended = True
            return None
        except Exception as exc:
            self._fail(exc)
            return None
        if frame is not None and (frame.rgb.ndim != 3 or frame.rgb.shape[2] != 3 or frame.rgb.size == 0):
            self._fail(SourceError(f"frame of shape {frame.rgb.shape} is not an RGB image"))
            return None
        return frame

    def close(self) -> None:
        try:
            self.source.close()
        finally:
            self.is_open = False


def make_source(kind: str, *, device: int = 0, path: str = "", loop: bool = True, width: int = 640,
                height: int = 480, fps: float = 30.0, on_skip: Callable[[str], None] | None = None) -> FrameSource:
    """A source by the camera node's ``source`` parameter: device, video, folder or topic."""
    if kind == "device":
        return V4L2Source(device, width, height, fps)
    if kind == "video":
        if not path:
            raise ValueError("source 'video' needs a path")
        return VideoFileSource(path, loop)
    if kind == "folder":
        if not path:
            raise ValueError("source 'folder' needs a path")
        return ImageFolderSource(path, loop, on_skip)
    if kind == "topic":
        return PushedFrameSource("frames from the input topic")
    raise ValueError(f"unknown camera source '{kind}' (device, video, folder, topic)")


def video_devices() -> list[str]:
    """The V4L2 devices present (/dev/video*), for `mmchat doctor` and error messages."""
    return sorted(str(p) for p in Path("/dev").glob("video*"))
