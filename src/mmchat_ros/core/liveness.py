"""Liveness: a photo or a screen replay must not authorise. Challenge–response on MediaPipe Face Mesh landmarks.

When a new operator session starts (and again at every re-authorisation) the operator is asked to blink or to turn
the head left or right, chosen at random, and must do it within ``timeout_s``:

  * blink: the eye aspect ratio (EAR, Soukupová & Čech 2016: eyelid gap over eye width, both eyes averaged) falls
    below ``closed_fraction`` of the operator's open-eye baseline and comes back above ``reopen_fraction`` of it;
  * turn: the yaw ratio ((|nose-cheek_r| - |nose-cheek_l|) / |cheek_r-cheek_l|, 0 facing the camera, ±1 in
    profile) moves from the baseline past ``turn_threshold`` in the asked direction.

A printed photo cannot blink. Moving or rotating it in front of the camera (in plane, or tilting it: a flat picture
under the near-affine projection of a face-sized object scales its horizontal distances alike) leaves both ratios
where they were. What this does not stop: a video of the operator that happens to do the asked thing in time
(a random challenge makes a pre-recorded one unlikely to), a 3-D mask, or a live replay of the operator's face.

Landmarks are MediaPipe Face Mesh's 468 (x, y) in pixels (or any consistent unit); the image x axis runs to the
right. Pure logic: no MediaPipe here (backends/face_mesh.py runs it), no rclpy.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

# Face Mesh indices: p1..p6 of each eye (corner, upper, upper, corner, lower, lower), nose tip, cheek edges.
LEFT_EYE = (33, 160, 158, 133, 153, 144)      # the eye on the image's left (the person's right)
RIGHT_EYE = (362, 385, 387, 263, 373, 380)
NOSE_TIP = 1
CHEEK_IMAGE_LEFT, CHEEK_IMAGE_RIGHT = 234, 454

BLINK, TURN_LEFT, TURN_RIGHT = "blink", "turn left", "turn right"
CHALLENGES = (BLINK, TURN_LEFT, TURN_RIGHT)
PROMPTS = {BLINK: "Please blink.", TURN_LEFT: "Please turn your head to your left.",
           TURN_RIGHT: "Please turn your head to your right."}
# Turning to one's own left brings the nose towards the image's right on an unmirrored camera: yaw ratio rises.
TURN_SIGN = {TURN_LEFT: +1.0, TURN_RIGHT: -1.0}

WAITING, BASELINE, ISSUED, PASSED, FAILED = "waiting", "baseline", "issued", "passed", "failed"


def eye_aspect_ratio(points: np.ndarray, eye=LEFT_EYE) -> float:
    p = np.asarray(points, dtype=np.float64)[list(eye), :2]
    width = np.linalg.norm(p[0] - p[3])
    if width <= 1e-9:
        return 0.0
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width))


def mean_ear(points: np.ndarray) -> float:
    return 0.5 * (eye_aspect_ratio(points, LEFT_EYE) + eye_aspect_ratio(points, RIGHT_EYE))


def yaw_ratio(points: np.ndarray) -> float:
    p = np.asarray(points, dtype=np.float64)[:, :2]
    nose, left, right = p[NOSE_TIP], p[CHEEK_IMAGE_LEFT], p[CHEEK_IMAGE_RIGHT]
    span = np.linalg.norm(right - left)
    if span <= 1e-9:
        return 0.0
    return float((np.linalg.norm(nose - left) - np.linalg.norm(nose - right)) / span)


@dataclass(frozen=True)
class LivenessConfig:
    timeout_s: float = 6.0             # time to do what was asked, from the prompt
    baseline_frames: int = 3           # neutral frames (eyes open, facing) measured before the prompt
    closed_fraction: float = 0.6       # EAR below this share of the open-eye baseline = eyes closed
    reopen_fraction: float = 0.85      # ... and above this share again = opened: a blink
    min_open_ear: float = 0.15         # a baseline EAR below this is no open eye (face too small, or eyes shut)
    neutral_yaw: float = 0.25          # |yaw ratio| of a baseline frame at most
    turn_threshold: float = 0.3        # yaw ratio change past the baseline in the asked direction
    max_jump: float = 0.5              # face centre moving more than this share of its width between frames: a swap

    def __post_init__(self):
        if not 0.0 < self.closed_fraction < self.reopen_fraction <= 1.0:
            raise ValueError("need 0 < closed_fraction < reopen_fraction <= 1")
        if self.timeout_s <= 0 or self.baseline_frames < 1 or self.turn_threshold <= 0:
            raise ValueError("timeout_s, baseline_frames and turn_threshold must be positive")


@dataclass
class LivenessChallenge:
    """One challenge for one session: feed it every analysed frame's landmarks (or None: no face) with its time.
    ``state`` goes waiting → baseline → issued → passed | failed; ``prompt`` is what to tell the operator."""
    config: LivenessConfig = field(default_factory=LivenessConfig)
    rng: random.Random = field(default_factory=random.SystemRandom)
    state: str = WAITING
    kind: str = ""
    issued_at: float = 0.0
    reason: str = ""
    _ears: list = field(default_factory=list)
    _yaws: list = field(default_factory=list)
    _closed: bool = False
    _last_centre: np.ndarray | None = None
    _last_width: float = 0.0

    @property
    def done(self) -> bool:
        return self.state in (PASSED, FAILED)

    @property
    def prompt(self) -> str:
        return PROMPTS.get(self.kind, "") if self.state == ISSUED else ""

    def _fail(self, reason: str) -> str:
        self.state, self.reason = FAILED, reason
        return self.state

    def observe(self, points: np.ndarray | None, now: float) -> str:
        if self.done:
            return self.state
        if self.state == ISSUED and now - self.issued_at > self.config.timeout_s:
            return self._fail(f"did not {self.kind} within {self.config.timeout_s:.0f} s")
        if points is None:
            return self.state
        p = np.asarray(points, dtype=np.float64)[:, :2]
        centre, width = p.mean(axis=0), float(np.ptp(p[:, 0]))
        if self._last_centre is not None and width > 0 and \
                np.linalg.norm(centre - self._last_centre) > self.config.max_jump * max(width, self._last_width):
            if self.state == ISSUED:
                return self._fail("the face jumped between frames (another face?)")
            self._ears.clear()
            self._yaws.clear()
        self._last_centre, self._last_width = centre, width
        ear, yaw = mean_ear(p), yaw_ratio(p)
        if self.state in (WAITING, BASELINE):
            if ear >= self.config.min_open_ear and abs(yaw) <= self.config.neutral_yaw:
                self._ears.append(ear)
                self._yaws.append(yaw)
                self.state = BASELINE
            if len(self._ears) >= self.config.baseline_frames:
                self.kind = self.rng.choice(CHALLENGES)
                self.state, self.issued_at = ISSUED, now
            return self.state
        base_ear, base_yaw = float(np.median(self._ears)), float(np.median(self._yaws))
        if self.kind == BLINK:
            if ear < self.config.closed_fraction * base_ear:
                self._closed = True
            elif self._closed and ear > self.config.reopen_fraction * base_ear:
                self.state, self.reason = PASSED, f"blinked {now - self.issued_at:.1f} s after the prompt"
        else:
            if TURN_SIGN[self.kind] * (yaw - base_yaw) > self.config.turn_threshold:
                self.state, self.reason = PASSED, f"turned {now - self.issued_at:.1f} s after the prompt"
            elif -TURN_SIGN[self.kind] * (yaw - base_yaw) > self.config.turn_threshold:
                return self._fail(f"turned the wrong way (asked: {self.kind})")
        return self.state
