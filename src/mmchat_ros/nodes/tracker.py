"""tracker node: object detection (ultralytics YOLO, OpenCV's HOG or MediaPipe's person detector) + tracking.

/camera/image_raw in (sensor_msgs/Image, sensor-data QoS); /detections out (mmchat_ros/msg/DetectionArray: class,
score, box and persistent track id; detections not yet confirmed by the tracker carry track_id -1) and
/detections/debug_image (the frame with boxes and ids drawn, published only while someone subscribes).

Tracking is ultralytics' own ByteTrack or BoT-SORT (parameter 'tracker') for any detector. Detection runs in a
worker thread of its own on the newest frame: frames arriving while it is busy are dropped, never queued. With
full_frame_every N > 1 the detector sees the whole frame only every N frames (newcomers are found then) and, on the
frames between, only regions around the objects it saw (backends/tracking.py RegionDetector): cheaper frames.
YOLO weights are a local file (default yolo11n.pt, looked up in the working directory and models_dir), or an
exported model (.onnx, *_openvino_model/, ...): nothing is downloaded unless allow_download is true; a missing file
stops the node with an error naming it and saying how to provide it.

A lifecycle node (nodes/lifecycle.py): configure loads the detector, activate subscribes to the camera and starts
detecting, deactivate stops both (no CPU spent, the model kept). max_rate_hz is live: the activation policy
(config/activation_policy.yaml) slows the tracker down while neither follow nor a question about the scene needs it.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from sensor_msgs.msg import Image

from mmchat_ros.backends.detectors import (DEFAULT_WEIGHTS, DetectorError, Detections, make_detector,
                                           parse_class_filter)
from mmchat_ros.backends.tracking import TRACKERS, MultiObjectTracker, RegionDetector, Track, draw_tracks
from mmchat_ros.core import topics
from mmchat_ros.msg import Detection, DetectionArray
from mmchat_ros.nodes.base import LatestFrameWorker
from mmchat_ros.nodes.common import Param, first_frame_line
from mmchat_ros.nodes.image_conversion import CameraFrames, numpy_to_image, to_rgb
from mmchat_ros.nodes.lifecycle import LIFECYCLE_PARAMS, MmchatLifecycleNode, run_lifecycle_node

PARAMS = {
    "detector": Param("yolo", "detector backend: 'yolo' (ultralytics YOLO, the weights below), 'hog' (OpenCV's "
                              "built-in HOG people detector: persons only, weights ship with OpenCV) or 'mediapipe' "
                              "(MediaPipe's BlazePose person detector, weights ship with mediapipe: persons within a "
                              "few metres only)"),
    "weights": Param(DEFAULT_WEIGHTS, "YOLO model: a .pt file or an exported model (.onnx file, *_openvino_model "
                                      "folder, .engine, .torchscript); relative paths are looked up in the working "
                                      "directory, then in models_dir"),
    "models_dir": Param("", "folder searched for a relative 'weights' path after the working directory"),
    "allow_download": Param(False, "let ultralytics download missing weights by name (robots with internet "
                                   "only); false = a missing file is an error"),
    "image_size": Param(640, "YOLO inference size, px (an exported model is fixed to its export size)"),
    "confidence": Param(0.25, "YOLO detection confidence threshold, 0..1"),
    "iou": Param(0.7, "YOLO non-maximum-suppression IoU threshold, 0..1"),
    "classes": Param("", "classes to keep, comma-separated names or ids (e.g. 'person' or '0,2'); empty = all"),
    "device": Param("cpu", "YOLO inference device: cpu, cuda:0, mps, ..."),
    "half": Param(False, "YOLO FP16 inference (CUDA only)"),
    "tracker": Param("bytetrack", "multi-object tracker: " + " or ".join(TRACKERS) + " (ultralytics' own)"),
    "tracker_config": Param("", "tracker YAML in ultralytics' format; empty = ultralytics' <tracker>.yaml"),
    "frame_rate": Param(15.0, "rate at which frames are processed, Hz: sizes the tracker's lost-track buffer"),
    "max_rate_hz": Param(0.0, "process at most this many frames per second; 0 = as fast as detection runs",
                         value_range=(0.0, 1000.0), live=True),
    "publish_debug_image": Param(True, "publish /detections/debug_image while it has subscribers"),
    "hog_upscale": Param(1.0, "HOG: enlarge frames by this factor first (people must be ~100 px tall to be found; "
                              "cost grows with its square)"),
    "hog_win_stride": Param(8, "HOG: detection window stride, px (multiple of 8; larger = faster, coarser)"),
    "hog_scale": Param(1.1, "HOG: image pyramid step (larger = faster, misses more sizes; OpenCV's default is 1.05)"),
    "hog_hit_threshold": Param(0.0, "HOG: SVM margin a window needs to count as a detection"),
    "hog_score_offset": Param(1.0, "HOG: SVM margin reported as score 0.5 (score = sigmoid(margin - offset))"),
    "mediapipe_min_score": Param(0.5, "mediapipe: detection score a person needs, 0..1"),
    "full_frame_every": Param(1, "detect on the whole frame every this many frames (newcomers are found then), on "
                                 "the frames between only in regions around the objects seen since; 1 = every "
                                 "frame whole", value_range=(1, 1000)),
    "region_margin": Param(0.5, "regions of interest: an object's expected box grown by this fraction of its size "
                                "on each side", value_range=(0.0, 4.0)),
    **LIFECYCLE_PARAMS,
}

def min_period(max_rate_hz: float) -> float:
    """The worker's shortest interval between frames for a max_rate_hz (0: no limit)."""
    return 1.0 / max_rate_hz if max_rate_hz > 0 else 0.0


def detections_to_msg(tracks: list[Track], detections: Detections, header, width: int, height: int,
                      untracked: bool = True) -> DetectionArray:
    """Tracked objects (persistent ids), then (untracked=True) the frame's detections no track took (id -1)."""
    out = DetectionArray(header=header, image_width=int(width), image_height=int(height))
    for track in tracks:
        cx, cy, w, h = track.center_size
        out.detections.append(Detection(class_id=track.class_id, class_name=track.class_name,
                                        score=float(track.score), center_x=float(cx), center_y=float(cy),
                                        width=float(w), height=float(h), track_id=track.track_id))
    if untracked:
        taken = {t.detection_index for t in tracks}
        for i in range(len(detections)):
            if i in taken:
                continue
            x1, y1, x2, y2 = (float(v) for v in detections.xyxy[i])
            out.detections.append(Detection(class_id=int(detections.class_ids[i]),
                                            class_name=detections.class_name(int(detections.class_ids[i])),
                                            score=float(detections.scores[i]), center_x=(x1 + x2) / 2,
                                            center_y=(y1 + y2) / 2, width=x2 - x1, height=y2 - y1, track_id=-1))
    return out


class TrackerNode(MmchatLifecycleNode):
    """Lifecycle: configure loads the detector (and runs it once: ultralytics builds its predictor on the first
    inference), activate subscribes to the camera and starts detection with a fresh tracker, deactivate stops both."""

    def __init__(self):
        super().__init__("tracker", PARAMS, on_change=self.apply_rate)
        if self.p.max_rate_hz < 0 or self.p.frame_rate <= 0:
            raise ValueError(f"max_rate_hz must be >= 0 and frame_rate > 0 (got {self.p.max_rate_hz}, "
                             f"{self.p.frame_rate})")
        self.worker: LatestFrameWorker | None = None

    def configure(self) -> None:
        p = self.p
        if p.detector == "yolo":
            detector_options = dict(weights=p.weights, image_size=p.image_size, confidence=p.confidence, iou=p.iou,
                                    device=p.device, half=p.half, models_dir=p.models_dir,
                                    allow_download=p.allow_download)
        elif p.detector == "mediapipe":
            detector_options = dict(min_score=p.mediapipe_min_score)
        else:
            detector_options = dict(upscale=p.hog_upscale, win_stride=p.hog_win_stride, scale=p.hog_scale,
                                    hit_threshold=p.hog_hit_threshold, score_offset=p.hog_score_offset)
        detector = make_detector(p.detector, **detector_options)   # DetectorError: stops with the reason
        self.classes = parse_class_filter(p.classes, detector.names)
        if p.detector == "yolo" and self.classes is not None:
            detector.classes = self.classes                          # filtered inside YOLO's NMS: cheaper
        # The first inference builds ultralytics' predictor (seconds): do it now, not on the first camera frame.
        detector.detect(np.zeros((240, 320, 3), np.uint8))
        self.detector = RegionDetector(detector, p.full_frame_every, p.region_margin)
        self.detections_pub = self.publish_to(topics.DETECTIONS, DetectionArray)
        self.debug_pub = self.publish_to(topics.DETECTIONS_DEBUG_IMAGE, Image)
        self.get_logger().info(f"tracker ready: {self.detector.name}, tracker {p.tracker}, classes "
                               f"{p.classes or 'all'}")

    def activate(self) -> None:
        self.tracker = MultiObjectTracker(self.p.tracker, self.p.frame_rate, self.p.tracker_config)
        self.detector.reset()
        self.frames_done = 0
        self.frames_dropped_before = 0
        self.busy_s = 0.0
        self.worker = LatestFrameWorker(self, "detection", self.process, min_period_s=min_period(self.p.max_rate_hz))
        self.start_worker(self.worker)
        self.subscribe_to(topics.CAMERA_IMAGE, Image, CameraFrames(self, self.worker.offer))
        self.create_timer(10.0, self.log_statistics)
        self.get_logger().info(f"tracking with {self.tracker.kind} ({self.tracker.config_file.name})")

    def apply_rate(self, values: dict) -> None:
        """max_rate_hz is live (the activation policy slows the tracker down while nobody needs full rate)."""
        if self.worker is not None:
            self.worker.min_period_s = min_period(values["max_rate_hz"])

    def release(self) -> None:
        self.detector = None

    def process(self, msg: Image) -> None:
        start = time.monotonic()
        try:
            self.detect_and_track(msg)
        finally:
            self.busy_s += time.monotonic() - start

    def detect_and_track(self, msg: Image) -> None:
        self.get_logger().info(first_frame_line(msg), once=True)
        rgb = to_rgb(msg)
        detections = self.detector.detect(rgb)
        if self.classes is not None:
            detections = detections.select(np.isin(detections.class_ids, self.classes))
        tracks = self.tracker.update(detections, rgb)
        self.detector.follow(tracks, detections)
        self.detections_pub.publish(detections_to_msg(tracks, detections, msg.header, msg.width, msg.height))
        self.frames_done += 1
        if self.p.publish_debug_image and self.debug_pub.get_subscription_count() > 0:
            self.debug_pub.publish(numpy_to_image(draw_tracks(rgb, tracks, detections), "rgb8", msg.header))

    def log_statistics(self) -> None:
        done, self.frames_done = self.frames_done, 0
        dropped = self.worker.dropped - self.frames_dropped_before
        self.frames_dropped_before = self.worker.dropped
        busy, self.busy_s = self.busy_s, 0.0
        if done or dropped:
            self.get_logger().info(f"{done / 10.0:.1f} frames/s processed ({1000 * busy / max(done, 1):.0f} ms "
                                   f"each), {dropped} dropped while busy")


def main(args=None):
    return run_lifecycle_node(TrackerNode, args)


if __name__ == "__main__":
    sys.exit(main())
