"""Object detectors behind one interface: ``detect(rgb image) -> Detections``. No rclpy.

- ``UltralyticsDetector``: ultralytics YOLO (default ``yolo11n.pt``); also loads exported models — ONNX
  (``.onnx``, through onnxruntime), OpenVINO (``*_openvino_model/`` folders), TensorRT (``.engine``), TorchScript —
  since ultralytics' ``YOLO()`` picks the runtime from the file. Weights are a local path: nothing is downloaded
  unless ``allow_download`` is set (robots with internet), and a missing file is a clear error saying how to
  provide it. Export for edge devices:

      python -m mmchat_ros.backends.detectors export yolo11n.pt --format onnx --imgsz 320
      python -m mmchat_ros.backends.detectors export yolo11n.pt --format openvino --imgsz 320

  ``quantize_onnx_int8`` makes a static INT8 copy of an ONNX export, calibrated on frames of the robot's own video
  (``export ... --format onnx --int8``); ``bench/detector_runtimes.py`` measures the runtimes against PyTorch.

- ``HogPeopleDetector``: OpenCV's built-in HOG + linear SVM people detector (Dalal-Triggs; its weights ship inside
  OpenCV), a real detector with real weights for machines without YOLO weights. It reports COCO class 0 "person".
- ``MediaPipePersonDetector``: MediaPipe's BlazePose person detector (``pose_detection.tflite``, shipped inside the
  mediapipe wheel, run offline through MediaPipe's own ``PoseDetectionCpu`` graph): ~15 ms a frame, finds people
  whose upper body fills a good part of the frame (a drone's operator at a few metres), not small distant ones.

ultralytics reaches for the network in several places (settings sync/analytics, auto-installing missing packages,
downloading fonts and weights); ``configure_ultralytics`` turns all of that off before ultralytics is imported.
"""
from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from mmchat_ros.core.tracking_metrics import greedy_match, iou_matrix

DEFAULT_WEIGHTS = "yolo11n.pt"
PERSON_CLASS_ID = 0          # COCO, as YOLO reports it; the HOG detector uses the same id
EXPORT_FORMATS = {           # ultralytics format -> python packages the export needs
    "onnx": ("onnx",), "openvino": ("openvino",), "torchscript": (), "engine": ("tensorrt",),
}
RUNTIME_PACKAGES = {         # exported model (file suffix or folder) -> python packages ultralytics loads it with
    ".onnx": ("onnx", "onnxruntime"), "_openvino_model": ("openvino",), ".engine": ("tensorrt",),
}


def missing_packages(packages) -> list[str]:
    import importlib.util
    return [pkg for pkg in packages if importlib.util.find_spec(pkg) is None]


class DetectorError(RuntimeError):
    """A detector cannot be created or cannot run; the message says why and what to do."""


class WeightsNotFoundError(DetectorError, FileNotFoundError):
    """The model file is not where the configuration says."""


@dataclass(frozen=True)
class Detections:
    """One frame's detections: boxes (x1, y1, x2, y2) in pixels, scores 0..1, class ids, id -> name."""
    xyxy: np.ndarray           # (N, 4) float32
    scores: np.ndarray         # (N,) float32
    class_ids: np.ndarray      # (N,) int64
    names: Mapping[int, str]

    def __post_init__(self):
        n = len(self.scores)
        if self.xyxy.shape != (n, 4) or self.class_ids.shape != (n,):
            raise ValueError(f"inconsistent detections: boxes {self.xyxy.shape}, scores {self.scores.shape}, "
                             f"classes {self.class_ids.shape}")

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls, names: Mapping[int, str]) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), names)

    @classmethod
    def from_arrays(cls, xyxy, scores, class_ids, names: Mapping[int, str]) -> "Detections":
        return cls(np.asarray(xyxy, np.float32).reshape(-1, 4), np.asarray(scores, np.float32).reshape(-1),
                   np.asarray(class_ids, np.int64).reshape(-1), names)

    def class_name(self, class_id: int) -> str:
        return self.names.get(int(class_id), str(int(class_id)))

    def select(self, mask: np.ndarray) -> "Detections":
        return Detections(self.xyxy[mask], self.scores[mask], self.class_ids[mask], self.names)


class Detector(Protocol):
    name: str                       # for logs: "yolo (yolo11n.pt, 640 px, cpu)", "hog"
    names: Mapping[int, str]        # class id -> class name

    def detect(self, image_rgb: np.ndarray) -> Detections: ...


def parse_class_filter(text: str, names: Mapping[int, str]) -> list[int] | None:
    """'person, car' or '0,2' (or a mix) -> class ids; '' -> None (all classes). Unknown names raise."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        return None
    by_name = {name.lower(): cid for cid, name in names.items()}
    ids = []
    for item in items:
        if item.lstrip("-").isdigit():
            cid = int(item)
            if cid not in names:
                raise DetectorError(f"class id {cid} is not one of the detector's classes (0..{max(names)})")
        elif item.lower() in by_name:
            cid = by_name[item.lower()]
        else:
            known = ", ".join(list(names.values())[:20])
            raise DetectorError(f"unknown class '{item}'; the detector knows: {known}"
                                + (", ..." if len(names) > 20 else ""))
        ids.append(cid)
    return sorted(set(ids))


@dataclass(frozen=True)
class DetectionAgreement:
    """How far one detector's boxes agree with a reference detector's on the same frames: boxes of the same class
    paired one to one by IoU, summed over the frames."""
    matched: int
    reference_boxes: int
    other_boxes: int

    @property
    def f1(self) -> float | None:
        """2 x matched / (reference + other): 1.0 when every box has its partner; None when neither found any."""
        total = self.reference_boxes + self.other_boxes
        return 2.0 * self.matched / total if total else None


def detection_agreement(reference: Sequence[Detections], other: Sequence[Detections],
                        iou_threshold: float = 0.5) -> DetectionAgreement:
    """Pair each frame's boxes with the reference's of the same class, best IoU first, each pair at least
    ``iou_threshold``; the counts over all frames."""
    if len(reference) != len(other):
        raise ValueError(f"{len(reference)} reference frames against {len(other)}")
    matched = 0
    for ref, oth in zip(reference, other):
        iou = iou_matrix(ref.xyxy.tolist(), oth.xyxy.tolist())
        iou[ref.class_ids[:, None] != oth.class_ids[None, :]] = 0.0
        matched += len(greedy_match(iou, iou_threshold))
    return DetectionAgreement(matched, sum(len(d) for d in reference), sum(len(d) for d in other))


def _rgb_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 8 or \
            image.shape[1] < 8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got shape {image.shape} dtype {image.dtype}")
    return image


# ============================================================================================ HOG

class HogPeopleDetector:
    """OpenCV's HOG people detector (64x128 window, weights shipped with OpenCV).

    A person must be about 100 px tall in the (upscaled) image to fill the window: ``upscale`` enlarges the image
    first so smaller people are found, at upscale^2 the cost. The SVM margin ``m`` becomes a score
    ``1 / (1 + exp(-(m - score_offset)))``, so margin ``score_offset`` reads 0.5; detections down to margin
    ``hit_threshold`` are kept, which lets a tracker use the weak ones (ByteTrack's second association)."""

    def __init__(self, upscale: float = 1.0, win_stride: int = 8, padding: int = 8, scale: float = 1.1,
                 hit_threshold: float = 0.0, score_offset: float = 1.0, nms_iou: float = 0.45,
                 group_threshold: int = 2):
        import cv2
        if not (math.isfinite(upscale) and 0.25 <= upscale <= 4.0):
            raise DetectorError(f"HOG upscale must be within 0.25..4, got {upscale}")
        if not (math.isfinite(scale) and scale > 1.0):
            raise DetectorError(f"HOG pyramid scale must be > 1, got {scale}")
        if win_stride <= 0 or win_stride % 8 or padding < 0:
            raise DetectorError(f"HOG win_stride must be a positive multiple of 8 (the cell size) and padding >= 0, "
                                f"got {win_stride} and {padding}")
        self._cv2 = cv2
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.upscale, self.win_stride, self.padding, self.scale = float(upscale), int(win_stride), int(padding), \
            float(scale)
        self.hit_threshold, self.score_offset, self.nms_iou = float(hit_threshold), float(score_offset), \
            float(nms_iou)
        self.group_threshold = int(group_threshold)
        self.names = {PERSON_CLASS_ID: "person"}
        self.name = f"hog (OpenCV people detector, upscale {self.upscale:g})"

    def detect(self, image_rgb: np.ndarray) -> Detections:
        cv2 = self._cv2
        image = _rgb_image(image_rgb)
        if self.upscale != 1.0:
            image = cv2.resize(image, None, fx=self.upscale, fy=self.upscale,
                               interpolation=cv2.INTER_LINEAR if self.upscale > 1 else cv2.INTER_AREA)
        window_w, window_h = self.hog.winSize
        if image.shape[0] < window_h or image.shape[1] < window_w:
            return Detections.empty(self.names)      # a region smaller than one window holds nobody it can see
        rects, margins = self.hog.detectMultiScale(
            image, hitThreshold=self.hit_threshold, winStride=(self.win_stride, self.win_stride),
            padding=(self.padding, self.padding), scale=self.scale, groupThreshold=self.group_threshold)
        if len(rects) == 0:
            return Detections.empty(self.names)
        rects = np.asarray(rects, np.float32).reshape(-1, 4) / self.upscale
        margins = np.asarray(margins, np.float32).reshape(-1)
        scores = 1.0 / (1.0 + np.exp(-(margins - self.score_offset)))
        # Grouping leaves nested boxes around one person (a whole-body and a larger context window): keep one.
        keep = cv2.dnn.NMSBoxes(rects.tolist(), scores.tolist(), score_threshold=0.0, nms_threshold=self.nms_iou)
        keep = np.asarray(keep, np.int64).reshape(-1)
        rects, scores = rects[keep], scores[keep]
        xyxy = np.column_stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]])
        return Detections.from_arrays(xyxy, scores, np.full(len(scores), PERSON_CLASS_ID), self.names)


# ============================================================================================ MediaPipe

# MediaPipe's pose detection subgraph (compiled into the wheel, its model file inside the wheel too) on one image.
_POSE_DETECTION_GRAPH = """
input_stream: "image"
output_stream: "detections"
node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:detections" }
"""
# BlazePose gives no person box, but two keypoints: the mid-hip point and a point whose distance r from it scales
# with the body. The box around the body, in units of r from the hip (fitted to the HOG box of the sim's pedestrian
# billboard, so that both detectors' boxes mean the same thing to the tracker and to follow):
_POSE_BOX_TOP_R, _POSE_BOX_BOTTOM_R, _POSE_BOX_WIDTH_R = 1.7, 1.45, 1.55


class MediaPipePersonDetector:
    """MediaPipe's BlazePose person detector (the first stage of MediaPipe Pose), several people per frame.

    Its input is the frame letterboxed to 224x224: a person is found when about a fifth of the frame's height or
    more (an operator within a few metres of the camera); small distant people are not (run it on regions of
    interest, ``tracking.RegionDetector``, to see them larger). ``min_score``: the detection score kept, 0..1."""

    def __init__(self, min_score: float = 0.5):
        if not 0.0 <= min_score <= 1.0:
            raise DetectorError(f"MediaPipe person detector min_score must be within 0..1, got {min_score}")
        try:
            from google.protobuf import text_format
            from mediapipe.framework import calculator_pb2
            from mediapipe.python.solution_base import SolutionBase
        except ImportError as exc:
            raise DetectorError(f"the mediapipe person detector needs mediapipe (0.10.x): {exc}") from exc
        graph = text_format.Parse(_POSE_DETECTION_GRAPH, calculator_pb2.CalculatorGraphConfig())
        self._graph = SolutionBase(graph_config=graph, outputs=["detections"])
        self.min_score = float(min_score)
        self.names = {PERSON_CLASS_ID: "person"}
        self.name = "mediapipe (BlazePose person detector)"

    def detect(self, image_rgb: np.ndarray) -> Detections:
        image = np.ascontiguousarray(_rgb_image(image_rgb))
        height, width = image.shape[:2]
        boxes, scores = [], []
        for detection in self._graph.process({"image": image}).detections or []:
            score = float(detection.score[0])
            if score < self.min_score:
                continue
            hip, scale = detection.location_data.relative_keypoints[:2]
            hip_x, hip_y = hip.x * width, hip.y * height
            r = math.hypot((scale.x - hip.x) * width, (scale.y - hip.y) * height)
            boxes.append((hip_x - _POSE_BOX_WIDTH_R * r / 2, hip_y - _POSE_BOX_TOP_R * r,
                          hip_x + _POSE_BOX_WIDTH_R * r / 2, hip_y + _POSE_BOX_BOTTOM_R * r))
            scores.append(score)
        if not boxes:
            return Detections.empty(self.names)
        xyxy = np.clip(np.asarray(boxes, np.float32), 0, [width, height, width, height])
        return Detections.from_arrays(xyxy, scores, np.full(len(scores), PERSON_CLASS_ID), self.names)

    def close(self) -> None:
        self._graph.close()


# ============================================================================================ ultralytics

_CONFIGURED = False


def configure_ultralytics(allow_network: bool = False) -> None:
    """Call before ultralytics is imported (it reads these at import): never pip-install missing packages
    (YOLO_AUTOINSTALL), and unless allow_network no network at all (YOLO_OFFLINE: no online checks, so no
    analytics or settings sync either). With the network allowed, analytics are switched off in ultralytics'
    settings file instead (per user; YOLO_CONFIG_DIR moves it)."""
    global _CONFIGURED
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    if not allow_network:
        os.environ.setdefault("YOLO_OFFLINE", "true")
    if _CONFIGURED:
        return
    _CONFIGURED = True
    try:
        from ultralytics import settings
    except ImportError as exc:
        raise DetectorError(f"ultralytics is not installed ({exc}); install the project's requirements "
                            "(ultralytics-opencv-headless, torch, torchvision, lap)") from exc
    if allow_network:
        try:
            if settings.get("sync", False):
                settings.update({"sync": False})
        except Exception:  # noqa: BLE001 - a read-only settings file must not stop detection
            pass


def resolve_weights(weights: str, models_dir: str = "", allow_download: bool = False) -> str:
    """The model path to load: an existing file or export folder (absolute, relative to the working directory, or
    relative to models_dir). A bare asset name such as 'yolo11n.pt' passes through only with allow_download,
    for ultralytics to fetch. Anything else raises WeightsNotFoundError saying how to provide the file."""
    if not weights or not weights.strip():
        raise WeightsNotFoundError("no YOLO weights configured (parameter 'weights' is empty)")
    given = Path(weights).expanduser()
    candidates = [given] if given.is_absolute() else [Path.cwd() / given] + (
        [Path(models_dir).expanduser() / given] if models_dir else [])
    for candidate in candidates:
        if candidate.is_file() or (candidate.is_dir() and any(candidate.glob("*.xml"))):
            return str(candidate.resolve())
        if candidate.is_dir():
            raise WeightsNotFoundError(f"{candidate} is a folder without an OpenVINO model (*.xml): export one "
                                       "with `python -m mmchat_ros.backends.detectors export <weights.pt> --format "
                                       "openvino`")
    if allow_download and given.name == str(weights) and given.suffix == ".pt":
        return str(weights)       # ultralytics downloads known asset names from its GitHub releases
    looked = ", ".join(str(c) for c in candidates)
    raise WeightsNotFoundError(
        f"YOLO weights '{weights}' not found (looked in: {looked}). Nothing is downloaded unless it is "
        f"allowed. Provide the file: copy {given.name} there or into models_dir (ultralytics publishes it on its "
        "GitHub releases page; `yolo predict model=yolo11n.pt` on a machine with internet also fetches it), or "
        "point the 'weights' parameter at a local .pt / exported .onnx / *_openvino_model folder (see `python -m "
        "mmchat_ros.backends.detectors export --help`), or set allow_download:=true on a robot with internet.")


class UltralyticsDetector:
    """ultralytics YOLO detection on a local model file (.pt or an exported format)."""

    def __init__(self, weights: str = DEFAULT_WEIGHTS, image_size: int = 640, confidence: float = 0.25,
                 iou: float = 0.7, classes: Sequence[int] | None = None, device: str = "cpu", half: bool = False,
                 models_dir: str = "", allow_download: bool = False):
        if not 32 <= int(image_size) <= 4096:
            raise DetectorError(f"image_size must be within 32..4096, got {image_size}")
        if not (0.0 <= confidence <= 1.0 and 0.0 < iou <= 1.0):
            raise DetectorError(f"confidence must be within 0..1 and iou within (0, 1], got {confidence}, {iou}")
        path = resolve_weights(weights, models_dir, allow_download)
        for ending, packages in RUNTIME_PACKAGES.items():
            missing = missing_packages(packages) if path.rstrip("/").endswith(ending) else []
            if missing:   # ultralytics would try to pip-install them (turned off here) and fail less clearly
                raise DetectorError(f"loading {path} needs the Python package(s) {', '.join(missing)}: "
                                    f"pip install {' '.join(missing)}")
        configure_ultralytics(allow_network=allow_download)
        from ultralytics import YOLO
        try:
            self.model = YOLO(path, task="detect")
        except FileNotFoundError as exc:
            raise WeightsNotFoundError(f"YOLO weights '{weights}' could not be loaded: {exc}") from exc
        except Exception as exc:   # a download that failed (no network), a corrupt file, a missing runtime
            hint = (" (no network? copy the file to the robot instead of downloading it)" if path == weights
                    else "")
            raise DetectorError(f"cannot load YOLO model '{path}': {type(exc).__name__}: {exc}{hint}") from exc
        self.path = path
        self.image_size = int(image_size)
        self.confidence, self.iou = float(confidence), float(iou)
        self.classes = list(classes) if classes else None
        self.device, self.half = device, bool(half)
        self.names = {int(k): str(v) for k, v in self.model.names.items()}
        self.name = f"yolo ({Path(path).name}, {self.image_size} px, {device})"

    def detect(self, image_rgb: np.ndarray) -> Detections:
        image = _rgb_image(image_rgb)
        bgr = np.ascontiguousarray(image[:, :, ::-1])      # ultralytics takes numpy images as OpenCV BGR
        result = self.model.predict(bgr, imgsz=self.image_size, conf=self.confidence, iou=self.iou,
                                    classes=self.classes, device=self.device, half=self.half, verbose=False)[0]
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return Detections.empty(self.names)
        return Detections.from_arrays(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(),
                                      boxes.cls.cpu().numpy().astype(np.int64), self.names)


DETECTORS = ("yolo", "hog", "mediapipe")


def make_detector(kind: str, **options) -> Detector:
    """'yolo' (UltralyticsDetector options), 'hog' (HogPeopleDetector options) or 'mediapipe'
    (MediaPipePersonDetector options)."""
    if kind == "yolo":
        return UltralyticsDetector(**options)
    if kind == "hog":
        return HogPeopleDetector(**options)
    if kind == "mediapipe":
        return MediaPipePersonDetector(**options)
    raise DetectorError(f"unknown detector '{kind}' ({', '.join(DETECTORS)})")


def build_untrained_model(path: str | Path, architecture: str = "yolo11n.yaml", names: Mapping[int, str] | None = None,
                          seed: int = 0, normalise_on: Sequence[np.ndarray] = ()) -> Path:
    """Build a YOLO model from one of ultralytics' architecture YAMLs (random weights, no download) and save it as
    a .pt file: the real loading, inference, tracking and export code paths on machines without trained weights
    (tests, timing benches). ``names``: its class names (default: COCO's, from ultralytics' coco.yaml).

    With BatchNorm's initial statistics (mean 0, variance 1) the random network computes nearly the same output
    for every image (box sizes from a flat distance distribution, scores from the prior bias). ``normalise_on``
    (RGB frames) sets those statistics from real frames instead, so each layer's activations have input-dependent,
    realistic ranges: what a comparison of runtimes or of int8 against fp32 needs. It is still no detector."""
    configure_ultralytics()
    import torch
    import yaml
    from ultralytics import YOLO
    from ultralytics.utils import ROOT
    if names is None:
        coco = yaml.safe_load((Path(ROOT) / "cfg" / "datasets" / "coco.yaml").read_text())
        names = {int(k): str(v) for k, v in coco["names"].items()}
    torch.manual_seed(seed)
    model = YOLO(architecture, task="detect")
    model.model.names = dict(names)
    if normalise_on:
        for module in model.model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.reset_running_stats()
                module.momentum = None           # a plain average over the batch
        batch = torch.from_numpy(np.concatenate([network_input(image, 320) for image in normalise_on]))
        model.model.train()
        with torch.no_grad():
            model.model(batch)
        model.model.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    return path


# ============================================================================================ export

def export_model(weights: str, format: str = "onnx", image_size: int = 640, half: bool = False,
                 int8: bool = False, device: str = "cpu", models_dir: str = "",
                 calibration_images: Sequence[np.ndarray] = ()) -> Path:
    """Export a .pt model for edge runtimes; returns the exported file or folder (beside the weights). ONNX with
    ``int8``: the fp32 export and its static INT8 copy (``quantize_onnx_int8`` on ``calibration_images``), which is
    returned; ultralytics' own int8 export would fetch a calibration data set."""
    if format not in EXPORT_FORMATS:
        raise DetectorError(f"unsupported export format '{format}' ({', '.join(EXPORT_FORMATS)})")
    if format == "onnx" and int8:
        if not calibration_images:
            raise DetectorError("an int8 ONNX export needs calibration frames: a video of what the camera sees "
                                "(--calibration-video)")
        return quantize_onnx_int8(export_model(weights, format, image_size, half, False, device, models_dir),
                                  calibration_images)
    path = resolve_weights(weights, models_dir)
    missing = missing_packages(EXPORT_FORMATS[format])
    if missing:
        raise DetectorError(f"exporting to {format} needs the Python package(s) {', '.join(missing)}: "
                            f"pip install {' '.join(missing)} (ultralytics would install them itself at run time, "
                            "which this project turns off)")
    configure_ultralytics()
    from ultralytics import YOLO
    options = {}
    if format == "onnx":
        # ultralytics' ONNX simplification needs onnxslim: use it when installed, never install it.
        options["simplify"] = not missing_packages(["onnxslim"])
    out = YOLO(path, task="detect").export(format=format, imgsz=int(image_size), half=half, int8=int8,
                                           device=device, **options)
    return Path(out)


def network_input(image_rgb: np.ndarray, image_size: int) -> np.ndarray:
    """The (1, 3, S, S) float32 tensor an exported YOLO of input size S takes, made as ultralytics' predictor makes
    it: the frame scaled to fit and padded grey (LetterBox, centred), RGB, 0..1."""
    configure_ultralytics()
    from ultralytics.data.augment import LetterBox
    bgr = np.ascontiguousarray(_rgb_image(image_rgb)[:, :, ::-1])
    boxed = LetterBox(new_shape=(int(image_size), int(image_size)), auto=False)(image=bgr)
    return np.ascontiguousarray(boxed[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def quantize_onnx_int8(model: str | Path, calibration_images: Sequence[np.ndarray], output: str | Path | None = None
                       ) -> Path:
    """A static INT8 copy of an ultralytics ONNX export (``<name>_int8.onnx`` beside it unless ``output``), which the
    same loaders run. Static, not dynamic: activation ranges are fixed from ``calibration_images`` (RGB frames like
    the ones it will see; keep them apart from frames used to judge it), so ONNX Runtime runs whole int8
    convolutions; dynamic quantisation measures ranges on every frame and suits MatMul-heavy transformers, not a
    CNN. Only the weighted ops (Conv, MatMul, Gemm) are quantised, weights per output channel: the head's box and
    score decode stays float, as in ultralytics' own int8 export, because one int8 scale over box pixels (0..640)
    and class probabilities (0..1) rounds every score to 0."""
    missing = missing_packages(["onnx", "onnxruntime"])
    if missing:
        raise DetectorError(f"int8 quantisation needs the Python package(s) {', '.join(missing)}: "
                            f"pip install {' '.join(missing)}")
    import onnx
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static
    model = Path(model)
    if not calibration_images:
        raise DetectorError("int8 quantisation needs calibration images (frames like the ones the model will see)")
    graph = onnx.load(str(model))
    input_name = graph.graph.input[0].name
    size = graph.graph.input[0].type.tensor_type.shape.dim[2].dim_value
    if not size:
        raise DetectorError(f"{model} has a dynamic input size: export it with a fixed --imgsz to quantise it")
    exclude = [node.name for node in graph.graph.node if node.op_type not in {"Conv", "MatMul", "Gemm"}]

    class Frames(CalibrationDataReader):
        def __init__(self):
            self.rewind()

        def get_next(self):
            image = next(self.images, None)
            return None if image is None else {input_name: network_input(image, size)}

        def rewind(self):
            self.images = iter(calibration_images)

    output = Path(output) if output else model.with_name(f"{model.stem}_int8.onnx")
    # uint8 activations, int8 weights in 7 bits: ONNX Runtime's advice for x86 CPUs without VNNI, whose 8-bit
    # multiply-add saturates with full-range weights (measured here: box outputs collapsed without reduce_range).
    quantize_static(str(model), str(output), Frames(), per_channel=True, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude)
    onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])    # fails here, not on the robot
    return output


def calibration_frames(video: str | Path, count: int) -> list[np.ndarray]:
    """``count`` RGB frames spread evenly over a video (any format OpenCV reads)."""
    import cv2
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise DetectorError(f"cannot open calibration video {video}")
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        for index in np.linspace(0, max(total - 1, 0), max(int(count), 1)).astype(int):
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, bgr = capture.read()
            if ok:
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise DetectorError(f"no frames read from calibration video {video}")
    return frames


def main(argv: list[str] | None = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m mmchat_ros.backends.detectors",
                                     description="Export a YOLO .pt model for edge runtimes (offline).")
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="export weights to ONNX / OpenVINO / TorchScript / TensorRT")
    export.add_argument("weights", help="the .pt file, e.g. yolo11n.pt")
    export.add_argument("--format", default="onnx", choices=sorted(EXPORT_FORMATS))
    export.add_argument("--imgsz", type=int, default=640, help="input size the exported model is fixed to")
    export.add_argument("--half", action="store_true", help="FP16 (GPU / OpenVINO)")
    export.add_argument("--int8", action="store_true",
                        help="INT8 quantisation (ONNX: static, calibrated on --calibration-video; OpenVINO, TensorRT)")
    export.add_argument("--calibration-video", default="",
                        help="ONNX --int8: a video like the camera's view, whose frames calibrate the int8 ranges")
    export.add_argument("--calibration-frames", type=int, default=32, help="frames taken, spread over the video")
    export.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        calibration = calibration_frames(args.calibration_video, args.calibration_frames) \
            if args.calibration_video else []
        out = export_model(args.weights, args.format, args.imgsz, args.half, args.int8, args.device,
                           calibration_images=calibration)
    except DetectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"exported: {out}\nuse it with: ros2 run mmchat_ros tracker --ros-args -p weights:={out} "
          f"-p image_size:={args.imgsz}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
