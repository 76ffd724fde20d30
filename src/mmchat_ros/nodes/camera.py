"""camera node: a V4L2 device, a video file, a folder of images or another camera topic → /camera/image_raw.

Publishes sensor_msgs/Image (rgb8) + CameraInfo with sensor-data QoS at ``rate_hz`` and ``width`` x ``height``,
stamped when the frame was captured. Capture runs in its own thread, a NodeThread rather than a PacedLoop: a camera
device or the relayed topic sets the pace (the thread blocks in its read) and a faster one is thinned; only files
and folders are paced here. A dead capture thread ends the node (exit status 1). A source that breaks (device
unplugged, corrupt or missing file) is logged once and reopened with back-off while the node stays up. With source
'topic' the node relays another camera (the simulator's onboard camera on ``input_topic``): each new input frame is
resized and republished once, at most at ``rate_hz``, keeping the input's capture stamp.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from mmchat_ros.backends.camera_sources import (PushedFrameSource, ReconnectingSource, fit_frame,
                                                make_source)
from mmchat_ros.core import topics
from mmchat_ros.nodes.base import MmchatNode, NodeThread
from mmchat_ros.nodes.common import SENSOR_QOS, Param, run_node, stamp_to_seconds
from mmchat_ros.nodes.image_conversion import (ImageConversionError, camera_info_from_fov,
                                                numpy_to_image, scaled_camera_info, to_rgb)
from mmchat_ros.nodes.scheduling import apply_niceness, niceness_param

SOURCES = ("device", "video", "folder", "topic")
PARAMS = {
    "source": Param("device", "where frames come from: 'device' (V4L2 camera), 'video' (a video file), 'folder' "
                              "(images in name order) or 'topic' (relay input_topic, e.g. the simulator's camera)"),
    "device_index": Param(0, "V4L2 device number N of /dev/videoN (source 'device')"),
    "path": Param("", "video file or image folder (sources 'video' and 'folder')"),
    "loop": Param(True, "start a video file or folder again at its end (false: stop publishing at the end)"),
    "rate_hz": Param(30.0, "publication rate, Hz (a faster source is thinned; a slower one sets the pace)"),
    "width": Param(640, "published image width, pixels (0 with height 0: the source's own size)"),
    "height": Param(480, "published image height, pixels (0 with width 0: the source's own size)"),
    "frame_id": Param("camera_optical", "frame_id of the published images (the camera's optical frame)"),
    "horizontal_fov_deg": Param(60.0, "horizontal field of view for CameraInfo when the source gives none, deg"),
    "input_topic": Param("sim/camera/image_raw", "camera topic relayed with source 'topic'"),
    "input_info_topic": Param("sim/camera/camera_info", "its CameraInfo (rescaled to the published size)"),
    "retry_initial_s": Param(0.5, "first wait before reopening a failed source, s (doubles on each failure)"),
    "retry_max_s": Param(5.0, "longest wait between attempts to reopen a failed source, s"),
    "niceness": niceness_param(-5, "every perception node waits for the camera's frames, the interactive hand → "
                                   "velocity path among them, so it goes before background work on a busy computer"),
}


class CameraNode(MmchatNode):
    def __init__(self):
        super().__init__("camera", PARAMS)
        apply_niceness(self, self.p.niceness)
        if self.p.source not in SOURCES:
            raise ValueError(f"source '{self.p.source}' is not one of {', '.join(SOURCES)}")
        if self.p.rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {self.p.rate_hz}")
        if (self.p.width > 0) != (self.p.height > 0) or self.p.width < 0 or self.p.height < 0:
            raise ValueError(f"width and height must both be > 0 or both 0, got {self.p.width}x{self.p.height}")
        source = make_source(self.p.source, device=self.p.device_index, path=self.p.path, loop=self.p.loop,
                             width=self.p.width, height=self.p.height, fps=self.p.rate_hz,
                             on_skip=lambda message: self.get_logger().warn(message))
        self.source = ReconnectingSource(source, self.on_source_event, self.p.retry_initial_s, self.p.retry_max_s)
        self.pushed = source if isinstance(source, PushedFrameSource) else None
        self.image_pub = self.publish_to(topics.CAMERA_IMAGE, Image)
        self.info_pub = self.publish_to(topics.CAMERA_INFO, CameraInfo)
        self.input_info: CameraInfo | None = None
        if self.pushed is not None:
            self.create_subscription(Image, self.p.input_topic, self.on_input_image, SENSOR_QOS)
            self.create_subscription(CameraInfo, self.p.input_info_topic, self.on_input_info, SENSOR_QOS)
        self.published = 0
        self.bad_inputs = 0
        self.start_worker(NodeThread(self, "capture", self.capture_loop,
                                     on_stop=self.pushed.wake if self.pushed is not None else None))
        size = f"{self.p.width}x{self.p.height}" if self.p.width else "source size"
        self.get_logger().info(f"camera ready: {self.source.description}, {size} at {self.p.rate_hz:g} Hz on "
                               f"{self.image_pub.topic_name}")

    # ------------------------------------------------------------------------------------------------ input
    def on_source_event(self, level: str, message: str) -> None:
        # One call site per severity: rclpy refuses a call site whose severity changes.
        if level == "error":
            self.get_logger().error(message)
        else:
            self.get_logger().info(message)

    def on_input_image(self, msg: Image) -> None:
        try:
            rgb = to_rgb(msg)
        except ImageConversionError as exc:
            self.bad_inputs += 1
            self.get_logger().error(f"ignored a frame from {self.p.input_topic}: {exc}", throttle_duration_sec=5.0)
            return
        # The input's capture stamp travels with the frame: a relay does not re-stamp what it did not capture
        # (an unstamped input gets the time it arrived).
        stamp = msg.header.stamp if stamp_to_seconds(msg.header.stamp) > 0 else self.get_clock().now().to_msg()
        self.pushed.push(rgb, stamp_to_seconds(stamp), stamp)

    def on_input_info(self, msg: CameraInfo) -> None:
        if msg.width > 0 and msg.height > 0:
            self.input_info = msg

    # ---------------------------------------------------------------------------------------------- capture
    def capture_loop(self, stopping: threading.Event) -> None:
        period = 1.0 / self.p.rate_hz
        next_slot = time.monotonic()
        while not stopping.is_set():
            if self.pushed is not None:
                self.pushed.wait(0.2)
                if stopping.is_set():
                    break
            elif not self.source.source.paced:
                delay = next_slot - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            frame = self.source.read()
            now = time.monotonic()
            if frame is None:
                if self.pushed is None:
                    # Nothing now (broken and waiting to retry, or ended): look again soon.
                    time.sleep(min(period, 0.05))
                    next_slot = time.monotonic()
                continue
            if now < next_slot - 0.25 * period:
                continue                    # faster than rate_hz: thin out
            next_slot = max(next_slot + period, now - period)
            # Stamped at capture: the relayed frame's own stamp, else the node clock as the source returned it.
            stamp = frame.origin_stamp if frame.origin_stamp is not None else self.get_clock().now().to_msg()
            try:
                self.publish(frame.rgb, stamp)
            except Exception as exc:   # a frame that cannot be converted must not end the capture thread
                self.get_logger().error(f"dropped a frame: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0)

    def publish(self, rgb: np.ndarray, stamp) -> None:
        rgb = fit_frame(np.ascontiguousarray(rgb), self.p.width, self.p.height)
        height, width = rgb.shape[:2]
        image = numpy_to_image(rgb, "rgb8")
        image.header.stamp = stamp
        image.header.frame_id = self.p.frame_id
        if self.input_info is not None:
            info = scaled_camera_info(self.input_info, width, height)
        else:
            info = camera_info_from_fov(width, height, self.p.horizontal_fov_deg)
        info.header = image.header
        self.image_pub.publish(image)
        self.info_pub.publish(info)
        self.published += 1
        if self.published == 1:
            self.get_logger().info(f"first frame published ({width}x{height})")

    def close(self) -> None:
        self.source.close()


def main(args=None):
    return run_node(CameraNode, args)


if __name__ == "__main__":
    sys.exit(main())
