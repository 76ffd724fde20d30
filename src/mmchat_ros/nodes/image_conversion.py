"""sensor_msgs/Image <-> numpy, without cv_bridge (PyPI's cv-bridge is the ROS 1 code and breaks on numpy 2), and
the camera helpers several nodes share: any encoding as RGB, JPEG/PNG encoding, pinhole CameraInfo.

Supports the encodings the graph uses: rgb8, bgr8, rgba8, bgra8, mono8, mono16 (and 8UC1/8UC3/16UC1 aliases).
"""
from __future__ import annotations

import math
import sys
from typing import Any, Callable

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

_ENCODINGS = {
    "rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "rgba8": (np.uint8, 4), "bgra8": (np.uint8, 4),
    "mono8": (np.uint8, 1), "8UC1": (np.uint8, 1), "8UC3": (np.uint8, 3), "mono16": (np.uint16, 1),
    "16UC1": (np.uint16, 1),
}


class ImageConversionError(ValueError):
    """An Image message that cannot be read as the encoding it claims."""


def image_to_numpy(msg: Image) -> np.ndarray:
    """HxWxC (or HxW for one channel) array viewing the message's data; raises ImageConversionError if the
    encoding is unknown or the sizes don't add up."""
    if msg.encoding not in _ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding '{msg.encoding}' (supported: "
                                   f"{', '.join(sorted(_ENCODINGS))})")
    dtype, channels = _ENCODINGS[msg.encoding]
    itemsize = np.dtype(dtype).itemsize
    row_bytes = msg.width * channels * itemsize
    if msg.height == 0 or msg.width == 0:
        raise ImageConversionError(f"empty image ({msg.width}x{msg.height})")
    if msg.step < row_bytes:
        raise ImageConversionError(f"step {msg.step} is smaller than a {msg.width}-pixel {msg.encoding} row "
                                   f"({row_bytes} bytes)")
    data = np.frombuffer(msg.data, dtype=np.uint8)   # rclpy gives array.array('B'): no copy
    if data.size != msg.step * msg.height:
        raise ImageConversionError(f"data has {data.size} bytes, expected step*height = {msg.step * msg.height}")
    rows = data.reshape(msg.height, msg.step)[:, :row_bytes]
    if itemsize > 1:
        wire = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
        array = np.ascontiguousarray(rows).view(wire).astype(dtype).reshape(msg.height, msg.width, channels)
    else:
        array = rows.reshape(msg.height, msg.width, channels)
    return array[:, :, 0] if channels == 1 else array


def numpy_to_image(array: np.ndarray, encoding: str, header=None) -> Image:
    """An Image message holding a copy of ``array`` (HxW or HxWxC) in ``encoding``."""
    if encoding not in _ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding '{encoding}'")
    dtype, channels = _ENCODINGS[encoding]
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] != channels:
        raise ImageConversionError(f"array of shape {array.shape} does not fit encoding '{encoding}' "
                                   f"({channels} channel(s))")
    if array.dtype != dtype:
        raise ImageConversionError(f"array dtype {array.dtype} does not fit encoding '{encoding}' ({np.dtype(dtype)})")
    array = np.ascontiguousarray(array)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == "big" and array.dtype.itemsize > 1)
    msg.step = int(array.shape[1] * channels * array.dtype.itemsize)
    msg.data = array.tobytes()
    return msg


def camera_info_from_fov(width: int, height: int, fov_deg: float) -> CameraInfo:
    """A pinhole CameraInfo without distortion for a horizontal field of view."""
    fx = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.d = [0.0] * 5
    info.k = [fx, 0.0, cx, 0.0, fx, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fx, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def scaled_camera_info(info: CameraInfo, width: int, height: int) -> CameraInfo:
    """``info`` for the same camera resized to width x height."""
    sx, sy = width / float(info.width), height / float(info.height)
    out = CameraInfo(width=width, height=height, distortion_model=info.distortion_model)
    out.d = list(info.d)
    k, p = list(info.k), list(info.p)
    k[0], k[2], k[4], k[5] = k[0] * sx, k[2] * sx, k[4] * sy, k[5] * sy
    p[0], p[2], p[5], p[6] = p[0] * sx, p[2] * sx, p[5] * sy, p[6] * sy
    out.k, out.r, out.p = k, list(info.r), p
    return out


# The encodings an RGB consumer (gesture, tracker, face_auth, the image relays) takes, and how: channel order.
_AS_RGB = {"rgb8": slice(0, 3), "8UC3": slice(0, 3), "rgba8": slice(0, 3), "bgr8": slice(2, None, -1),
           "bgra8": slice(2, None, -1), "mono8": None, "8UC1": None}


def check_rgb_frame(msg: Image) -> None:
    """Raises ImageConversionError, with the reason, for a frame ``to_rgb`` cannot convert. Cheap: no pixel is
    read, so a subscription callback can check every frame before a worker takes the newest."""
    if msg.encoding not in _AS_RGB:
        raise ImageConversionError(f"cannot convert '{msg.encoding}' images to RGB (use one of "
                                   f"{', '.join(_AS_RGB)})")
    image_to_numpy(msg)


def to_rgb(msg: Image) -> np.ndarray:
    """An Image of any 8-bit encoding as a contiguous HxWx3 uint8 RGB array (a view of the message where it can)."""
    check_rgb_frame(msg)
    array = image_to_numpy(msg)
    channels = _AS_RGB[msg.encoding]
    rgb = np.repeat(array[:, :, None], 3, axis=2) if channels is None else array[:, :, channels]
    return np.ascontiguousarray(rgb)


class CameraFrames:
    """The camera subscription's callback of a node that works on the newest frame: a frame that cannot be read as
    RGB is reported at once with the reason (a newest-frame worker would drop it unseen when the next came first)
    and counted in ``bad``; the others go to ``accept``."""

    def __init__(self, node, accept: Callable[[Image], Any]):
        self.node, self.accept = node, accept
        self.bad = 0

    def __call__(self, msg: Image) -> None:
        try:
            check_rgb_frame(msg)
        except ImageConversionError as exc:
            self.bad += 1
            self.node.get_logger().error(f"ignored a camera frame: {exc}", throttle_duration_sec=5.0)
            return
        self.accept(msg)


def encode_image(msg: Image, image_format: str = "jpeg", jpeg_quality: int = 80,
                 max_width: int = 0) -> tuple[bytes, int, int]:
    """(JPEG or PNG bytes, width, height) of an Image of any supported encoding (also the Foxglove bridge's);
    ``max_width`` > 0: a wider image is scaled down to that width first, keeping its aspect ratio."""
    import cv2
    rgb = to_rgb(msg)
    if 0 < max_width < rgb.shape[1]:
        height = max(1, round(rgb.shape[0] * max_width / rgb.shape[1]))
        rgb = cv2.resize(rgb, (max_width, height), interpolation=cv2.INTER_AREA)
    options = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpeg_quality)] if image_format == "jpeg" else []
    ok, data = cv2.imencode(".jpg" if image_format == "jpeg" else ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            options)
    if not ok:
        raise ImageConversionError(f"{image_format} encoding of a {rgb.shape[1]}x{rgb.shape[0]} frame failed")
    return data.tobytes(), rgb.shape[1], rgb.shape[0]
