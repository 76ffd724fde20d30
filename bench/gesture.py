#!/usr/bin/env python3
"""Gesture pipeline figures at 640x480 and 30 fps on this machine, on frames of real hands (tests/helpers/hands.py:
OpenCV's hand photos, fingers folded into gestures, swiped across the frame):

1. per frame, in this process: MediaPipe Hands (tracking mode, as the gesture node runs it) and the classifier
   (features, smoothing, swipes) — p50/p95 in ms;
2. the idle rate's price and saving, in this process on frame time: hands appearing after 2-3 s without one,
   processed as the gesture node's IdleFrameGate lets frames through (``idle_rate_hz`` 0 = every frame, then the
   node's default): the delay from the hand's first frame to its first stable gesture (what teleop acts on), and
   the CPU time MediaPipe takes per second of video without a hand, once ``idle_after_s`` has passed;
3. end to end, real processes over DDS: camera (folder source, 30 Hz) → gesture → teleop; the latency from a
   frame's capture stamp to the velocity command it causes arriving on /cmd_vel/teleop (teleop stamps each
   command with its frame's capture stamp), and to its /gesture message.

    python bench/gesture.py [--seconds 20] [--rate 30] [--model-complexity 0|1] [--max-num-hands 1] [--niceness N]

Target: latency p95 <= 60 ms. The last line is one JSON object (units in the key names); it records the machine's
load average too, since other work on a shared machine dominates the tails.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, emit, percentile  # noqa: E402

sys.path.insert(0, str(ROOT))
import cv2  # noqa: E402

from mmchat_ros.core.stage_timings import parse_summary  # noqa: E402
from mmchat_ros.nodes.gesture import PARAMS as GESTURE_PARAMS  # noqa: E402
from tests.helpers import hands as photos  # noqa: E402

WIDTH, HEIGHT = 640, 480


def gesture_sequence() -> list:
    """About 12 s of video at 30 fps: held gestures, swipes, and moments without a hand."""
    frames = []
    for gesture in ("open_palm", "thumbs_up", "pointing_up", "thumb_left", "victory", "pointing_down", "fist"):
        frames += [photos.shot(gesture, width=WIDTH, height=HEIGHT)] * 30
        frames += [photos.empty_frame(WIDTH, HEIGHT)] * 8
    for direction in ("right", "left", "up", "down"):
        frames += [photos.swipe_start_frame(direction, WIDTH, HEIGHT)] * 12
        frames += photos.swipe_frames(direction, 8, WIDTH, HEIGHT)
        frames += [photos.empty_frame(WIDTH, HEIGHT)] * 8
    return frames


def per_frame_times(frames, model_complexity: int, max_num_hands: int, rate: float) -> dict:
    from mmchat_ros.backends.hands import MediaPipeHands
    from mmchat_ros.core.gestures import GestureRecognizer
    detector = MediaPipeHands(static_image_mode=False, model_complexity=model_complexity, max_num_hands=max_num_hands)
    recognizer = GestureRecognizer()
    infer, classify, found = [], [], 0
    try:
        for i, frame in enumerate(frames * 2):
            t = i / rate
            start = time.perf_counter()
            hands = detector.detect(frame, t)
            detected = time.perf_counter()
            recognizer.update(t, hands, WIDTH / HEIGHT)
            done = time.perf_counter()
            if i >= 10:                       # the first frames warm the graph up
                infer.append((detected - start) * 1000.0)
                classify.append((done - detected) * 1000.0)
                found += bool(hands)
    finally:
        detector.close()
    return {"infer": infer, "classify": classify, "hand_fraction": found / len(infer)}


def first_sight(rate: float, model_complexity: int, max_num_hands: int, idle_rate_hz: float,
                idle_after_s: float) -> dict:
    """Hands appearing after 2-3 s without one, through the node's IdleFrameGate on frame time: per appearance the
    delay from the hand's first frame to the first stable gesture, and MediaPipe's CPU ms (this process's) per
    second of video without a hand once idle_after_s has passed."""
    from mmchat_ros.backends.hands import MediaPipeHands
    from mmchat_ros.core.gestures import GestureRecognizer
    from mmchat_ros.core.idle_frames import IdleFrameGate
    empty = photos.empty_frame(WIDTH, HEIGHT)
    detector = MediaPipeHands(static_image_mode=False, model_complexity=model_complexity, max_num_hands=max_num_hands)
    recognizer = GestureRecognizer()
    gate = IdleFrameGate(idle_rate_hz, idle_after_s)
    delays, empty_ms, empty_s = [], 0.0, 0.0
    i = 0
    try:
        for k, gesture in enumerate(("open_palm", "thumbs_up", "pointing_up", "thumb_left", "victory", "fist") * 2):
            empty_frames = int(rate * 2.0) + 7 * k % int(rate)     # the hand comes at every phase of the idle period
            hand = photos.shot(gesture, width=WIDTH, height=HEIGHT)
            appeared, stable_at = None, None
            for j, frame in enumerate([empty] * empty_frames + [hand] * int(rate * 1.5)):
                t = i / rate
                i += 1
                if j == empty_frames:
                    appeared = t
                if not gate.admit(t):
                    continue
                start = time.process_time()
                hands = detector.detect(frame, t)
                if idle_after_s * rate <= j < empty_frames and k > 0:     # the first stretch warms the graph up
                    empty_ms += (time.process_time() - start) * 1000.0
                gate.seen(bool(hands))
                result = recognizer.update(t, hands, WIDTH / HEIGHT)
                if appeared is not None and stable_at is None and result.stable and result.name == gesture:
                    stable_at = t
            if k > 0:
                empty_s += (empty_frames - math.ceil(idle_after_s * rate)) / rate
                delays.append(math.inf if stable_at is None else (stable_at - appeared) * 1000.0)
    finally:
        detector.close()
    return {"delays_ms": delays, "empty_mediapipe_cpu_ms_per_s": empty_ms / empty_s}


def end_to_end(frames, seconds: float, rate: float, model_complexity: int, max_num_hands: int,
               niceness: int | None) -> dict:
    from geometry_msgs.msg import TwistStamped

    from mmchat_ros.core.rosenv import ros_environment
    from mmchat_ros.msg import Gesture
    from mmchat_ros.nodes.common import COMMAND_QOS, stamp_to_seconds
    from mmchat_ros.tools.ros_client import RosClient
    from tests.helpers.flight import ros_args
    from tests.helpers.processes import NodeProcess, python_cmd

    work = Path(tempfile.mkdtemp(prefix="bench-gesture-"))
    folder = work / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    domain = 200 + os.getpid() % 30
    env = ros_environment(domain_id=domain, log_dir=str(work / "ros"))
    nodes = [
        ("camera", {"source": "folder", "path": str(folder), "rate_hz": rate, "width": WIDTH, "height": HEIGHT}),
        ("gesture", {"model_complexity": model_complexity, "max_num_hands": max_num_hands, "stats_period_s": 5.0,
                     **({} if niceness is None else {"niceness": niceness})}),
        ("teleop", {"require_flying": False}),
    ]
    processes = [NodeProcess(python_cmd(f"mmchat_ros.nodes.{name}", *ros_args(params)), env, work / f"{name}.log",
                             name=name) for name, params in nodes]
    ros = RosClient(domain, "bench_gesture")
    try:
        for process, ready in zip(processes, ("camera ready", "gesture recogniser ready", "teleop ready")):
            process.wait_for_line(ready, timeout=60)
        commands = ros.collect(TwistStamped, "/cmd_vel/teleop", "sensor")
        gestures = ros.collect(Gesture, "/gesture", COMMAND_QOS)
        ros.wait_for(lambda: len(commands) > 30, 60, "velocity commands")
        time.sleep(2.0)                                         # warm up
        wall_minus_monotonic = time.time() - time.monotonic()
        start = time.monotonic()
        time.sleep(seconds)
        window_commands = [(t, m) for t, m in list(commands) if t >= start]
        window_gestures = [(t, m) for t, m in list(gestures) if t >= start]
    finally:
        ros.close()
        for process in processes:
            process.stop()
        shutil.rmtree(folder, ignore_errors=True)               # the frames; the logs stay for inspection

    def latencies(received):
        return [(t + wall_minus_monotonic - stamp_to_seconds(m.header.stamp)) * 1000.0 for t, m in received]
    return {"command_latency": latencies(window_commands), "gesture_latency": latencies(window_gestures),
            "processed_fps": len(window_gestures) / seconds, "command_fps": len(window_commands) / seconds,
            "log_dir": str(work)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="end-to-end measurement time")
    parser.add_argument("--rate", type=float, default=30.0, help="camera frame rate, Hz")
    parser.add_argument("--model-complexity", type=int, default=GESTURE_PARAMS["model_complexity"].default,
                        choices=(0, 1), help="MediaPipe landmark model: 0 lite, 1 full (default: the node's)")
    parser.add_argument("--max-num-hands", type=int, default=1,
                        help="hands MediaPipe looks for (the node's default: 1)")
    parser.add_argument("--niceness", type=int, default=None,
                        help="the gesture node's niceness (default: the node's own, see config/gesture.yaml)")
    args = parser.parse_args()
    if not photos.photos_available():
        sys.exit("bench/gesture.py needs Debian's opencv-doc (real hand photos)")
    frames = gesture_sequence()
    print(f"{len(frames)} frames of real hands at {WIDTH}x{HEIGHT}", flush=True)
    local = per_frame_times(frames, args.model_complexity, args.max_num_hands, args.rate)
    print(f"per frame: MediaPipe p50 {percentile(local['infer'], 50):.1f} ms, p95 {percentile(local['infer'], 95):.1f}"
          f" ms; classifier p50 {percentile(local['classify'], 50):.3f} ms; hand found in "
          f"{100 * local['hand_fraction']:.0f} % of frames", flush=True)
    idle_hz, idle_after_s = GESTURE_PARAMS["idle_rate_hz"].default, GESTURE_PARAMS["idle_after_s"].default
    sight = {hz: first_sight(args.rate, args.model_complexity, args.max_num_hands, hz, idle_after_s)
             for hz in (0.0, idle_hz)}
    for hz, figures in sight.items():
        print(f"hand appearing after 2-3 s without one, idle_rate_hz {hz:g}: first stable gesture after p50 "
              f"{percentile(figures['delays_ms'], 50):.0f} / max {max(figures['delays_ms']):.0f} ms "
              f"({len(figures['delays_ms'])} appearances); no hand in view for {idle_after_s:g} s and more: "
              f"MediaPipe {figures['empty_mediapipe_cpu_ms_per_s']:.0f} ms of CPU per second", flush=True)
    e2e = end_to_end(frames, args.seconds, args.rate, args.model_complexity, args.max_num_hands, args.niceness)
    lat, glat = e2e["command_latency"], e2e["gesture_latency"]
    stage_lines = [line for line in (Path(e2e["log_dir"]) / "gesture.log").read_text(errors="replace").splitlines()
                   if parse_summary(line)]
    print("gesture node stages (its statistics lines):\n  " + "\n  ".join(stage_lines), flush=True)
    print(f"end to end at {args.rate:g} fps: capture stamp → velocity command p50 {percentile(lat, 50):.1f} ms, "
          f"p95 {percentile(lat, 95):.1f} ms (→ /gesture p50 {percentile(glat, 50):.1f} ms); gesture node processed "
          f"{e2e['processed_fps']:.1f} frames/s (logs: {e2e['log_dir']})", flush=True)
    emit({
        "load_average_1m": os.getloadavg()[0], "cpu_cores": os.cpu_count(),     # this machine is shared
        "width_px": WIDTH, "height_px": HEIGHT, "camera_rate_hz": args.rate, "model_complexity": args.model_complexity,
        "max_num_hands": args.max_num_hands, "niceness": args.niceness,
        "infer_ms_p50": percentile(local["infer"], 50), "infer_ms_p95": percentile(local["infer"], 95),
        "classify_ms_p50": percentile(local["classify"], 50), "classify_ms_p95": percentile(local["classify"], 95),
        "latency_p50_ms": percentile(lat, 50), "latency_p95_ms": percentile(lat, 95),
        "gesture_latency_p50_ms": percentile(glat, 50), "gesture_latency_p95_ms": percentile(glat, 95),
        "processed_fps": e2e["processed_fps"], "commands": len(lat),
        "idle_rate_hz": idle_hz, "idle_after_s": idle_after_s,
        "first_stable_ms_p50_every_frame": percentile(sight[0.0]["delays_ms"], 50),
        "first_stable_ms_max_every_frame": max(sight[0.0]["delays_ms"]),
        "first_stable_ms_p50_idle_rate": percentile(sight[idle_hz]["delays_ms"], 50),
        "first_stable_ms_max_idle_rate": max(sight[idle_hz]["delays_ms"]),
        "no_hand_mediapipe_cpu_ms_per_s_every_frame": sight[0.0]["empty_mediapipe_cpu_ms_per_s"],
        "no_hand_mediapipe_cpu_ms_per_s_idle_rate": sight[idle_hz]["empty_mediapipe_cpu_ms_per_s"],
        "latency_target_p95_ms": 60.0, "meets_target": bool(percentile(lat, 95) <= 60.0),
    })


if __name__ == "__main__":
    main()
