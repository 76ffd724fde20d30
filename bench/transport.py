#!/usr/bin/env python3
"""640x480 rgb8 images at 30 Hz between two processes: one-way latency with the shipped Fast DDS profile
(32 MB shared-memory segment) versus Fast DDS defaults, measured in the same run.

    python bench/transport.py [--frames 300] [--rate 30]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, percentile  # noqa: E402

from mmchat_ros.core.rosenv import ros_environment  # noqa: E402


def role_publisher(frames: int, rate: float, width: int, height: int) -> None:
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image

    from mmchat_ros.nodes.common import SENSOR_QOS
    rclpy.init()
    node = rclpy.create_node("bench_image_pub")
    pub = node.create_publisher(Image, "/bench/image", SENSOR_QOS)
    deadline = time.monotonic() + 20
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)   # let the subscriber's matching settle on both transports
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8).tobytes()
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3, data=pixels)
    period = 1.0 / rate
    next_t = time.monotonic()
    for i in range(frames):
        msg.header.frame_id = str(i)
        now_ns = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
        pub.publish(msg)
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))
    time.sleep(0.5)
    node.destroy_node()
    rclpy.shutdown()


def role_subscriber(frames: int, timeout: float) -> None:
    import rclpy
    from sensor_msgs.msg import Image

    from mmchat_ros.nodes.common import SENSOR_QOS
    rclpy.init()
    node = rclpy.create_node("bench_image_sub")
    latencies = []

    def on_image(msg):
        recv = time.time_ns()
        sent = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latencies.append((recv - sent) / 1e6)

    node.create_subscription(Image, "/bench/image", on_image, SENSOR_QOS)
    deadline = time.monotonic() + timeout
    while len(latencies) < frames and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(latencies), flush=True)
    node.destroy_node()
    rclpy.shutdown()


def measure(use_profile: bool, domain_id: int, frames: int, rate: float) -> tuple[list[float], int]:
    env = ros_environment(domain_id=domain_id, use_profile=use_profile)
    if not use_profile:
        env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    me = os.path.abspath(__file__)
    sub = subprocess.Popen([sys.executable, me, "--role", "sub", "--frames", str(frames)], env=env,
                           stdout=subprocess.PIPE, text=True)
    pub = subprocess.Popen([sys.executable, me, "--role", "pub", "--frames", str(frames), "--rate", str(rate)],
                           env=env)
    pub.wait(timeout=frames / rate + 60)
    out, _ = sub.communicate(timeout=60)
    latencies = json.loads(out.strip().splitlines()[-1])
    warm = latencies[10:]   # first frames include discovery and buffer allocation
    return warm, frames - len(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", choices=["pub", "sub"])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()
    if args.role == "pub":
        return role_publisher(args.frames, args.rate, args.width, args.height)
    if args.role == "sub":
        return role_subscriber(args.frames, timeout=args.frames / args.rate + 40)

    base_domain = 150 + os.getpid() % 50
    figures = {}
    for label, use_profile, domain in (("profile", True, base_domain), ("default", False, base_domain + 1)):
        lat, lost = measure(use_profile, domain, args.frames, args.rate)
        figures[f"p50_ms_{label}"] = percentile(lat, 50)
        figures[f"p95_ms_{label}"] = percentile(lat, 95)
        figures[f"max_ms_{label}"] = max(lat) if lat else float("nan")
        figures[f"lost_frames_{label}"] = lost
        print(f"{label:8s}: {len(lat)} frames 640x480 rgb8 @ {args.rate:.0f} Hz: p50 {figures[f'p50_ms_{label}']:.2f} ms, "
              f"p95 {figures[f'p95_ms_{label}']:.2f} ms, max {figures[f'max_ms_{label}']:.2f} ms, lost {lost}",
              flush=True)
    figures["speedup_p50_x"] = figures["p50_ms_default"] / figures["p50_ms_profile"]
    emit(figures)


if __name__ == "__main__":
    main()
