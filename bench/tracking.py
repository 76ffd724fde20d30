"""Per-frame detect + track time of the tracker's detector options, and what they find, on real video.

    python bench/tracking.py                      # this CPU
    python bench/tracking.py --device cuda:0      # the YOLO path on a GPU (the others stay on the CPU)
    python bench/tracking.py --skip-yolo          # only the people detectors with real weights (HOG, MediaPipe)

People detectors with real weights (HOG, MediaPipe's BlazePose person detector), each on every whole frame or
through tracking.RegionDetector (the whole frame every N frames, else regions around the tracks), + ByteTrack, on
two scenes made of vtest.avi (pedestrians, 768x576, 10 fps, Debian's opencv-doc):
  vtest  the video as it is: a surveillance view, people 80-150 px tall;
  near   its central 384x288 doubled to 640x480, as the camera node doubles the simulator's 320x240: people as
         tall as an operator a few metres from the drone (what follow and face_auth see).
For each option: ms per frame (wall clock: mean, p95; and the CPU time the process spent: all its threads), recall, boxes per frame, id switches. Recall is against a reference run
on the same frames, the slow and thorough HOG (OpenCV's default pyramid step 1.05, upscale 1.25 on vtest and 1.0 on
near) + ByteTrack: the share of its track boxes that the option's track boxes match (IoU >= 0.5) on the same frame.
Id switches are counted without ground truth by core.tracking_metrics.proxy_id_switches.
YOLO path: ultralytics YOLO with the yolo11n architecture (``--weights`` a trained yolo11n.pt when there is one;
by default an untrained model built from ultralytics' yolo11n.yaml, which costs the same to run) + ByteTrack, at
320 and 640 px: its time only (untrained weights find nothing).
Ends with one JSON line (units in the key names).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, percentile  # noqa: E402

from mmchat_ros.backends.detectors import (HogPeopleDetector, MediaPipePersonDetector,  # noqa: E402
                                           UltralyticsDetector, build_untrained_model)
from mmchat_ros.backends.tracking import MultiObjectTracker, TrackedRun, track_frames, video_frames  # noqa: E402
from mmchat_ros.core.tracking_metrics import greedy_match, iou_matrix, proxy_id_switches  # noqa: E402

VTEST_AVI = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
FRAME_RATE_HZ = 10.0      # vtest.avi's


@dataclass(frozen=True)
class Option:
    key: str                       # JSON key prefix
    label: str
    detector: Callable[[], object]
    full_frame_every: int = 1
    margin: float = 0.5


def hog(upscale: float, scale: float = 1.1) -> Callable[[], HogPeopleDetector]:
    return lambda: HogPeopleDetector(upscale=upscale, scale=scale)


# scene -> (reference, options); the first option of vtest is the bench's historical HOG figure (hog_* keys)
SCENES = {
    "vtest": (Option("reference", "HOG x1.25, step 1.05", hog(1.25, 1.05)), [
        Option("hog", "HOG x1", hog(1.0)),
        Option("hog_regions5", "HOG x1, regions, whole 1/5", hog(1.0), 5),
        Option("hog125_regions5", "HOG x1.25 step 1.05, regions, whole 1/5", hog(1.25, 1.05), 5),
        Option("mediapipe", "MediaPipe person", MediaPipePersonDetector),
    ]),
    "near": (Option("reference", "HOG x1, step 1.05", hog(1.0, 1.05)), [
        Option("hog0625", "HOG x0.625 (graph before)", hog(0.625)),
        Option("hog0625_regions5", "HOG x0.625, regions, whole 1/5", hog(0.625), 5),
        Option("hog075", "HOG x0.75", hog(0.75)),
        Option("hog075_regions3", "HOG x0.75, regions, whole 1/3", hog(0.75), 3),
        Option("hog075_regions5", "HOG x0.75, regions, whole 1/5", hog(0.75), 5),
        Option("hog1_regions5", "HOG x1 step 1.05, regions, whole 1/5", hog(1.0, 1.05), 5),
        Option("mediapipe", "MediaPipe person", MediaPipePersonDetector),
        Option("mediapipe_regions5", "MediaPipe person, regions, whole 1/5", MediaPipePersonDetector, 5),
    ]),
}


def near_view(frame):
    """vtest's central 384x288 doubled to 640x480."""
    import cv2
    h, w = frame.shape[:2]
    return cv2.resize(frame[h // 4:h - h // 4, w // 4:w - w // 4], (640, 480), interpolation=cv2.INTER_LINEAR)


def recall(reference: TrackedRun, run: TrackedRun) -> float:
    """Share of the reference's track boxes matched (IoU >= 0.5, one to one) by the run's on the same frame."""
    boxes = sum(len(frame) for frame in reference.frames)
    matched = sum(len(greedy_match(iou_matrix(list(ref.values()), list(got.values())), 0.5))
                  for ref, got in zip(reference.frames, run.frames))
    return matched / boxes if boxes else float("nan")


def timing(label: str, run: TrackedRun, warmup: int) -> dict:
    per_frame = run.per_frame_s[warmup:]
    mean = sum(per_frame) / len(per_frame)
    detect = sum(run.detect_s[warmup:]) / len(per_frame)
    print(f"{label:>36}: {1000 * mean:7.1f} ms/frame ({1 / mean:6.1f} fps), detect {1000 * detect:.1f} ms, "
          f"p50 {1000 * percentile(per_frame, 50):.1f} ms, p95 {1000 * percentile(per_frame, 95):.1f} ms, "
          f"{run.detections / len(run.frames):.1f} detections/frame", flush=True)
    return {"mean_s": mean, "p95_s": percentile(per_frame, 95)}


def run_option(option: Option, frames, tracker_kind: str) -> TrackedRun:
    tracker = MultiObjectTracker(tracker_kind, frame_rate=FRAME_RATE_HZ)
    return track_frames(option.detector(), tracker, frames, option.full_frame_every, option.margin)


def compare_scene(scene: str, frames, args) -> dict:
    """The scene's table (printed) and its figures, keys '<scene>_<option>_<figure>'."""
    reference_option, options = SCENES[scene]
    height, width = frames[0].shape[:2]
    reference = run_option(reference_option, frames, args.tracker)
    rows, figures = [], {}
    for option in [reference_option] + options:
        run = reference if option is reference_option else run_option(option, frames, args.tracker)
        per_frame = run.per_frame_s[args.warmup:]
        mean = sum(per_frame) / len(per_frame)
        identity = proxy_id_switches(run.frames)
        cpu = run.cpu_s[args.warmup:]
        row = {"ms_per_frame": 1000 * mean, "p95_ms": 1000 * percentile(per_frame, 95), "fps": 1 / mean,
               "cpu_ms_per_frame": 1000 * sum(cpu) / len(cpu),
               "recall": recall(reference, run), "boxes_per_frame": sum(map(len, run.frames)) / len(run.frames),
               "id_switches": identity.id_switches, "id_switches_per_100_frames": identity.id_switches_per_100_frames,
               "tracks": identity.tracks, "mean_track_length_frames": identity.mean_track_length_frames}
        rows.append((option.label, row))
        figures.update({f"{scene}_{option.key}_{name}": value for name, value in row.items()})
    print(f"\n{scene}: {len(frames) - args.warmup} frames of {width}x{height} (+{args.warmup} warm-up, not timed), "
          f"{args.tracker}; recall "
          f"against '{reference_option.label}'")
    print(f"| {'option':36} | ms/frame | p95 ms | fps  | CPU ms/frame | recall | boxes/frame | id switches | tracks |")
    print(f"|{'-' * 38}|---------:|-------:|-----:|-------------:|-------:|------------:|------------:|-------:|")
    for label, row in rows:
        print(f"| {label:36} | {row['ms_per_frame']:8.1f} | {row['p95_ms']:6.1f} | {row['fps']:4.1f} | "
              f"{row['cpu_ms_per_frame']:12.1f} | "
              f"{row['recall']:6.3f} | {row['boxes_per_frame']:11.1f} | {row['id_switches']:11d} | "
              f"{row['tracks']:6d} |", flush=True)
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100, help="vtest.avi frames per run (after --warmup)")
    parser.add_argument("--warmup", type=int, default=3, help="frames run first and not timed")
    parser.add_argument("--device", default="cpu", help="YOLO device: cpu, cuda:0, ...")
    parser.add_argument("--weights", default="", help="a yolo11n .pt (default: untrained yolo11n architecture)")
    parser.add_argument("--tracker", default="bytetrack", choices=["bytetrack", "botsort"])
    parser.add_argument("--skip-yolo", action="store_true", help="only the people detectors with real weights")
    parser.add_argument("--skip-people", action="store_true", help="only the YOLO path (e.g. on a GPU machine)")
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
    load = os.getloadavg()[0]
    print(f"{len(frames)} frames of {VTEST_AVI.name} ({width}x{height}), {os.cpu_count()} CPUs, load {load:.2f}, "
          f"device {args.device}, tracker {args.tracker}", flush=True)
    figures: dict = {"frames": args.frames, "video_width_px": width, "video_height_px": height,
                     "device": args.device, "tracker": args.tracker, "load_average_1min_start": load}

    if not args.skip_yolo:
        with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
            weights = args.weights or str(build_untrained_model(Path(tmp) / "yolo11n.pt", "yolo11n.yaml"))
            figures["yolo_weights"] = "trained" if args.weights else "untrained yolo11n architecture"
            for size in (320, 640):
                detector = UltralyticsDetector(weights, image_size=size, device=args.device)
                tracker = MultiObjectTracker(args.tracker, frame_rate=FRAME_RATE_HZ)
                result = timing(f"YOLO {size} px + {args.tracker}", track_frames(detector, tracker, frames),
                                args.warmup)
                figures[f"yolo{size}_ms_per_frame"] = 1000 * result["mean_s"]
                figures[f"yolo{size}_p95_ms"] = 1000 * result["p95_s"]
                figures[f"yolo{size}_fps"] = 1.0 / result["mean_s"]

    if not args.skip_people:
        figures.update(compare_scene("vtest", frames, args))
        figures.update(compare_scene("near", [near_view(f) for f in frames], args))
        # the historical keys: HOG x1 on the whole vtest frame
        figures.update({old: figures[f"vtest_hog_{new}"] for old, new in (
            ("hog_ms_per_frame", "ms_per_frame"), ("hog_p95_ms", "p95_ms"), ("hog_fps", "fps"),
            ("hog_tracks", "tracks"), ("hog_mean_track_length_frames", "mean_track_length_frames"),
            ("id_switches_per_100_frames", "id_switches_per_100_frames"))})
        figures["identity_frames"] = len(frames)
    figures["load_average_1min_end"] = os.getloadavg()[0]
    print(f"load average (1 min) at the end: {figures['load_average_1min_end']:.2f}")
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
