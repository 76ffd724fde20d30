"""The image compressor node as a real process over DDS: camera frames in at 30 Hz, JPEG out at most max_rate_hz,
scaled to max_width, with the frames' capture stamps, on the compressed topic's QoS (best effort, keep last 1); a
live change of the rate applies at once."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import CompressedImage, Image

from mmchat_ros.core import topics
from mmchat_ros.nodes.common import SENSOR_QOS, stamp_to_seconds, topic_qos
from mmchat_ros.nodes.image_conversion import numpy_to_image
from tests.helpers.flight import ros_args
from tests.helpers.processes import python_cmd


def rate_between(received: list, start: float, end: float) -> float:
    return sum(start <= t < end for t, _ in list(received)) / (end - start)


def test_frames_are_compressed_scaled_stamped_and_rate_capped(spawn, ros):
    compressed = ros.collect(CompressedImage, topics.CAMERA_IMAGE_COMPRESSED.name,
                             topic_qos(topics.CAMERA_IMAGE_COMPRESSED))
    node = spawn(python_cmd("mmchat_ros.nodes.image_compressor",
                            *ros_args({"max_rate_hz": 10.0, "max_width": 320, "jpeg_quality": 60})),
                 name="image_compressor")
    node.wait_for_line("image compressor ready", timeout=30)
    camera_pub = ros.node.create_publisher(Image, topics.CAMERA_IMAGE.name, SENSOR_QOS)
    ros.wait_for_subscribers(camera_pub, timeout=15)
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 320:] = (0, 0, 255)            # left half black, right half blue
    sent_stamps: list[float] = []
    stop = threading.Event()

    def camera():                            # 30 Hz, as the camera node publishes
        while not stop.is_set():
            msg = numpy_to_image(frame, "rgb8")
            msg.header.stamp = ros.node.get_clock().now().to_msg()
            sent_stamps.append(stamp_to_seconds(msg.header.stamp))
            camera_pub.publish(msg)
            time.sleep(1 / 30)

    thread = threading.Thread(target=camera, daemon=True)
    thread.start()
    try:
        ros.wait_for(lambda: len(compressed) >= 5, 15, "compressed frames")
        start = time.monotonic()
        time.sleep(3.0)
        capped_fps = rate_between(compressed, start, time.monotonic())
        ros.call(SetParameters, "/image_compressor/set_parameters", SetParameters.Request(parameters=[
            Parameter(name="max_rate_hz", value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                               double_value=4.0))]))
        time.sleep(0.5)
        start = time.monotonic()
        time.sleep(3.0)
        slower_fps = rate_between(compressed, start, time.monotonic())
    finally:
        stop.set()
        thread.join()
    print(f"\n[image compressor] 30 Hz in: {capped_fps:.1f} frames/s out at max_rate_hz 10, {slower_fps:.1f} at 4; "
          f"{len(compressed[-1][1].data)} bytes a frame")
    assert 7.0 <= capped_fps <= 10.5
    assert 3.0 <= slower_fps <= 4.3
    for _, msg in list(compressed)[-5:]:
        assert msg.format == "jpeg"
        assert stamp_to_seconds(msg.header.stamp) in sent_stamps
        bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
        assert bgr.shape == (240, 320, 3)                       # scaled to max_width, aspect kept
        assert bgr[120, 80].max() < 30 and bgr[120, 240, 0] > 200   # black left, blue right (BGR)
    assert node.alive()
