"""Per-frame detect + track time of the tracker's two detector paths, and identity keeping on real video.

    python bench/tracking.py                      # this CPU
    python bench/tracking.py --device cuda:0      # the YOLO path on a GPU (the HOG path stays on the CPU)

YOLO path: ultralytics YOLO with the yolo11n architecture (``--weights`` a trained yolo11n.pt when there is one;
by default an untrained model built from ultralytics' yolo11n.yaml, which costs the same to run: the network is
identical, only NMS and tracking see fewer boxes) + ByteTrack, at 320 and 640 px inference size.
HOG path: OpenCV's HOG people detector + the same ByteTrack, which also gives the identity figure: id switches per
100 frames on vtest.avi (pedestrians, 768x576, Debian's opencv-doc), counted without ground truth by
core.tracking_metrics.proxy_id_switches. Frames are vtest.avi's, resized for each YOLO size's letterbox anyway.
Ends with one JSON line (units in the key names).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, percentile  # noqa: E402

from mmchat_ros.backends.detectors import (HogPeopleDetector, UltralyticsDetector,  # noqa: E402
                                           build_untrained_model)
from mmchat_ros.backends.tracking import MultiObjectTracker, track_frames, video_frames  # noqa: E402
from mmchat_ros.core.tracking_metrics import proxy_id_switches  # noqa: E402

VTEST_AVI = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def timing(label: str, run, warmup: int) -> dict:
    per_frame = run.per_frame_s[warmup:]
    mean = sum(per_frame) / len(per_frame)
    detect = sum(run.detect_s[warmup:]) / len(per_frame)
    print(f"{label:>28}: {1000 * mean:7.1f} ms/frame ({1 / mean:6.1f} fps), detect {1000 * detect:.1f} ms, "
          f"p50 {1000 * percentile(per_frame, 50):.1f} ms, p95 {1000 * percentile(per_frame, 95):.1f} ms, "
          f"{run.detections / len(run.frames):.1f} detections/frame", flush=True)
    return {"mean_s": mean, "p95_s": percentile(per_frame, 95)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100, help="vtest.avi frames per run (after --warmup)")
    parser.add_argument("--warmup", type=int, default=3, help="frames run first and not timed")
    parser.add_argument("--device", default="cpu", help="YOLO device: cpu, cuda:0, ...")
    parser.add_argument("--weights", default="", help="a yolo11n .pt (default: untrained yolo11n architecture)")
    parser.add_argument("--tracker", default="bytetrack", choices=["bytetrack", "botsort"])
    parser.add_argument("--hog-scale", type=float, default=1.1, help="HOG pyramid step")
    parser.add_argument("--skip-hog", action="store_true", help="only the YOLO path (e.g. on a GPU machine)")
    args = parser.parse_args(argv)
    if not VTEST_AVI.is_file():
        print(f"{VTEST_AVI} is missing: apt-get install opencv-doc", file=sys.stderr)
        return 2
    if args.device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            print(f"--device {args.device}: CUDA is not available on this machine", file=sys.stderr)
            return 2
    frames = list(video_frames(VTEST_AVI, args.frames + args.warmup))
    height, width = frames[0].shape[:2]
    print(f"{len(frames)} frames of {VTEST_AVI.name} ({width}x{height}), {os.cpu_count()} CPUs, device "
          f"{args.device}, tracker {args.tracker}", flush=True)
    figures: dict = {"frames": args.frames, "video_width_px": width, "video_height_px": height,
                     "device": args.device, "tracker": args.tracker}

    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        weights = args.weights or str(build_untrained_model(Path(tmp) / "yolo11n.pt", "yolo11n.yaml"))
        figures["yolo_weights"] = "trained" if args.weights else "untrained yolo11n architecture"
        for size in (320, 640):
            detector = UltralyticsDetector(weights, image_size=size, device=args.device)
            tracker = MultiObjectTracker(args.tracker, frame_rate=10.0)
            result = timing(f"YOLO {size} px + {args.tracker}", track_frames(detector, tracker, frames), args.warmup)
            figures[f"yolo{size}_ms_per_frame"] = 1000 * result["mean_s"]
            figures[f"yolo{size}_p95_ms"] = 1000 * result["p95_s"]
            figures[f"yolo{size}_fps"] = 1.0 / result["mean_s"]

    if not args.skip_hog:
        detector = HogPeopleDetector(scale=args.hog_scale)
        tracker = MultiObjectTracker(args.tracker, frame_rate=10.0)
        run = track_frames(detector, tracker, frames)
        result = timing(f"HOG {width}x{height} + {args.tracker}", run, args.warmup)
        summary = proxy_id_switches(run.frames)
        print(f"{'identity (HOG, vtest.avi)':>28}: {summary.id_switches} id switches in {summary.frames} frames "
              f"({summary.relabels} relabels, {summary.fragment_relinks} re-numbered after a gap), "
              f"{summary.tracks} tracks, mean length {summary.mean_track_length_frames:.1f} frames", flush=True)
        figures.update({"hog_ms_per_frame": 1000 * result["mean_s"], "hog_p95_ms": 1000 * result["p95_s"],
                        "hog_fps": 1.0 / result["mean_s"], "identity_frames": summary.frames,
                        "hog_tracks": summary.tracks,
                        "hog_mean_track_length_frames": summary.mean_track_length_frames,
                        "id_switches_per_100_frames": summary.id_switches_per_100_frames})
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
