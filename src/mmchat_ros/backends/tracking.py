"""Multi-object tracking with ultralytics' own trackers (ByteTrack, BoT-SORT), fed by any detector. No rclpy.

ultralytics normally runs its trackers inside ``model.track()``; here the same ``BYTETracker`` / ``BOTSORT``
classes, configured from the same YAML files (``ultralytics/cfg/trackers/*.yaml``), take the detections of any
backend in ``backends.detectors`` (YOLO or OpenCV's HOG), so one tracker serves both.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmchat_ros.backends.detectors import DetectorError, Detections, configure_ultralytics

TRACKERS = ("bytetrack", "botsort")


@dataclass(frozen=True)
class Track:
    """A tracked object in the current frame."""
    track_id: int
    xyxy: tuple[float, float, float, float]     # pixels
    score: float
    class_id: int
    class_name: str
    detection_index: int = -1                   # the detection of this frame the track was updated with

    @property
    def center_size(self) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self.xyxy
        return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def tracker_config_file(kind: str, config_file: str = "") -> Path:
    """The YAML to configure the tracker from: config_file, or ultralytics' own for kind."""
    if config_file:
        path = Path(config_file).expanduser()
        if not path.is_file():
            raise DetectorError(f"tracker config file not found: {path}")
        return path
    if kind not in TRACKERS:
        raise DetectorError(f"unknown tracker '{kind}' ({', '.join(TRACKERS)})")
    configure_ultralytics()
    from ultralytics.utils import ROOT
    return Path(ROOT) / "cfg" / "trackers" / f"{kind}.yaml"


class MultiObjectTracker:
    """ultralytics' BYTETracker or BOTSORT on a stream of Detections.

    ``frame_rate``: the rate frames actually arrive at. The YAML's ``track_buffer`` (how long a lost track is kept
    for re-identification) counts frames at 30 fps, as ultralytics' trackers always assumed; it is rescaled to
    ``frame_rate`` so a lost track lives the same time at any rate. ``overrides``: values replacing the YAML's
    (e.g. ``{"track_buffer": 60}``)."""

    def __init__(self, kind: str = "bytetrack", frame_rate: float = 30.0, config_file: str = "",
                 overrides: dict[str, Any] | None = None):
        path = tracker_config_file(kind, config_file)
        configure_ultralytics()
        import yaml
        from ultralytics.engine.results import Boxes
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import IterableSimpleNamespace
        try:
            cfg = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DetectorError(f"cannot read tracker config {path}: {exc}") from exc
        cfg.update(overrides or {})
        tracker_type = cfg.get("tracker_type")
        if tracker_type not in TRACKERS:
            raise DetectorError(f"{path}: tracker_type must be one of {TRACKERS}, got {tracker_type!r}")
        if tracker_type == "botsort" and cfg.get("with_reid") and cfg.get("model", "auto") == "auto":
            # 'auto' re-uses YOLO's own features, which only exist inside model.track(): use a ReID model file.
            raise DetectorError(f"{path}: BoT-SORT with_reid needs 'model: <reid weights>' here ('auto' only "
                                "works inside ultralytics' model.track())")
        if not frame_rate > 0:
            raise DetectorError(f"frame_rate must be positive, got {frame_rate}")
        cfg["track_buffer"] = max(1, int(round(float(cfg.get("track_buffer", 30)) * frame_rate / 30.0)))
        self.kind = tracker_type
        self.config_file = path
        self.frame_rate = float(frame_rate)
        self.args = IterableSimpleNamespace(**cfg)
        self.tracker = (BOTSORT if tracker_type == "botsort" else BYTETracker)(args=self.args)
        self._boxes_class = Boxes

    def reset(self) -> None:
        """Forget every track (a new video, a camera that was switched)."""
        self.tracker.reset()

    def update(self, detections: Detections, image_rgb: np.ndarray) -> list[Track]:
        """Tracks confirmed in this frame (an object needs two consecutive detections before it gets an id,
        except on the first frame). ``image_rgb`` feeds BoT-SORT's camera-motion compensation."""
        data = np.column_stack([detections.xyxy, detections.scores, detections.class_ids]).astype(np.float32) \
            if len(detections) else np.zeros((0, 6), np.float32)
        boxes = self._boxes_class(data, orig_shape=image_rgb.shape[:2])
        # Only BoT-SORT looks at the image (camera-motion compensation); trackers take OpenCV's BGR.
        image = np.ascontiguousarray(image_rgb[:, :, ::-1]) if self.kind == "botsort" else None
        rows = self.tracker.update(boxes, image)
        tracks = []
        for row in np.asarray(rows, np.float64).reshape(-1, 8):     # x1 y1 x2 y2 id score class index
            x1, y1, x2, y2, track_id, score, class_id, index = (float(v) for v in row)
            tracks.append(Track(int(track_id), (x1, y1, x2, y2), score, int(class_id),
                                detections.class_name(int(class_id)), int(index)))
        return tracks


def draw_tracks(image_rgb: np.ndarray, tracks: list[Track], detections: Detections | None = None) -> np.ndarray:
    """An annotated copy: tracked boxes with 'id class score', untracked detections thin and grey. Drawn with
    OpenCV's built-in font (ultralytics' own plotting downloads a TrueType font)."""
    import cv2
    out = np.ascontiguousarray(image_rgb).copy()
    scale = max(0.35, min(out.shape[:2]) / 600)
    if detections is not None:
        for x1, y1, x2, y2 in detections.xyxy.astype(int):
            cv2.rectangle(out, (x1, y1), (x2, y2), (160, 160, 160), 1)
    for track in tracks:
        colour = _colour(track.track_id)
        x1, y1, x2, y2 = (int(round(v)) for v in track.xyxy)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        label = f"{track.track_id} {track.class_name} {track.score:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(y1 - th - base - 2, 0)
        cv2.rectangle(out, (x1, top), (x1 + tw + 2, top + th + base + 2), colour, -1)
        cv2.putText(out, label, (x1 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return out


def _colour(track_id: int) -> tuple[int, int, int]:
    """A stable, saturated colour per track id."""
    import colorsys
    r, g, b = colorsys.hsv_to_rgb((track_id * 0.61803398875) % 1.0, 0.85, 0.9)
    return int(r * 255), int(g * 255), int(b * 255)


# ============================================================================================ recorded video

def video_frames(path: str | Path, count: int | None = None, start: int = 0):
    """RGB frames of a video file (any format OpenCV reads), from frame ``start``, at most ``count`` of them."""
    import cv2
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise FileNotFoundError(f"cannot open video {path}")
    try:
        if start:
            capture.set(cv2.CAP_PROP_POS_FRAMES, start)
        read = 0
        while count is None or read < count:
            ok, bgr = capture.read()
            if not ok:
                return
            read += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


@dataclass
class TrackedRun:
    """What detect + track did on a frame sequence: per-frame tracks (id -> box) and per-frame timings."""
    frames: list[dict[int, tuple[float, float, float, float]]]
    detect_s: list[float]
    track_s: list[float]
    detections: int

    @property
    def per_frame_s(self) -> list[float]:
        return [d + t for d, t in zip(self.detect_s, self.track_s)]


def track_frames(detector, tracker: MultiObjectTracker, frames) -> TrackedRun:
    """Run detector and tracker over frames (an iterable of RGB images)."""
    import time
    run = TrackedRun([], [], [], 0)
    for image in frames:
        t0 = time.perf_counter()
        detections = detector.detect(image)
        t1 = time.perf_counter()
        tracks = tracker.update(detections, image)
        t2 = time.perf_counter()
        run.frames.append({t.track_id: t.xyxy for t in tracks})
        run.detect_s.append(t1 - t0)
        run.track_s.append(t2 - t1)
        run.detections += len(detections)
    return run
