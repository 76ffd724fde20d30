#!/usr/bin/env python3
"""Recording, replay and live-view costs: bag writing throughput (640x480 rgb8 frames through the rosbags MCAP
writer), replay timing (a 30 Hz camera bag played by BagPlayer and received over DDS: each message's lateness
against its recorded spacing) and the per-frame JPEG encoding the panel and the Foxglove bridge pay.

    python bench/observe.py [--frames 150]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, percentile  # noqa: E402

from mmchat_ros.core.rosenv import apply_to_current_process  # noqa: E402


def camera_frames(count: int, width: int, height: int):
    import cv2
    import numpy as np
    photo = cv2.imread("/usr/share/doc/opencv-doc/examples/data/messi5.jpg", cv2.IMREAD_COLOR)
    if photo is None:
        photo = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    rgb = cv2.cvtColor(cv2.resize(photo, (width, height)), cv2.COLOR_BGR2RGB)
    return [np.roll(rgb, 4 * i, axis=1) for i in range(count)]     # frames that differ, like a moving camera


def bench_writing(frames, folder: Path) -> dict:
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer

    from mmchat_ros.core.bag_topics import make_typestore
    from mmchat_ros.nodes.image_conversion import numpy_to_image
    store = make_typestore()
    payloads = [serialize_message(numpy_to_image(frame, "rgb8")) for frame in frames]
    start = time.perf_counter()
    with Writer(folder / "write_bench", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store)
        for i, data in enumerate(payloads):
            writer.write(conn, 1_000_000_000 + i * 33_333_333, data)
    elapsed = time.perf_counter() - start
    size = sum(len(p) for p in payloads)
    return {"bag_write_640x480_MB_per_s": size / elapsed / 1e6, "bag_write_640x480_frames_per_s": len(payloads) / elapsed}


def bench_replay(frames, folder: Path, rate_hz: float = 30.0) -> dict:
    """Play a bag of 320x240 frames recorded at rate_hz; lateness = arrival - (first arrival + recorded offset)."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from sensor_msgs.msg import Image

    from mmchat_ros.core.bag_topics import make_typestore
    from mmchat_ros.nodes.common import SENSOR_QOS
    from mmchat_ros.nodes.image_conversion import numpy_to_image
    from mmchat_ros.tools.player import BagPlayer
    from mmchat_ros.tools.ros_client import RosClient
    bag = folder / "replay_bench"
    period_ns = int(1e9 / rate_hz)
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/bench/camera", "sensor_msgs/msg/Image", typestore=make_typestore())
        for i, frame in enumerate(frames):
            msg = numpy_to_image(frame, "rgb8")
            msg.header.frame_id = str(i)
            writer.write(conn, 1_000_000_000 + i * period_ns, serialize_message(msg))
    ros = RosClient(domain_id=90 + os.getpid() % 10, name="bench_observe")
    try:
        arrivals: dict[int, float] = {}
        done = threading.Event()

        def on_image(msg):
            arrivals[int(msg.header.frame_id)] = time.monotonic()
            if len(arrivals) == len(frames):
                done.set()
        ros.node.create_subscription(Image, "/bench/camera", on_image, SENSOR_QOS)
        player = BagPlayer(ros.node, bag, progress=lambda _line: None, progress_period_s=0)
        player.wait_for_subscribers(["/bench/camera"], 20)
        time.sleep(0.5)
        player.play_once()
        done.wait(5)
        player.close()
    finally:
        ros.close()
    received = sorted(arrivals)
    base = arrivals[received[0]] - received[0] / rate_hz
    lateness = [1000 * (arrivals[i] - base - i / rate_hz) for i in received]
    offset = min(lateness)
    lateness = [v - offset for v in lateness]
    return {"replay_30hz_frames_received": len(received), "replay_30hz_frames_sent": len(frames),
            "replay_lateness_p50_ms": percentile(lateness, 50), "replay_lateness_p95_ms": percentile(lateness, 95),
            "replay_lateness_max_ms": max(lateness)}


def bench_jpeg(frames) -> dict:
    from mmchat_ros.nodes.image_conversion import encode_image, numpy_to_image
    figures = {}
    for width, height in ((320, 240), (640, 480)):
        import cv2
        times, sizes = [], []
        for frame in frames[:60]:
            msg = numpy_to_image(cv2.resize(frame, (width, height)), "rgb8")
            start = time.perf_counter()
            data, _, _ = encode_image(msg, "jpeg", 75)
            times.append(1000 * (time.perf_counter() - start))
            sizes.append(len(data))
        figures[f"jpeg_encode_{width}x{height}_p50_ms"] = percentile(times, 50)
        figures[f"jpeg_{width}x{height}_kB"] = percentile(sizes, 50) / 1000
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()
    apply_to_current_process()
    figures = {}
    with tempfile.TemporaryDirectory(prefix="mmchat-bench-") as tmp:
        figures.update(bench_writing(camera_frames(args.frames, 640, 480), Path(tmp)))
        small = camera_frames(args.frames, 320, 240)
        figures.update(bench_replay(small, Path(tmp)))
        figures.update(bench_jpeg(small))
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
