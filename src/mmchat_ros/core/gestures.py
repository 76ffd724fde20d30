"""Hand-gesture classifier on hand landmarks (MediaPipe's 21-point layout). Pure Python + numpy, no ROS.

Pipeline, one camera frame at a time (``GestureRecognizer.update``):

1. pick the primary hand (the one tracked so far, else the largest) when several are visible;
2. ``hand_features``: per-finger extension (0 curled .. 1 straight) from the 3-D joint angles, finger pointing
   directions in the image, thumb-index pinch and index-middle spread, all normalised by the palm size — so they do
   not change with the hand's size, its rotation in the image or which hand it is;
3. ``static_scores``: a confidence 0..1 for every static gesture (product of the finger conditions it needs);
4. ``GestureFilter``: exponential smoothing of those scores + hysteresis: a gesture becomes *stable* only after
   leading for ``hold_frames`` frames and stays until its smoothed score falls below the exit threshold;
5. ``SwipeDetector``: dynamic gestures (swipes) from the palm-centre trajectory over a short time window.

Directions (pointing up, thumb left, swipe right, ...) are image directions; with ``mirror_directions`` (a camera
facing the user, the default of the gesture node) left and right are the *user's* left and right, i.e. mirrored.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, Sequence

import numpy as np

NUM_LANDMARKS = 21
WRIST = 0
FINGER_JOINTS: dict[str, tuple[int, int, int, int]] = {
    "thumb": (1, 2, 3, 4), "index": (5, 6, 7, 8), "middle": (9, 10, 11, 12), "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20),
}
FINGERS = tuple(FINGER_JOINTS)
PALM_POINTS = (WRIST, 5, 9, 13, 17)          # the wrist and the four finger bases
HAND_CONNECTIONS: tuple[tuple[int, int], ...] = tuple(
    [(WRIST, 1), (WRIST, 5), (WRIST, 17), (5, 9), (9, 13), (13, 17)]
    + [(a, b) for joints in FINGER_JOINTS.values() for a, b in zip(joints[:-1], joints[1:])])

NONE = "none"
STATIC_GESTURES = ("open_palm", "fist", "pointing_up", "pointing_down", "thumb_left", "thumb_right", "thumbs_up",
                   "thumbs_down", "victory", "ok")
DYNAMIC_GESTURES = ("swipe_left", "swipe_right", "swipe_up", "swipe_down")
ALL_GESTURES = STATIC_GESTURES + DYNAMIC_GESTURES

# Image directions as (x right, y up) unit vectors.
_UP, _DOWN, _LEFT, _RIGHT = np.array([0.0, 1.0]), np.array([0.0, -1.0]), np.array([-1.0, 0.0]), np.array([1.0, 0.0])


class LandmarkError(ValueError):
    """Landmarks that cannot be a hand (wrong shape, non-finite values, a degenerate palm)."""


@dataclass(frozen=True)
class Hand:
    """One detected hand: 21 landmarks with x, y normalised to the image width/height ([0, 1], y down) and z the
    relative depth in MediaPipe's convention (wrist origin, about the scale of x; smaller = nearer the camera)."""
    landmarks: np.ndarray
    handedness: str = ""          # "left", "right" or "" when unknown (the person's own hand)
    score: float = 1.0            # detector confidence, 0..1

    def __post_init__(self) -> None:
        points = np.asarray(self.landmarks, dtype=float)
        if points.shape != (NUM_LANDMARKS, 3):
            raise LandmarkError(f"a hand has {NUM_LANDMARKS} landmarks of x, y, z; got an array of shape "
                                f"{points.shape}")
        if not np.all(np.isfinite(points)):
            raise LandmarkError("hand landmarks contain non-finite values")
        object.__setattr__(self, "landmarks", points)


@dataclass(frozen=True)
class HandFeatures:
    extension: dict[str, float]           # per finger: 0 curled .. 1 straight
    direction: dict[str, np.ndarray]      # per finger: unit (x right, y up) image direction, base → tip
    foreshortening: dict[str, float]      # per finger: 0 pointing at the camera .. 1 lying in the image plane
    palm_size: float                      # palm length or width (the longer), 3-D, in image heights
    palm_centre: np.ndarray               # (x, y) in image heights from the top-left corner, y down
    pinch: float                          # thumb tip ↔ index tip distance / palm size
    index_middle_spread_deg: float        # angle between the index and middle finger directions


@dataclass(frozen=True)
class ClassifierConfig:
    """Thresholds of the per-frame classifier (angles in degrees, lengths in palm sizes)."""
    bend_half_deg: float = 95.0           # total finger bend (MCP+PIP+DIP) at which extension is 0.5
    bend_softness_deg: float = 14.0       # width of the extension sigmoid
    thumb_bend_half_deg: float = 60.0     # thumb bend (CMC→tip) at which it counts half extended
    thumb_reach_half: float = 0.95        # thumb tip ↔ little-finger base (palm sizes) at which it counts half out
    direction_full_deg: float = 25.0      # a finger within this of a direction points that way (score 1)
    direction_zero_deg: float = 55.0      # ... and beyond this does not (score 0)
    pinch_half: float = 0.3               # thumb-index tip gap (palm sizes) at which "OK" counts half
    victory_spread_deg: float = 8.0       # index-middle angle at which "victory" counts half
    mirror_directions: bool = True        # left/right as the user facing the camera sees them

    @classmethod
    def from_dict(cls, values: Mapping[str, object] | None) -> "ClassifierConfig":
        return _dataclass_from_dict(cls, values)


def _dataclass_from_dict(cls, values):
    values = dict(values or {})
    known = set(cls.__dataclass_fields__)
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)} (known: {sorted(known)})")
    return cls(**values)


# ---------------------------------------------------------------------------------------------------- features
def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-9 or nb < 1e-9:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b) / (na * nb)))))


def _bend_deg(points: np.ndarray, chain: Sequence[int]) -> float:
    """Sum of the turning angles along a chain of joints: 0 for a straight finger."""
    return sum(_angle_deg(points[b] - points[a], points[c] - points[b])
               for a, b, c in zip(chain[:-2], chain[1:-1], chain[2:]))


def hand_features(hand: Hand, aspect: float = 4.0 / 3.0, config: ClassifierConfig = ClassifierConfig()
                  ) -> HandFeatures:
    """Features of one hand; ``aspect`` = image width / height (landmarks are normalised per axis)."""
    lm = hand.landmarks
    # Metric-ish coordinates in image heights: x and z scale with the width, y with the height.
    points = np.column_stack([lm[:, 0] * aspect, lm[:, 1], lm[:, 2] * aspect])
    index, middle, pinky = FINGER_JOINTS["index"], FINGER_JOINTS["middle"], FINGER_JOINTS["pinky"]
    # The longer of the palm's length and width: one of them keeps its size when the palm turns edge-on.
    palm_size = max(float(np.linalg.norm(points[middle[0]] - points[WRIST])),
                    float(np.linalg.norm(points[index[0]] - points[pinky[0]])))
    if palm_size < 1e-4:
        raise LandmarkError("degenerate hand: the palm has no size")
    extension, direction, foreshortening = {}, {}, {}
    for finger, (base, j1, j2, tip) in FINGER_JOINTS.items():
        if finger == "thumb":
            # The thumb bends little even when tucked: how far its tip reaches from the little finger's base
            # (across the palm) says more than its joint angles.
            bend = _bend_deg(points, (base, j1, j2, tip))
            reach = float(np.linalg.norm(points[tip] - points[pinky[0]])) / palm_size
            straight = _sigmoid((config.thumb_bend_half_deg - bend) / 12.0)
            out = _sigmoid((reach - config.thumb_reach_half) / 0.08)
            extension[finger] = math.sqrt(straight * out)
            start = j1
        else:
            bend = _bend_deg(points, (WRIST, base, j1, j2, tip))
            extension[finger] = _sigmoid((config.bend_half_deg - bend) / config.bend_softness_deg)
            start = base
        vector3 = points[tip] - points[start]
        planar = np.array([vector3[0], -vector3[1]])            # image y is down; directions use y up
        length3, length2 = float(np.linalg.norm(vector3)), float(np.linalg.norm(planar))
        direction[finger] = planar / length2 if length2 > 1e-9 else np.zeros(2)
        foreshortening[finger] = length2 / length3 if length3 > 1e-9 else 0.0
    pinch = float(np.linalg.norm(points[index[3]] - points[FINGER_JOINTS["thumb"][3]])) / palm_size
    spread = _angle_deg(points[index[3]] - points[index[0]], points[middle[3]] - points[middle[0]])
    palm_centre = points[list(PALM_POINTS), :2].mean(axis=0)
    return HandFeatures(extension, direction, foreshortening, palm_size, palm_centre, pinch, spread)


# ------------------------------------------------------------------------------------------ static gestures
# Finger states each static gesture needs: 1 extended, 0 curled, None either. Order: thumb, index, middle, ring,
# pinky. Gestures with a direction also need that finger to point that way.
_FINGER_PATTERNS: dict[str, tuple[int | None, ...]] = {
    "open_palm": (1, 1, 1, 1, 1),
    "fist": (0, 0, 0, 0, 0),
    "pointing_up": (None, 1, 0, 0, 0),
    "pointing_down": (None, 1, 0, 0, 0),
    "thumbs_up": (1, 0, 0, 0, 0),
    "thumbs_down": (1, 0, 0, 0, 0),
    "thumb_left": (1, 0, 0, 0, 0),
    "thumb_right": (1, 0, 0, 0, 0),
    "victory": (None, 1, 1, 0, 0),
    "ok": (None, None, 1, 1, 1),
}
_DIRECTIONS: dict[str, tuple[str, np.ndarray]] = {
    "pointing_up": ("index", _UP), "pointing_down": ("index", _DOWN),
    "thumbs_up": ("thumb", _UP), "thumbs_down": ("thumb", _DOWN),
    "thumb_left": ("thumb", _LEFT), "thumb_right": ("thumb", _RIGHT),
}


def _direction_score(features: HandFeatures, finger: str, target: np.ndarray, config: ClassifierConfig) -> float:
    angle = _angle_deg(features.direction[finger], target)
    full, zero = config.direction_full_deg, config.direction_zero_deg
    aligned = min(1.0, max(0.0, (zero - angle) / (zero - full)))
    # A finger pointing at the camera has no reliable image direction.
    visible = min(1.0, max(0.0, (features.foreshortening[finger] - 0.3) / 0.3))
    return aligned * visible


def static_scores(features: HandFeatures, config: ClassifierConfig = ClassifierConfig()) -> dict[str, float]:
    """Confidence 0..1 of every static gesture for one frame's features."""
    scores = {}
    mirror = np.array([-1.0, 1.0]) if config.mirror_directions else np.array([1.0, 1.0])
    for name, pattern in _FINGER_PATTERNS.items():
        score = 1.0
        for finger, wanted in zip(FINGERS, pattern):
            if wanted is not None:
                e = features.extension[finger]
                score *= e if wanted else 1.0 - e
        if name in _DIRECTIONS:
            finger, target = _DIRECTIONS[name]
            score *= _direction_score(features, finger, target * mirror, config)
        if name == "victory":
            score *= _sigmoid((features.index_middle_spread_deg - config.victory_spread_deg) / 2.5)
        elif name == "ok":
            score *= _sigmoid((config.pinch_half - features.pinch) / 0.06)
        scores[name] = score
    return scores


# ------------------------------------------------------------------------------------- smoothing, hysteresis
@dataclass(frozen=True)
class FilterConfig:
    hold_frames: int = 5              # frames a gesture must lead before it counts (stable)
    release_frames: int = 3           # frames below the exit threshold before a stable gesture is dropped
    smoothing: float = 0.5            # weight of the newest frame in the exponential average (1 = no smoothing)
    enter_confidence: float = 0.6     # smoothed confidence to become a candidate
    exit_confidence: float = 0.35     # a stable gesture holds while its smoothed confidence stays above this

    def __post_init__(self) -> None:
        if self.hold_frames < 1 or self.release_frames < 1:
            raise ValueError("hold_frames and release_frames must be >= 1")
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {self.smoothing}")
        if not 0.0 <= self.exit_confidence <= self.enter_confidence <= 1.0:
            raise ValueError("need 0 <= exit_confidence <= enter_confidence <= 1")


@dataclass(frozen=True)
class FilteredGesture:
    name: str             # stable gesture if any, else the leading candidate, else "none"
    confidence: float     # smoothed confidence of that gesture
    stable: bool


class GestureFilter:
    """Exponential smoothing of per-class scores, then hold-for-N-frames to enter and hysteresis to leave."""

    def __init__(self, config: FilterConfig = FilterConfig()):
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.smoothed: dict[str, float] = {}
        self.candidate = NONE
        self.candidate_frames = 0
        self.stable = NONE
        self.below_exit_frames = 0

    def update(self, scores: Mapping[str, float]) -> FilteredGesture:
        a = self.config.smoothing
        names = set(scores) | set(self.smoothed)
        self.smoothed = {n: a * scores.get(n, 0.0) + (1.0 - a) * self.smoothed.get(n, 0.0) for n in names}
        best = max(self.smoothed, key=self.smoothed.get) if self.smoothed else NONE
        candidate = best if best != NONE and self.smoothed[best] >= self.config.enter_confidence else NONE
        if candidate == self.candidate:
            self.candidate_frames += 1
        else:
            self.candidate, self.candidate_frames = candidate, 1
        if self.stable != NONE:
            if self.smoothed.get(self.stable, 0.0) < self.config.exit_confidence:
                self.below_exit_frames += 1
            else:
                self.below_exit_frames = 0
            if self.below_exit_frames >= self.config.release_frames:
                self.stable, self.below_exit_frames = NONE, 0
        held = self.candidate != NONE and self.candidate_frames >= self.config.hold_frames
        if held and self.candidate != self.stable:
            self.stable, self.below_exit_frames = self.candidate, 0
        if self.stable != NONE:
            return FilteredGesture(self.stable, self.smoothed[self.stable], True)
        return FilteredGesture(self.candidate, self.smoothed.get(self.candidate, 0.0), False)


# -------------------------------------------------------------------------------------------- dynamic gestures
@dataclass(frozen=True)
class SwipeConfig:
    window_s: float = 0.6             # the movement must happen within this time
    min_frames: int = 3               # ... over at least this many frames (a one-frame jump is a glitch)
    min_distance_palms: float = 1.5   # ... cover at least this many palm sizes
    min_distance_image: float = 0.15  # ... and this fraction of the image height (rejects jitter of tiny hands)
    min_straightness: float = 0.75    # displacement / path length
    min_axis_ratio: float = 1.8       # the main axis' displacement over the other's
    cooldown_s: float = 0.6           # no new swipe this soon after one
    max_gap_s: float = 0.25           # the hand lost this long breaks a trajectory

    @classmethod
    def from_dict(cls, values: Mapping[str, object] | None) -> "SwipeConfig":
        return _dataclass_from_dict(cls, values)


@dataclass(frozen=True)
class Swipe:
    name: str
    confidence: float
    distance_palms: float
    duration_s: float


class SwipeDetector:
    """Swipes from the palm-centre trajectory: a fast, straight movement mostly along one image axis."""

    def __init__(self, config: SwipeConfig = SwipeConfig(), mirror_directions: bool = True):
        self.config = config
        self.mirror = mirror_directions
        self.history: deque[tuple[float, np.ndarray, float]] = deque()
        self.last_swipe_t = -math.inf

    def reset(self) -> None:
        self.history.clear()

    def update(self, t: float, centre: np.ndarray, palm_size: float) -> Swipe | None:
        cfg = self.config
        if self.history and t - self.history[-1][0] > cfg.max_gap_s:
            self.history.clear()
        if self.history and t <= self.history[-1][0]:
            return None                                 # out-of-order or repeated frame
        self.history.append((t, np.asarray(centre, dtype=float), float(palm_size)))
        while self.history and t - self.history[0][0] > cfg.window_s:
            self.history.popleft()
        if t - self.last_swipe_t < cfg.cooldown_s or len(self.history) < max(2, cfg.min_frames):
            return None
        samples = list(self.history)
        end_t, end, _ = samples[-1]
        path = 0.0
        segment_lengths = [float(np.linalg.norm(b[1] - a[1])) for a, b in zip(samples[:-1], samples[1:])]
        for i in range(len(samples) - 2, -1, -1):       # from the newest start backwards: the shortest swipe wins
            path += segment_lengths[i]
            if len(samples) - i < cfg.min_frames:
                continue
            start_t, start, _ = samples[i]
            swipe = self._judge(end - start, path, float(np.median([s[2] for s in samples[i:]])), end_t - start_t)
            if swipe:
                self.last_swipe_t = t
                self.history.clear()
                return swipe
        return None

    def _judge(self, displacement: np.ndarray, path: float, palm: float, duration: float) -> Swipe | None:
        cfg = self.config
        dx, dy = float(displacement[0]), float(-displacement[1])        # y up
        distance = math.hypot(dx, dy)
        if distance < cfg.min_distance_image or distance < cfg.min_distance_palms * palm or path <= 0:
            return None
        straightness = distance / path
        major, minor = (abs(dx), abs(dy)) if abs(dx) >= abs(dy) else (abs(dy), abs(dx))
        if straightness < cfg.min_straightness or major < cfg.min_axis_ratio * minor:
            return None
        if abs(dx) >= abs(dy):
            rightwards = dx > 0
            if self.mirror:
                rightwards = not rightwards
            name = "swipe_right" if rightwards else "swipe_left"
        else:
            name = "swipe_up" if dy > 0 else "swipe_down"
        # Confidence grows with how far past the thresholds the movement went.
        margin = min(distance / (cfg.min_distance_palms * palm), distance / cfg.min_distance_image)
        confidence = min(1.0, 0.5 + 0.5 * (margin - 1.0)) * min(1.0, straightness / cfg.min_straightness)
        return Swipe(name, max(0.5, confidence), distance / palm, duration)


# --------------------------------------------------------------------------------------------------- recognizer
@dataclass(frozen=True)
class RecognizerConfig:
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    swipe: SwipeConfig = field(default_factory=SwipeConfig)
    min_hand_score: float = 0.5           # detections below this confidence are ignored
    preferred_hand: str = ""              # "left"/"right": that hand is the primary one when both are visible
    dynamic_enabled: bool = True


@dataclass(frozen=True)
class GestureResult:
    name: str
    confidence: float
    is_dynamic: bool
    stable: bool
    handedness: str
    num_hands: int
    hand: Hand | None
    scores: dict[str, float] = field(default_factory=dict)   # this frame's raw static scores


class GestureRecognizer:
    """Frames of detected hands in, one gesture result per frame out."""

    def __init__(self, config: RecognizerConfig = RecognizerConfig()):
        self.config = config
        self.filter = GestureFilter(config.filter)
        mirror = config.classifier.mirror_directions
        self.swipes = SwipeDetector(config.swipe, mirror)
        self.tracked_centre: np.ndarray | None = None
        self.tracked_handedness = ""
        self.last_seen_t: float | None = None

    def reset(self) -> None:
        self.filter.reset()
        self.swipes.reset()
        self.tracked_centre = None
        self.last_seen_t = None

    def select_primary(self, hands: Sequence[Hand], aspect: float) -> tuple[Hand, HandFeatures] | None:
        """The hand followed so far (nearest to its last position) if it is still there, else the preferred
        hand, else the largest (nearest the camera)."""
        candidates = []
        for hand in hands:
            try:
                candidates.append((hand, hand_features(hand, aspect, self.config.classifier)))
            except LandmarkError:
                continue
        if not candidates:
            return None
        if self.tracked_centre is not None:
            hand, feats = min(candidates, key=lambda c: float(np.linalg.norm(c[1].palm_centre - self.tracked_centre)))
            if np.linalg.norm(feats.palm_centre - self.tracked_centre) < 1.5 * feats.palm_size:
                return hand, feats
        preferred = [c for c in candidates if self.config.preferred_hand and c[0].handedness ==
                     self.config.preferred_hand]
        return max(preferred or candidates, key=lambda c: c[1].palm_size)

    def update(self, t: float, hands: Iterable[Hand], aspect: float = 4.0 / 3.0) -> GestureResult:
        """``t``: frame time (s); ``hands``: this frame's detections; ``aspect``: image width / height."""
        visible = [h for h in hands if h.score >= self.config.min_hand_score]
        chosen = self.select_primary(visible, aspect) if visible else None
        if chosen is None:
            # A frame or two without the hand (tracking lost in a fast movement) keeps the held gesture and the
            # trajectory; a longer absence starts afresh.
            if self.last_seen_t is None or t - self.last_seen_t > self.config.swipe.max_gap_s:
                self.reset()
            return GestureResult(NONE, 0.0, False, False, "", len(visible), None)
        self.last_seen_t = t
        hand, features = chosen
        if self.tracked_centre is not None and hand.handedness != self.tracked_handedness and \
                np.linalg.norm(features.palm_centre - self.tracked_centre) >= 1.5 * features.palm_size:
            self.filter.reset()                     # a different hand took over: its gesture starts afresh
            self.swipes.reset()
        self.tracked_centre, self.tracked_handedness = features.palm_centre, hand.handedness
        scores = static_scores(features, self.config.classifier)
        filtered = self.filter.update(scores)
        swipe = self.swipes.update(t, features.palm_centre, features.palm_size) if self.config.dynamic_enabled \
            else None
        if swipe is not None:
            return GestureResult(swipe.name, swipe.confidence, True, True, hand.handedness, len(visible), hand,
                                 scores)
        return GestureResult(filtered.name, filtered.confidence, False, filtered.stable, hand.handedness,
                             len(visible), hand, scores)


def recognizer_config(classifier: Mapping | None = None, filter: Mapping | None = None,
                      swipe: Mapping | None = None, **top) -> RecognizerConfig:
    """A RecognizerConfig from plain dicts (node parameters, YAML)."""
    return RecognizerConfig(classifier=ClassifierConfig.from_dict(classifier),
                            filter=_dataclass_from_dict(FilterConfig, filter),
                            swipe=SwipeConfig.from_dict(swipe), **top)


def mirrored(hand: Hand) -> Hand:
    """The same hand seen in a mirror (x flipped, handedness swapped): for tests of handedness invariance."""
    points = hand.landmarks.copy()
    points[:, 0] = 1.0 - points[:, 0]
    other = {"left": "right", "right": "left"}.get(hand.handedness, hand.handedness)
    return replace(hand, landmarks=points, handedness=other)
