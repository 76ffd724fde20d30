"""Hand-landmark backends: an RGB image in, ``core.gestures.Hand`` objects (21 landmarks each) out.

- ``mediapipe``: MediaPipe Hands (``mp.solutions.hands``); the palm-detection and landmark models ship inside the
  ``mediapipe==0.10.21`` wheel, nothing is downloaded.
- ``mediapipe_task``: MediaPipe Tasks ``HandLandmarker`` with a ``hand_landmarker.task`` model file from a local
  path; on robots with internet it may be fetched from ``model_url`` once, only when ``allow_download`` is set.

``make_hand_detector(name, **options)`` picks one by name (the gesture node's ``backend`` parameter).
"""
from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path
from typing import Protocol

import numpy as np

from mmchat_ros.core.gestures import Hand

MEDIAPIPE_TASK_URL = ("https://storage.googleapis.com/mediapipe-models/hand_landmarker/hand_landmarker/float16/1/"
                      "hand_landmarker.task")


class HandDetectorError(RuntimeError):
    """A backend that cannot start (missing package or model) or an image it cannot take."""


class HandDetector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray, timestamp_s: float | None = None) -> list[Hand]:
        """Hands in an HxWx3 uint8 RGB image; ``timestamp_s`` (monotonic per stream) lets video mode track."""

    def close(self) -> None: ...


def _check_image(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        shape = getattr(rgb, "shape", None)
        raise HandDetectorError(f"hand detection needs an HxWx3 uint8 RGB image, got {type(rgb).__name__} "
                                f"{shape} {getattr(rgb, 'dtype', '')}")
    if rgb.shape[0] < 16 or rgb.shape[1] < 16:
        raise HandDetectorError(f"image of {rgb.shape[1]}x{rgb.shape[0]} is too small for hand detection")
    return np.ascontiguousarray(rgb)


def _handedness(label: str, input_mirrored: bool) -> str:
    """MediaPipe labels hands as if the image were mirrored (a selfie view); for a plain camera image its
    "Left" is the person's right hand."""
    label = label.lower()
    if label not in ("left", "right"):
        return ""
    if input_mirrored:
        return label
    return "right" if label == "left" else "left"


class MediaPipeHands:
    """MediaPipe Hands from the wheel (palm detector + 21-landmark model)."""
    name = "mediapipe"

    def __init__(self, max_num_hands: int = 2, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, static_image_mode: bool = False,
                 input_mirrored: bool = False):
        try:
            from mediapipe.python.solutions import hands as mp_hands
        except ImportError as exc:   # pragma: no cover - depends on the install
            raise HandDetectorError(f"mediapipe is not installed ({exc}); pip install mediapipe==0.10.21") from exc
        if model_complexity not in (0, 1):
            raise HandDetectorError(f"model_complexity must be 0 (lite) or 1 (full), got {model_complexity}")
        self.input_mirrored = input_mirrored
        self._hands = mp_hands.Hands(static_image_mode=static_image_mode, max_num_hands=max_num_hands,
                                     model_complexity=model_complexity,
                                     min_detection_confidence=min_detection_confidence,
                                     min_tracking_confidence=min_tracking_confidence)

    def detect(self, rgb: np.ndarray, timestamp_s: float | None = None) -> list[Hand]:
        result = self._hands.process(_check_image(rgb))
        hands = []
        for landmarks, handedness in zip(result.multi_hand_landmarks or [], result.multi_handedness or []):
            label = handedness.classification[0]
            points = np.array([[p.x, p.y, p.z] for p in landmarks.landmark], dtype=float)
            hands.append(Hand(points, _handedness(label.label, self.input_mirrored), float(label.score)))
        return hands

    def close(self) -> None:
        self._hands.close()


class MediaPipeTaskHands:
    """MediaPipe Tasks HandLandmarker from a ``.task`` model file (video mode: tracks between frames)."""
    name = "mediapipe_task"

    def __init__(self, model_path: str, max_num_hands: int = 2, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, input_mirrored: bool = False, allow_download: bool = False,
                 model_url: str = MEDIAPIPE_TASK_URL):
        path = Path(os.path.expanduser(model_path)) if model_path else None
        if path is None or not path.is_file():
            if not allow_download:
                raise HandDetectorError(f"hand landmarker model '{model_path}' not found; give a local .task file "
                                        f"or set allow_download to fetch {model_url}")
            path = path or Path.home() / ".cache" / "mmchat_ros" / "hand_landmarker.task"
            path.parent.mkdir(parents=True, exist_ok=True)
            urllib.request.urlretrieve(model_url, path)    # hub-ok: only with allow_download (robots with internet)
        from mediapipe.tasks.python import BaseOptions, vision
        options = vision.HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)), running_mode=vision.RunningMode.VIDEO,
            num_hands=max_num_hands, min_hand_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence)
        self._landmarker = vision.HandLandmarker.create_from_options(options)
        self.input_mirrored = input_mirrored
        self._last_ms = -1

    def detect(self, rgb: np.ndarray, timestamp_s: float | None = None) -> list[Hand]:
        import mediapipe as mp
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=_check_image(rgb))
        stamp_ms = int((timestamp_s if timestamp_s is not None else time.monotonic()) * 1000)
        stamp_ms = max(stamp_ms, self._last_ms + 1)        # video mode needs strictly increasing timestamps
        self._last_ms = stamp_ms
        result = self._landmarker.detect_for_video(image, stamp_ms)
        hands = []
        for landmarks, handedness in zip(result.hand_landmarks, result.handedness):
            points = np.array([[p.x, p.y, p.z] for p in landmarks], dtype=float)
            hands.append(Hand(points, _handedness(handedness[0].category_name, self.input_mirrored),
                              float(handedness[0].score)))
        return hands

    def close(self) -> None:
        self._landmarker.close()


BACKENDS = {"mediapipe": MediaPipeHands, "mediapipe_task": MediaPipeTaskHands}


def make_hand_detector(name: str, **options) -> HandDetector:
    if name not in BACKENDS:
        raise HandDetectorError(f"unknown hand backend '{name}' (available: {', '.join(BACKENDS)})")
    return BACKENDS[name](**options)


def annotate(rgb: np.ndarray, hands: list[Hand], label: str, primary: Hand | None = None) -> np.ndarray:
    """A copy of the frame with every hand's landmarks and skeleton drawn (the primary hand in green, others in
    grey) and ``label`` written in the top-left corner: the debug image for viewers."""
    import cv2

    from mmchat_ros.core.gestures import HAND_CONNECTIONS
    image = np.ascontiguousarray(rgb).copy()
    height, width = image.shape[:2]
    thickness = max(1, round(min(width, height) / 240))
    for hand in hands:
        colour = (40, 220, 60) if hand is primary else (170, 170, 170)
        points = [(int(round(x * width)), int(round(y * height))) for x, y, _ in hand.landmarks]
        for a, b in HAND_CONNECTIONS:
            cv2.line(image, points[a], points[b], colour, thickness, cv2.LINE_AA)
        for point in points:
            cv2.circle(image, point, thickness + 2, (230, 40, 40), -1, cv2.LINE_AA)
    scale = max(0.5, min(width, height) / 480)
    origin = (int(10 * scale), int(30 * scale))
    cv2.putText(image, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return image


def describe_installation() -> str:
    """One line for `mmchat doctor`: MediaPipe Hands loads its models from the wheel and runs on a frame."""
    import mediapipe
    detector = MediaPipeHands(static_image_mode=True, max_num_hands=1)
    try:
        start = time.perf_counter()
        detector.detect(np.zeros((240, 320, 3), np.uint8))
        elapsed_ms = (time.perf_counter() - start) * 1000.0
    finally:
        detector.close()
    return f"MediaPipe Hands {mediapipe.__version__} (models from the wheel), first frame in {elapsed_ms:.0f} ms"
