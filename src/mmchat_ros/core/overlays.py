"""What the live views show besides the raw streams: what to draw over the camera image, in image pixels
(tracked detections as boxes with labels and per-track colours, the gesture's hand skeleton), and setpoint vs
state samples for plots. Shared by the Foxglove bridge (ImageAnnotations, plot channels) and the operator panel
(drawn in the browser). No rclpy: inputs are any objects with the message fields (mmchat_ros/Detection,
mmchat_ros/Gesture, geometry_msgs/Pose) or plain values.
"""
from __future__ import annotations

import colorsys
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from mmchat_ros.core.geometry import wrap_angle, yaw_from_quat
from mmchat_ros.core.gestures import HAND_CONNECTIONS, NUM_LANDMARKS

RGB = tuple[float, float, float]       # 0..1
UNTRACKED_COLOUR: RGB = (0.63, 0.63, 0.63)
HAND_COLOUR: RGB = (0.16, 0.86, 0.24)
LANDMARK_COLOUR: RGB = (0.9, 0.16, 0.16)


def track_colour(track_id: int) -> RGB:
    """A stable, saturated colour per track id (golden-ratio hue steps, so neighbouring ids differ); grey for
    untracked (-1) detections."""
    if track_id < 0:
        return UNTRACKED_COLOUR
    return colorsys.hsv_to_rgb((track_id * 0.61803398875) % 1.0, 0.85, 0.9)


def rgb_hex(colour: RGB) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c * 255))):02x}" for c in colour)


@dataclass(frozen=True)
class Box:
    corners: tuple[tuple[float, float], ...]    # top-left, top-right, bottom-right, bottom-left, pixels
    label: str
    track_id: int
    colour: RGB


@dataclass(frozen=True)
class Skeleton:
    points: tuple[tuple[float, float], ...]     # the 21 landmarks, pixels
    segments: tuple[tuple[int, int], ...]       # pairs of indices into points
    label: str
    colour: RGB = HAND_COLOUR


@dataclass(frozen=True)
class Overlay:
    width: int
    height: int
    boxes: tuple[Box, ...] = ()
    hands: tuple[Skeleton, ...] = ()
    caption: str = ""

    def as_dict(self) -> dict:
        """Plain data (JSON-ready) with colours as #rrggbb: what the panel's browser code draws."""
        data = asdict(self)
        for item in data["boxes"] + data["hands"]:
            item["colour"] = rgb_hex(item["colour"])
        return data


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def detection_label(detection) -> str:
    ident = f"#{detection.track_id} " if detection.track_id >= 0 else ""
    return f"{ident}{detection.class_name or detection.class_id} {detection.score:.2f}"


def detection_boxes(detections: Iterable, scale_x: float = 1.0, scale_y: float = 1.0) -> list[Box]:
    """Boxes of Detection-like objects (centre_x, centre_y, width, height in pixels of the detector's image),
    scaled to the image drawn on; boxes with non-finite or negative sizes are left out."""
    boxes = []
    for det in detections:
        cx, cy, w, h = float(det.center_x), float(det.center_y), float(det.width), float(det.height)
        if not _finite(cx, cy, w, h) or w < 0 or h < 0:
            continue
        x1, y1, x2, y2 = (cx - w / 2) * scale_x, (cy - h / 2) * scale_y, (cx + w / 2) * scale_x, (cy + h / 2) * scale_y
        boxes.append(Box(((x1, y1), (x2, y1), (x2, y2), (x1, y2)), detection_label(det), int(det.track_id),
                         track_colour(int(det.track_id))))
    return boxes


def gesture_caption(gesture) -> str:
    if gesture is None or not gesture.num_hands:
        return ""
    state = "" if gesture.stable else " (?)"
    return f"{gesture.name}{state} {gesture.confidence:.2f}"


def hand_skeleton(landmarks: Sequence, width: int, height: int, label: str = "") -> Skeleton | None:
    """The hand skeleton of NUM_LANDMARKS normalised landmarks (x, y in 0..1 of the image) in pixels; None when
    the landmarks are not a whole, finite hand."""
    if len(landmarks) != NUM_LANDMARKS:
        return None
    points = []
    for point in landmarks:
        x, y = (point.x, point.y) if hasattr(point, "x") else (point[0], point[1])
        if not _finite(x, y):
            return None
        points.append((float(x) * width, float(y) * height))
    return Skeleton(tuple(points), HAND_CONNECTIONS, label)


def build_overlay(width: int, height: int, detections=None, gesture=None) -> Overlay:
    """Everything to draw over a width x height frame: ``detections`` a DetectionArray-like (its boxes are in
    image_width x image_height pixels, rescaled here to the frame), ``gesture`` a Gesture-like (or None)."""
    boxes: list[Box] = []
    if detections is not None:
        src_w = float(detections.image_width) or float(width)
        src_h = float(detections.image_height) or float(height)
        boxes = detection_boxes(detections.detections, width / src_w, height / src_h)
    hands: list[Skeleton] = []
    caption = gesture_caption(gesture)
    if gesture is not None and gesture.num_hands:
        skeleton = hand_skeleton(gesture.landmarks, width, height, caption)
        if skeleton is not None:
            hands.append(skeleton)
    return Overlay(int(width), int(height), tuple(boxes), tuple(hands), caption)


@dataclass
class LatestByStamp:
    """Keeps the newest message of a stream and answers whether it is recent enough to draw over a frame
    stamped ``frame_s`` (outputs of inference lag their frame; stale ones must not be drawn)."""
    max_age_s: float
    message: object = None
    stamp_s: float = field(default=-math.inf)

    def update(self, message, stamp_s: float) -> None:
        self.message, self.stamp_s = message, stamp_s

    def fresh_for(self, frame_s: float):
        if self.message is None or abs(frame_s - self.stamp_s) > self.max_age_s:
            return None
        return self.message


# ------------------------------------------------------------------------------------------------------ plots
def yaw_deg_of(q) -> float:
    """Heading (rotation about z) of a quaternion with x, y, z, w fields, degrees."""
    return math.degrees(yaw_from_quat((q.w, q.x, q.y, q.z)))


def pose_sample(pose) -> dict:
    """x, y, z (m) and yaw_deg of a geometry_msgs/Pose-like."""
    p = pose.position
    return {"x": float(p.x), "y": float(p.y), "z": float(p.z), "yaw_deg": yaw_deg_of(pose.orientation)}


def setpoint_vs_state(state: dict, setpoint: dict | None, setpoint_age_s: float | None = None) -> dict:
    """One plot sample: the vehicle's pose (pose_sample + any velocity fields), the position setpoint in force
    (or None) and the error setpoint - state per axis (yaw wrapped to +-180 deg)."""
    sample = {"state": state, "setpoint": setpoint, "error": None, "setpoint_age_s": setpoint_age_s}
    if setpoint is not None:
        sample["error"] = {axis: setpoint[axis] - state[axis] for axis in ("x", "y", "z")}
        sample["error"]["yaw_deg"] = wrap_angle(setpoint["yaw_deg"] - state["yaw_deg"], 360.0)
    return sample


def _numbers(*names: str, nullable: bool = False) -> dict:
    schema = {"type": "object", "properties": {name: {"type": "number"} for name in names}}
    return {"anyOf": [schema, {"type": "null"}]} if nullable else schema


# JSON schema of setpoint_vs_state samples (as the Foxglove bridge logs them, with a timestamp): lets Foxglove
# offer the message paths in its Plot panel.
SETPOINT_VS_STATE_SCHEMA = {
    "type": "object",
    "properties": {
        "timestamp": _numbers("sec", "nsec"),
        "state": _numbers("x", "y", "z", "yaw_deg", "vx_body", "vy_body", "vz_body", "yaw_rate_deg_s"),
        "setpoint": _numbers("x", "y", "z", "yaw_deg", nullable=True),
        "error": _numbers("x", "y", "z", "yaw_deg", nullable=True),
        "setpoint_age_s": {"type": ["number", "null"]},
    },
}
