import numpy as np
import pytest
from sensor_msgs.msg import Image

from mmchat_ros.nodes.image_conversion import (CameraFrames, ImageConversionError, check_rgb_frame, encode_image,
                                              image_to_numpy, numpy_to_image, to_rgb)


@pytest.mark.parametrize("encoding,shape,dtype", [("rgb8", (4, 5, 3), np.uint8), ("bgra8", (3, 2, 4), np.uint8),
                                                  ("mono8", (6, 7), np.uint8), ("mono16", (2, 3), np.uint16)])
def test_round_trip(encoding, shape, dtype):
    rng = np.random.default_rng(1)
    array = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    msg = numpy_to_image(array, encoding)
    assert (msg.height, msg.width, msg.encoding) == (shape[0], shape[1], encoding)
    back = image_to_numpy(msg)
    assert back.dtype == dtype and np.array_equal(back, array)


def test_padded_rows_and_big_endian():
    array = np.arange(12, dtype=np.uint16).reshape(2, 6)
    msg = Image(height=2, width=6, encoding="mono16", is_bigendian=1, step=16)
    rows = [array[r].astype(">u2").tobytes() + b"\xff\xff\xff\xff" for r in range(2)]
    msg.data = b"".join(rows)
    assert np.array_equal(image_to_numpy(msg), array)


@pytest.mark.parametrize("mutate,message", [
    (lambda m: setattr(m, "encoding", "yuv422"), "unsupported image encoding 'yuv422'"),
    (lambda m: setattr(m, "step", 2), "step 2 is smaller"),
    (lambda m: setattr(m, "data", bytes(5)), "data has 5 bytes"),
    (lambda m: setattr(m, "height", 0), "empty image"),
])
def test_malformed_images_raise_clear_errors(mutate, message):
    msg = numpy_to_image(np.zeros((2, 2, 3), np.uint8), "rgb8")
    mutate(msg)
    with pytest.raises(ImageConversionError, match=message):
        image_to_numpy(msg)


def test_wrong_array_for_encoding():
    with pytest.raises(ImageConversionError, match="does not fit encoding 'rgb8'"):
        numpy_to_image(np.zeros((2, 2), np.uint8), "rgb8")
    with pytest.raises(ImageConversionError, match="dtype float64"):
        numpy_to_image(np.zeros((2, 2, 3)), "rgb8")


def test_encode_image_scales_wider_frames_down_to_max_width():
    import cv2
    msg = numpy_to_image(np.full((480, 640, 3), (0, 0, 255), np.uint8), "rgb8")
    jpeg, width, height = encode_image(msg, "jpeg", 80, max_width=320)
    assert (width, height) == (320, 240)
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (240, 320, 3) and decoded[120, 160, 0] > 240    # blue (BGR) kept
    assert encode_image(msg, "jpeg", 80, max_width=1000)[1:] == (640, 480)  # never scaled up
    assert encode_image(msg, "png")[1:] == (640, 480)                        # 0: as it comes


def test_every_8_bit_encoding_becomes_contiguous_rgb_and_others_are_refused_by_name():
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    alpha = np.zeros((4, 5, 1), np.uint8)
    for array, encoding in ((rgb, "rgb8"), (rgb[:, :, ::-1], "bgr8"), (np.dstack([rgb, alpha]), "rgba8"),
                            (np.dstack([rgb[:, :, ::-1], alpha]), "bgra8")):
        converted = to_rgb(numpy_to_image(np.ascontiguousarray(array), encoding))
        assert np.array_equal(converted, rgb) and converted.flags.c_contiguous, encoding
    grey = to_rgb(numpy_to_image(rgb[:, :, 0].copy(), "mono8"))
    assert grey.shape == (4, 5, 3) and np.array_equal(grey[:, :, 2], rgb[:, :, 0])
    with pytest.raises(ImageConversionError, match="cannot convert 'mono16' images to RGB"):
        to_rgb(numpy_to_image(np.zeros((4, 5), np.uint16), "mono16"))
    truncated = numpy_to_image(rgb, "rgb8")
    truncated.data = bytes(7)
    with pytest.raises(ImageConversionError, match="data has 7 bytes"):
        check_rgb_frame(truncated)


def test_camera_frames_report_a_bad_frame_at_once_and_pass_the_others_on():
    errors, accepted = [], []

    class Logger:
        def error(self, text, **_):
            errors.append(text)

    class Node:
        def get_logger(self):
            return Logger()
    frames = CameraFrames(Node(), accepted.append)
    good = numpy_to_image(np.zeros((2, 2, 3), np.uint8), "bgr8")
    frames(good)
    frames(Image(height=2, width=2, encoding="yuv422", step=4, data=bytes(8)))
    assert accepted == [good] and frames.bad == 1
    assert errors == ["ignored a camera frame: cannot convert 'yuv422' images to RGB (use one of rgb8, 8UC3, rgba8, "
                      "bgr8, bgra8, mono8, 8UC1)"]
