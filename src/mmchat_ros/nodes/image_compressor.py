"""image_compressor node: /camera/image_raw → JPEG (sensor_msgs/CompressedImage) on /camera/image_raw/compressed.

The camera stream that crosses the robot / ground link (docs/deployment.md); raw frames stay on the robot. At most ``max_rate_hz`` frames a second, each the newest one when the previous is done (LatestFrameWorker): a busy
CPU means fewer frames, never older ones. Frames keep their capture stamp. Published best effort, keep last 1
(core/topics.py): a frame lost on the link is not resent, so a lossy link shows fewer frames rather than late ones.
On such a link every lost IP packet loses its whole frame, so smaller frames (``max_width``, ``jpeg_quality``)
survive more often.
"""
from __future__ import annotations

import sys
import time

from sensor_msgs.msg import CompressedImage, Image

from mmchat_ros.core import topics
from mmchat_ros.nodes.base import LatestFrameWorker, MmchatNode
from mmchat_ros.nodes.common import Param, first_frame_line, run_node
from mmchat_ros.nodes.image_conversion import CameraFrames, ImageConversionError, encode_image

STATISTICS_PERIOD_S = 10.0

PARAMS = {
    "jpeg_quality": Param(70, "JPEG quality, 1..100 (lower: smaller frames, which a lossy link drops less often)",
                          value_range=(1, 100), live=True),
    "max_rate_hz": Param(15.0, "compress and publish at most this many frames per second, Hz",
                         value_range=(0.1, 60.0), live=True),
    "max_width": Param(640, "scale wider frames down to this width first, px, keeping the aspect ratio (0: as they "
                            "come)", value_range=(0, 4096), live=True),
}


class ImageCompressorNode(MmchatNode):
    def __init__(self):
        super().__init__("image_compressor", PARAMS, on_change=self.apply_parameters)
        self.compressed_pub = self.publish_to(topics.CAMERA_IMAGE_COMPRESSED, CompressedImage)
        self.worker = LatestFrameWorker(self, "compression", self.compress, min_period_s=1.0 / self.p.max_rate_hz)
        self.start_worker(self.worker)
        self.subscribe_to(topics.CAMERA_IMAGE, Image, CameraFrames(self, self.worker.offer))
        self.frames_done = 0
        self.bytes_done = 0
        self.busy_s = 0.0
        self.create_timer(STATISTICS_PERIOD_S, self.log_statistics)
        self.get_logger().info(f"image compressor ready: JPEG quality {self.p.jpeg_quality}, at most "
                               f"{self.p.max_rate_hz:g} Hz, {self.p.max_width or 'full'} px wide, on "
                               f"{self.compressed_pub.topic_name}")

    def apply_parameters(self, values: dict) -> None:
        self.worker.min_period_s = 1.0 / values["max_rate_hz"]

    def compress(self, msg: Image) -> None:
        start = time.monotonic()
        self.get_logger().info(first_frame_line(msg), once=True)
        try:
            data, _, _ = encode_image(msg, "jpeg", self.p.jpeg_quality, self.p.max_width)
        except ImageConversionError as exc:
            self.get_logger().error(f"ignored a camera frame: {exc}", throttle_duration_sec=5.0)
            return
        self.compressed_pub.publish(CompressedImage(header=msg.header, format="jpeg", data=data))
        self.frames_done += 1
        self.bytes_done += len(data)
        self.busy_s += time.monotonic() - start

    def log_statistics(self) -> None:
        done, self.frames_done = self.frames_done, 0
        sent, self.bytes_done = self.bytes_done, 0
        busy, self.busy_s = self.busy_s, 0.0
        if done:
            self.get_logger().info(f"{done / STATISTICS_PERIOD_S:.1f} frames/s, {sent / max(done, 1) / 1000:.1f} kB "
                                   f"each, {8e-6 * sent / STATISTICS_PERIOD_S:.2f} Mbit/s, "
                                   f"{1000 * busy / done:.1f} ms to compress one")


def main(args=None):
    return run_node(ImageCompressorNode, args)


if __name__ == "__main__":
    sys.exit(main())
