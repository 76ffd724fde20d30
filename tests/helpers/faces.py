"""Real photographs of three different people, shipped by installed packages, and camera-like augmented views of
them: what the face tests and bench/face.py enroll, verify and reject.

  astronaut     scikit-image's ``data.astronaut()`` (Eileen Collins)
  grace_hopper  matplotlib's sample ``grace_hopper.jpg``
  messi         OpenCV's ``messi5.jpg`` (Debian's opencv-doc)

A view is a 320x240 frame like the drone's camera: the photo moved, scaled (face 70-120 px wide), rotated a little,
maybe mirrored, with brightness/contrast/gamma changes, blur, sensor noise and JPEG compression. Different seeds
give different views, so enrollment and verification never share a frame.
"""
from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
FRAME_SIZE = (320, 240)   # width, height: the simulator camera's


@dataclass(frozen=True)
class Photo:
    name: str
    rgb: np.ndarray
    face_centre: tuple[float, float]   # x, y in photo pixels (where a face detector puts the face)
    face_width: float                  # face box width in photo pixels


# Face positions in the source photos (fixture metadata, as any frontal detector finds them).
_FACES = {"astronaut": ((223.0, 127.0), 88.0), "grace_hopper": ((269.0, 245.0), 216.0),
          "messi": ((243.5, 112.5), 37.0)}
PEOPLE = tuple(_FACES)


def _load_rgb(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage import data
        return np.ascontiguousarray(data.astronaut())
    if name == "grace_hopper":
        from matplotlib import cbook
        with cbook.get_sample_data("grace_hopper.jpg") as handle:
            encoded = np.frombuffer(handle.read(), dtype=np.uint8)
        return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if name == "messi":
        path = OPENCV_DATA / "messi5.jpg"
        bgr = cv2.imread(str(path))
        if bgr is None:
            raise FileNotFoundError(f"{path} is missing: apt-get install opencv-doc")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    raise KeyError(f"no photo named '{name}' (one of {', '.join(PEOPLE)})")


@functools.lru_cache(maxsize=None)
def photo(name: str) -> Photo:
    centre, width = _FACES[name]
    rgb = _load_rgb(name)
    rgb.setflags(write=False)
    return Photo(name, rgb, centre, width)


def camera_view(name: str, seed: int, size: tuple[int, int] = FRAME_SIZE, face_px: tuple[float, float] = (70, 120),
                mirror: bool | None = None) -> np.ndarray:
    """One augmented HxWx3 uint8 RGB view of ``name``'s photo, reproducible from ``seed``."""
    rng = np.random.default_rng([zlib.crc32(name.encode()), seed])   # str hash() varies per process
    source = photo(name)
    width, height = size
    scale = rng.uniform(*face_px) / source.face_width
    angle = rng.uniform(-10.0, 10.0)
    target = (width / 2 + rng.uniform(-0.15, 0.15) * width, height / 2 + rng.uniform(-0.12, 0.12) * height)
    matrix = cv2.getRotationMatrix2D(source.face_centre, angle, scale)
    matrix[:, 2] += np.array(target) - np.array(source.face_centre)
    view = cv2.warpAffine(source.rgb, matrix, size, flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)   # reflecting would mirror the face into a second one
    if mirror if mirror is not None else rng.random() < 0.5:
        view = view[:, ::-1]
    # Exposure: contrast, brightness and gamma, as an auto-exposing camera would vary them.
    pixels = view.astype(np.float32) / 255.0
    pixels = np.clip((pixels - 0.5) * rng.uniform(0.75, 1.25) + 0.5 + rng.uniform(-0.12, 0.12), 0.0, 1.0)
    pixels = pixels ** rng.uniform(0.8, 1.25)
    view = (pixels * 255.0).astype(np.uint8)
    sigma = rng.uniform(0.0, 1.0)
    if sigma > 0.3:
        view = cv2.GaussianBlur(view, (0, 0), sigma)
    noise = rng.normal(0.0, rng.uniform(0.0, 5.0), view.shape)
    view = np.clip(view.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(view, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(60, 95))])
    assert ok
    return np.ascontiguousarray(cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


def views(name: str, seeds, **kwargs) -> list[np.ndarray]:
    return [camera_view(name, seed, **kwargs) for seed in seeds]


def two_person_frame(left: str, right: str, seed: int = 0) -> np.ndarray:
    """One 320x240 frame with ``left`` and ``right`` side by side, each face 60-75 px wide."""
    half = (FRAME_SIZE[0] // 2, FRAME_SIZE[1])
    return np.ascontiguousarray(np.hstack([camera_view(left, seed, half, (60, 75), mirror=False),
                                           camera_view(right, seed + 1, half, (60, 75), mirror=False)]))


def no_face_frame() -> np.ndarray:
    """A real photograph with no person in it (scikit-image's coffee cup), at camera size."""
    from skimage import data
    return np.ascontiguousarray(cv2.resize(data.coffee(), FRAME_SIZE, interpolation=cv2.INTER_AREA))


class CameraStream:
    """Publishes frames on /camera/image_raw from a test's ROS participant, like the camera node would: rgb8,
    sensor-data QoS, cycling through the current frames at ``rate_hz`` until stopped. ``show`` switches what the
    camera sees; ``show([])`` stops publishing (a camera that went quiet)."""

    def __init__(self, ros, rate_hz: float = 10.0, topic: str = "/camera/image_raw"):
        import threading
        from sensor_msgs.msg import Image
        from mmchat_ros.nodes.common import SENSOR_QOS
        self.ros = ros
        self.period = 1.0 / rate_hz
        self.publisher = ros.node.create_publisher(Image, topic, SENSOR_QOS)
        self.messages: list = []
        self.published = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def show(self, frames, encoding: str = "rgb8") -> None:
        from mmchat_ros.nodes.image_conversion import numpy_to_image
        messages = [frame if not isinstance(frame, np.ndarray) else numpy_to_image(frame, encoding)
                    for frame in frames]
        for msg in messages:
            msg.header.frame_id = "camera_optical"
        with self._lock:
            self.messages = messages

    def _run(self) -> None:
        index = 0
        while not self._stop.wait(self.period):
            with self._lock:
                messages = self.messages
            if not messages:
                continue
            msg = messages[index % len(messages)]
            index += 1
            msg.header.stamp = self.ros.node.get_clock().now().to_msg()
            try:
                self.publisher.publish(msg)
                self.published += 1
            except Exception:   # the participant is shutting down
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
