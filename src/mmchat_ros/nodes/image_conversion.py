"""sensor_msgs/Image <-> numpy, without cv_bridge (PyPI's cv-bridge is the ROS 1 code and breaks on numpy 2).

Supports the encodings the graph uses: rgb8, bgr8, rgba8, bgra8, mono8, mono16 (and 8UC1/8UC3/16UC1 aliases).
"""
from __future__ import annotations

import sys

import numpy as np
from sensor_msgs.msg import Image

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
