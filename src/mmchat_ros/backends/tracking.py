"""Multi-object tracking with ultralytics' own trackers (ByteTrack, BoT-SORT), fed by any detector. No rclpy.

ultralytics normally runs its trackers inside ``model.track()``; here the same ``BYTETracker`` / ``BOTSORT``
classes, configured from the same YAML files (``ultralytics/cfg/trackers/*.yaml``), take the detections of any
backend in ``backends.detectors`` (YOLO, OpenCV's HOG, MediaPipe's person detector), so one tracker serves all.

``RegionDetector`` makes detection cheaper on frames between full-frame passes: the detector looks only at regions
of interest around where the last frame's tracks and detections are expected to be.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmchat_ros.backends.detectors import DetectorError, Detections, configure_ultralytics
from mmchat_ros.core.tracking_metrics import iou_matrix

TRACKERS = ("bytetrack", "botsort")
NEWCOMER_IOU = 0.3     # a newer box overlapping a remembered newcomer this much is the same object


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


class RegionDetector:
    """A detector run on the whole frame every ``full_frame_every`` frames (to find newcomers) and, on the frames
    between, only on regions of interest: where each object seen since the last full-frame pass (tracks, and
    detections no track took, so that a newcomer gets the second detection that confirms its track) should be now,
    its last box moved on at its last speed, grown by ``margin`` of its size on each side; overlapping regions are
    merged. An object missed on one frame keeps its region until the next full-frame pass. Nobody in view then
    costs nothing between full-frame passes, and a few people a fraction of the frame. ``full_frame_every`` 1:
    every frame whole (no regions). Call ``detect`` and then, with what the tracker made of it, ``follow``."""

    def __init__(self, detector, full_frame_every: int = 1, margin: float = 0.5):
        if int(full_frame_every) < 1 or not 0.0 <= margin <= 4.0:
            raise DetectorError(f"full_frame_every must be >= 1 and the region margin within 0..4, got "
                                f"{full_frame_every} and {margin}")
        self.detector = detector
        self.full_frame_every, self.margin = int(full_frame_every), float(margin)
        self.frame_index = 0
        # object -> (its last box, its motion per frame, the frame it was seen on); objects are track ids, and
        # negative keys for detections no track took (never moving, they expire at the next full-frame pass)
        self.seen: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}
        self.newcomer_key = 0
        self.last_regions: list[tuple[int, int, int, int]] | None = None   # None: the last frame was whole

    @property
    def names(self):
        return self.detector.names

    @property
    def name(self) -> str:
        if self.full_frame_every == 1:
            return self.detector.name
        return f"{self.detector.name}, whole frame every {self.full_frame_every} frames, else regions"

    def detect(self, image_rgb: np.ndarray) -> Detections:
        whole = self.frame_index % self.full_frame_every == 0
        self.frame_index += 1
        if whole:
            self.last_regions = None
            return self.detector.detect(image_rgb)
        height, width = image_rgb.shape[:2]
        expected = [box + motion * (self.frame_index - 1 - frame) for box, motion, frame in self.seen.values()]
        self.last_regions = merge_regions([grow_box(box, self.margin, width, height) for box in expected])
        found = [(x1, y1, self.detector.detect(np.ascontiguousarray(image_rgb[y1:y2, x1:x2])))
                 for x1, y1, x2, y2 in self.last_regions]
        found = [(x1, y1, d) for x1, y1, d in found if len(d)]
        if not found:
            return Detections.empty(self.detector.names)
        return Detections.from_arrays(np.concatenate([d.xyxy + np.float32([x1, y1, x1, y1]) for x1, y1, d in found]),
                                      np.concatenate([d.scores for _, _, d in found]),
                                      np.concatenate([d.class_ids for _, _, d in found]), self.detector.names)

    def follow(self, tracks: list[Track], detections: Detections) -> None:
        """Remember this frame's tracks and the detections no track took (a newcomer keeps its region until a
        track or a newer detection covers it); a full-frame pass forgets everything it did not see again."""
        frame = self.frame_index - 1
        if self.last_regions is None:     # a whole frame shows everything there is: start afresh
            self.seen = {}
        for track in tracks:
            box = np.asarray(track.xyxy, np.float32)
            before = self.seen.get(track.track_id)
            motion = (box - before[0]) / (frame - before[2]) if before else np.zeros(4, np.float32)
            self.seen[track.track_id] = (box, motion, frame)
        taken = {t.detection_index for t in tracks}
        fresh = [t.xyxy for t in tracks] + [detections.xyxy[i] for i in range(len(detections)) if i not in taken]
        newcomers = [key for key in self.seen if key < 0]
        if newcomers and fresh:
            overlap = iou_matrix([self.seen[key][0] for key in newcomers], fresh).max(axis=1)
            for key in np.asarray(newcomers)[overlap >= NEWCOMER_IOU]:
                del self.seen[int(key)]
        for i in range(len(detections)):
            if i not in taken:
                self.newcomer_key -= 1
                self.seen[self.newcomer_key] = (detections.xyxy[i], np.zeros(4, np.float32), frame)

    def reset(self) -> None:
        self.frame_index, self.seen, self.last_regions, self.newcomer_key = 0, {}, None, 0


def grow_box(box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` (x1, y1, x2, y2) grown by ``margin`` of its width and height on each side, as whole pixels within
    the image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    return (max(0, int(x1 - dx)), max(0, int(y1 - dy)), min(width, int(np.ceil(x2 + dx))),
            min(height, int(np.ceil(y2 + dy))))


def merge_regions(regions) -> list[tuple[int, int, int, int]]:
    """Regions with overlapping ones replaced by their common bounding box (repeated until none overlap), so no
    pixel is searched twice and a person between two regions is seen whole; empty regions are dropped."""
    merged = [r for r in regions if r[2] > r[0] and r[3] > r[1]]
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i], merged[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    merged[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return merged


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
    """What detect + track did on a frame sequence: per-frame tracks (id -> box) and per-frame timings: wall-clock
    detect and track times, and the CPU time the process spent on the frame (all its threads: what the frame costs
    a small computer, and less disturbed than wall-clock time by other programs on a busy machine)."""
    frames: list[dict[int, tuple[float, float, float, float]]]
    detect_s: list[float]
    track_s: list[float]
    detections: int
    cpu_s: list[float] = field(default_factory=list)

    @property
    def per_frame_s(self) -> list[float]:
        return [d + t for d, t in zip(self.detect_s, self.track_s)]


def track_frames(detector, tracker: MultiObjectTracker, frames, full_frame_every: int = 1,
                 margin: float = 0.5) -> TrackedRun:
    """Run detector (through a RegionDetector with full_frame_every and margin) and tracker over frames (an
    iterable of RGB images), as the tracker node does."""
    import time
    regions = RegionDetector(detector, full_frame_every, margin)
    run = TrackedRun([], [], [], 0)
    for image in frames:
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        detections = regions.detect(image)
        t1 = time.perf_counter()
        tracks = tracker.update(detections, image)
        regions.follow(tracks, detections)
        t2 = time.perf_counter()
        run.cpu_s.append(time.process_time() - cpu0)
        run.frames.append({t.track_id: t.xyxy for t in tracks})
        run.detect_s.append(t1 - t0)
        run.track_s.append(t2 - t1)
        run.detections += len(detections)
    return run
