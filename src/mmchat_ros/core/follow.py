"""Follow-me: pick a tracked target and turn its image box into heading-frame velocity commands. Pure, no rclpy.

Boxes (`TrackedObject`) are normalised to the image (0..1, x right, y down). The controller keeps the target

- centred horizontally by turning (yaw rate, positive = counter-clockwise = to the left),
- centred vertically by climbing or descending (a target below the image centre makes the vehicle descend),
- at a set apparent height (box height / image height) by flying forward or back: distance is inversely
  proportional to apparent height, so ``target_height / height - 1`` is the relative distance error.

Outputs are heading-frame velocities (x forward, y left, z up, yaw rate), clamped to the configured limits; the
flight controller's envelope clamps again. A target not seen for ``hold_timeout_s`` makes the controller command a
hover; one not seen for ``lost_timeout_s`` ends the follow with a LOST event (the node then says so and stops
publishing, so the flight controller's mux times the source out and hovers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum

from mmchat_ros.core.detections import TrackedObject

AIRBORNE_MODES = ("HOVER", "VELOCITY", "POSITION")     # flight modes in which follow commands are accepted
ENDING_MODES = ("LANDING", "LANDED", "EMERGENCY")       # flight modes that end a follow


@dataclass(frozen=True)
class FollowRequest:
    """Who to follow: a tracker id, or (track_id -1) the largest object of class_name."""
    class_name: str = "person"
    track_id: int = -1

    def describe(self) -> str:
        return f"{self.class_name} {self.track_id}" if self.track_id >= 0 else f"the largest {self.class_name}"


@dataclass(frozen=True)
class FollowConfig:
    target_height: float = 0.5            # wanted box height / image height
    desired_center_x: float = 0.5         # where the box centre should sit, fraction of the image width
    desired_center_y: float = 0.5         # ... and height (0 = top)
    yaw_gain: float = 1.5                 # rad/s per image width of horizontal offset
    forward_gain: float = 1.0             # m/s per unit of relative distance error (target_height/height - 1)
    vertical_gain: float = 1.0            # m/s per image height of vertical offset
    max_forward_mps: float = 1.0
    max_backward_mps: float = 0.5
    max_vertical_mps: float = 0.4
    max_yaw_rate: float = math.radians(45.0)   # rad/s
    center_deadband: float = 0.03         # image fraction within which the centring terms are zero
    size_deadband: float = 0.05           # relative distance error within which the forward term is zero
    smoothing_time_s: float = 0.2         # time constant of the box filter (detections jitter); 0 = none
    hold_timeout_s: float = 0.6           # target unseen this long → hover command
    lost_timeout_s: float = 3.0           # target unseen this long → LOST, follow ends
    reacquire_distance: float = 0.15      # a vanished track may be picked up again as a new id of the same class
                                          # whose box centre is within this image fraction of the last one
    min_score: float = 0.0                # ignore detections below this score

    def __post_init__(self):
        positive = {"target_height": self.target_height, "hold_timeout_s": self.hold_timeout_s,
                    "lost_timeout_s": self.lost_timeout_s}
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"follow config: {name} must be > 0, got {value}")
        non_negative = {"yaw_gain": self.yaw_gain, "forward_gain": self.forward_gain,
                        "vertical_gain": self.vertical_gain, "max_forward_mps": self.max_forward_mps,
                        "max_backward_mps": self.max_backward_mps, "max_vertical_mps": self.max_vertical_mps,
                        "max_yaw_rate": self.max_yaw_rate, "center_deadband": self.center_deadband,
                        "size_deadband": self.size_deadband, "smoothing_time_s": self.smoothing_time_s,
                        "reacquire_distance": self.reacquire_distance, "min_score": self.min_score}
        for name, value in non_negative.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"follow config: {name} must be >= 0, got {value}")
        if self.target_height > 1.0:
            raise ValueError(f"follow config: target_height is a fraction of the image height, got "
                             f"{self.target_height}")
        for name in ("desired_center_x", "desired_center_y"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"follow config: {name} must be within 0..1, got {getattr(self, name)}")
        if self.hold_timeout_s > self.lost_timeout_s:
            raise ValueError("follow config: hold_timeout_s must not exceed lost_timeout_s")


@dataclass(frozen=True)
class HeadingVelocityCommand:
    """Heading-frame velocity: forward, left, up (m/s), yaw rate (rad/s, counter-clockwise). The flight core's
    `VelocityCommand` is world-frame; the follow node publishes this one on /cmd_vel/follow in base_link."""
    forward: float = 0.0
    left: float = 0.0
    up: float = 0.0
    yaw_rate: float = 0.0

    @property
    def is_hover(self) -> bool:
        return self.forward == self.left == self.up == self.yaw_rate == 0.0


HOVER = HeadingVelocityCommand()


class FollowState(str, Enum):
    IDLE = "IDLE"              # nothing to follow: no commands
    SEARCHING = "SEARCHING"    # following, target not (yet / currently) seen: hover commands
    TRACKING = "TRACKING"      # following a target seen recently: steering commands

    def __str__(self) -> str:
        return self.value


class EventKind(str, Enum):
    STARTED = "STARTED"
    ACQUIRED = "ACQUIRED"        # the target was found (its track id is known)
    REACQUIRED = "REACQUIRED"    # a new track id picked up where the followed one vanished
    LOST = "LOST"                # unseen for lost_timeout_s: the follow ended
    STOPPED = "STOPPED"          # ended on request (or by the vehicle landing, a new command, ...)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class FollowEvent:
    kind: EventKind
    message: str
    track_id: int = -1


@dataclass(frozen=True)
class FollowOutput:
    command: HeadingVelocityCommand | None    # None: publish nothing (idle)
    state: FollowState
    events: tuple[FollowEvent, ...] = ()


def select_target(objects: list[TrackedObject], request: FollowRequest,
                  min_score: float = 0.0) -> TrackedObject | None:
    """The requested track id if it is in view, else (track_id -1 only) the largest object of the class."""
    candidates = [o for o in objects if o.track_id >= 0 and o.score >= min_score]
    if request.track_id >= 0:
        return next((o for o in candidates if o.track_id == request.track_id), None)
    of_class = [o for o in candidates if o.class_name == request.class_name]
    return max(of_class, key=lambda o: o.area, default=None)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _deadband(value: float, band: float) -> float:
    """Zero inside the band, continuous outside it (no jump at the edge)."""
    if abs(value) <= band:
        return 0.0
    return value - math.copysign(band, value)


def truncated_vertically(box: TrackedObject, margin: float = 0.01) -> bool:
    """The normalised box touches the top or bottom image edge: the object is larger than its box says."""
    return box.center_y - box.height / 2 <= margin or box.center_y + box.height / 2 >= 1.0 - margin


def steering_command(box: TrackedObject, config: FollowConfig) -> HeadingVelocityCommand:
    """Velocity that centres the box and brings it to the wanted apparent height."""
    offset_x = _deadband(box.center_x - config.desired_center_x, config.center_deadband)
    offset_y = _deadband(box.center_y - config.desired_center_y, config.center_deadband)
    yaw_rate = _clamp(-config.yaw_gain * offset_x, -config.max_yaw_rate, config.max_yaw_rate)
    up = _clamp(-config.vertical_gain * offset_y, -config.max_vertical_mps, config.max_vertical_mps)
    distance_error = config.target_height / max(box.height, 1e-3) - 1.0     # > 0: too far
    forward = config.forward_gain * _deadband(distance_error, config.size_deadband)
    if truncated_vertically(box):
        forward = min(forward, 0.0)       # a cut-off box looks smaller than the object is: never close in on it
    # Closing in while the target is far off-centre mostly flies past it: scale forward motion down until the
    # turn has brought the target towards the centre.
    forward *= max(0.0, 1.0 - abs(box.center_x - config.desired_center_x) / 0.5)
    forward = _clamp(forward, -config.max_backward_mps, config.max_forward_mps)
    return HeadingVelocityCommand(forward=forward, up=up, yaw_rate=yaw_rate)


@dataclass
class _Followed:
    request: FollowRequest
    started: float
    track_id: int = -1                  # locked track id once acquired
    last_seen: float | None = None
    box: TrackedObject | None = None    # filtered box, normalised
    others: set[int] = field(default_factory=set)   # ids seen beside the target: other objects, never re-acquired


class FollowController:
    """The follow behaviour's state: start/stop requests, detections in, commands out. Times are seconds on any
    monotonic clock."""

    def __init__(self, config: FollowConfig = FollowConfig()):
        self.config = config
        self._followed: _Followed | None = None

    # ------------------------------------------------------------------------------------------------ status
    @property
    def active(self) -> bool:
        return self._followed is not None

    @property
    def request(self) -> FollowRequest | None:
        return self._followed.request if self._followed else None

    @property
    def track_id(self) -> int:
        return self._followed.track_id if self._followed else -1

    def state(self, now: float) -> FollowState:
        followed = self._followed
        if followed is None:
            return FollowState.IDLE
        if followed.last_seen is None or now - followed.last_seen > self.config.hold_timeout_s:
            return FollowState.SEARCHING
        return FollowState.TRACKING

    # ---------------------------------------------------------------------------------------------- requests
    def start(self, request: FollowRequest, now: float) -> FollowEvent:
        """Follow ``request`` from now on (replacing any follow in progress)."""
        if not request.class_name and request.track_id < 0:
            raise ValueError("a follow request needs a class name or a track id")
        self._followed = _Followed(request, now)
        event = FollowEvent(EventKind.STARTED, f"following {request.describe()}", request.track_id)
        return event

    def stop(self, reason: str) -> FollowEvent | None:
        """End the follow; None if nothing was being followed."""
        if self._followed is None:
            return None
        followed, self._followed = self._followed, None
        return FollowEvent(EventKind.STOPPED, f"stopped following {followed.request.describe()}: {reason}",
                           followed.track_id)

    # -------------------------------------------------------------------------------------------- detections
    def observe(self, objects: list[TrackedObject], now: float) -> tuple[FollowEvent, ...]:
        """One frame's tracked objects. Returns the events it caused (target acquired or re-acquired)."""
        followed = self._followed
        if followed is None:
            return ()
        config = self.config
        events: list[FollowEvent] = []
        if followed.track_id < 0:
            box = select_target(objects, followed.request, config.min_score)
            if box is not None:
                followed.track_id = box.track_id
                events.append(FollowEvent(EventKind.ACQUIRED, f"acquired {box.class_name} {box.track_id}",
                                          box.track_id))
        else:
            box = next((o for o in objects if o.track_id == followed.track_id and o.score >= config.min_score),
                       None)
            if box is None and followed.box is not None:
                box = self._reacquire(objects, followed)
                if box is not None:
                    events.append(FollowEvent(
                        EventKind.REACQUIRED, f"track {followed.track_id} vanished; continuing with "
                                              f"{box.class_name} {box.track_id} where it was", box.track_id))
                    followed.track_id = box.track_id
        if box is None:
            return tuple(events)
        followed.others.update(o.track_id for o in objects if o.track_id >= 0 and o.track_id != box.track_id)
        followed.box = self._filtered(followed, box, now)
        followed.last_seen = now
        return tuple(events)

    def _reacquire(self, objects: list[TrackedObject], followed: _Followed) -> TrackedObject | None:
        """A new track of the same class whose centre is near the vanished one's last centre (trackers re-number
        an object they lost for longer than their buffer). Ids seen beside the target are other objects."""
        last = followed.box
        assert last is not None
        near = [o for o in objects
                if o.track_id >= 0 and o.track_id != followed.track_id and o.track_id not in followed.others
                and o.class_name == last.class_name
                and o.score >= self.config.min_score
                and math.hypot(o.center_x - last.center_x, o.center_y - last.center_y)
                <= self.config.reacquire_distance]
        return min(near, key=lambda o: math.hypot(o.center_x - last.center_x, o.center_y - last.center_y),
                   default=None)

    def _filtered(self, followed: _Followed, box: TrackedObject, now: float) -> TrackedObject:
        previous, tau = followed.box, self.config.smoothing_time_s
        if previous is None or previous.track_id != box.track_id or followed.last_seen is None or tau <= 0:
            return box
        alpha = 1.0 - math.exp(-max(now - followed.last_seen, 0.0) / tau)
        mix = lambda a, b: a + alpha * (b - a)  # noqa: E731
        return replace(box, center_x=mix(previous.center_x, box.center_x),
                       center_y=mix(previous.center_y, box.center_y),
                       width=mix(previous.width, box.width), height=mix(previous.height, box.height))

    # ---------------------------------------------------------------------------------------------- commands
    def update(self, now: float) -> FollowOutput:
        """The command to publish now (call at the node's steady rate)."""
        followed = self._followed
        if followed is None:
            return FollowOutput(None, FollowState.IDLE)
        since = followed.last_seen if followed.last_seen is not None else followed.started
        if now - since > self.config.lost_timeout_s:
            self._followed = None
            what = (f"{followed.request.class_name} {followed.track_id}" if followed.track_id >= 0
                    else followed.request.describe())
            seen = "not seen for" if followed.last_seen is not None else "not found within"
            return FollowOutput(None, FollowState.IDLE, (FollowEvent(
                EventKind.LOST, f"lost {what}: {seen} {self.config.lost_timeout_s:.1f} s", followed.track_id),))
        state = self.state(now)
        if state is FollowState.SEARCHING or followed.box is None:
            return FollowOutput(HOVER, FollowState.SEARCHING)
        return FollowOutput(steering_command(followed.box, self.config), FollowState.TRACKING)


def vehicle_gate(mode: str) -> tuple[bool, bool]:
    """(may publish, must stop) for the flight controller's mode: commands only go out while airborne; landing,
    landed or emergency ends the follow. An unknown mode ('' before the first flight state) publishes."""
    if mode in ENDING_MODES:
        return False, True
    return (mode in AIRBORNE_MODES or mode == ""), False
