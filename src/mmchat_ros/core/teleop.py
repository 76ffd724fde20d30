"""Gesture teleoperation: recognised gestures → velocity commands and actions. Pure Python, no ROS.

The mapping is data (config/gestures.yaml): each gesture either triggers an *action* (take off, land, follow
mode, ...) or commands a *velocity* in the heading frame (x forward, y left, z up, yaw rate counter-clockwise);
a dynamic gesture (swipe) commands its velocity for ``duration_s`` after it is seen.

Rules (``TeleopController``):
- only *stable* gestures (held for the recogniser's N frames) with enough confidence count;
- an action fires once when its gesture becomes stable (edge-triggered): holding it does not repeat it, and the
  same action cannot fire again within ``action_cooldown_s``;
- while a hand is visible teleop holds control: the stable gesture's velocity, or zero (hover) for any other;
- dead-man: no hand for ``deadman_ms`` → zero velocity for ``stop_ms``, then no command at all, so the flight
  controller's mux hands control back (to a lower-priority source, or hover). A shorter dropout keeps the last
  command (detections flicker);
- every velocity is clamped to the limits; nothing is commanded while the vehicle is not flying (the flight
  controller would refuse it), actions still are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

ACTIONS = ("takeoff", "land", "emergency_stop", "follow_on", "follow_off", "follow_toggle")
_VELOCITY_KEYS = {"x", "y", "z", "yaw_rate_deg_s"}
_BINDING_KEYS = {"action", "velocity", "duration_s", "description"}
_TELEOP_KEYS = {"deadman_ms", "stop_ms", "action_cooldown_s", "min_confidence", "limits"}
_LIMIT_KEYS = {"max_speed_xy", "max_speed_z", "max_yaw_rate_deg_s"}


class MappingError(ValueError):
    """A gesture mapping that cannot be used; the message names the offending entry."""


@dataclass(frozen=True)
class Velocity:
    """Heading-frame velocity: x forward, y left, z up (m/s), yaw rate counter-clockwise seen from above (rad/s)."""
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    yaw_rate: float = 0.0

    def is_zero(self) -> bool:
        return self.x == 0.0 and self.y == 0.0 and self.z == 0.0 and self.yaw_rate == 0.0


ZERO = Velocity()


@dataclass(frozen=True)
class Binding:
    gesture: str
    action: str | None = None
    velocity: Velocity | None = None
    duration_s: float = 0.0          # dynamic gestures: how long their velocity lasts
    description: str = ""


@dataclass(frozen=True)
class Limits:
    max_speed_xy: float = 1.0
    max_speed_z: float = 0.5
    max_yaw_rate_deg_s: float = 45.0

    def clamp(self, v: Velocity) -> Velocity:
        horizontal = math.hypot(v.x, v.y)
        scale = self.max_speed_xy / horizontal if horizontal > self.max_speed_xy else 1.0
        yaw_limit = math.radians(self.max_yaw_rate_deg_s)
        return Velocity(v.x * scale, v.y * scale, max(-self.max_speed_z, min(self.max_speed_z, v.z)),
                        max(-yaw_limit, min(yaw_limit, v.yaw_rate)))


@dataclass(frozen=True)
class TeleopConfig:
    bindings: dict[str, Binding] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    deadman_ms: float = 500.0         # no hand this long → zero velocity
    stop_ms: float = 300.0            # ... sent this long, then nothing (the mux releases teleop)
    action_cooldown_s: float = 2.0    # the same action at most once per this period
    min_confidence: float = 0.5       # gestures below this confidence are ignored

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TeleopConfig":
        if not isinstance(data, Mapping):
            raise MappingError("a gesture mapping is a mapping with 'gestures' (and optionally 'teleop')")
        unknown = set(data) - {"gestures", "teleop"}
        if unknown:
            raise MappingError(f"unknown top-level keys {sorted(unknown)} (expected 'gestures', 'teleop')")
        teleop = dict(data.get("teleop") or {})
        unknown = set(teleop) - _TELEOP_KEYS
        if unknown:
            raise MappingError(f"unknown teleop keys {sorted(unknown)} (known: {sorted(_TELEOP_KEYS)})")
        limits_spec = dict(teleop.pop("limits", None) or {})
        unknown = set(limits_spec) - _LIMIT_KEYS
        if unknown:
            raise MappingError(f"unknown limits keys {sorted(unknown)} (known: {sorted(_LIMIT_KEYS)})")
        limits = Limits(**{k: _positive(f"limits.{k}", v) for k, v in limits_spec.items()})
        scalars = {k: _positive(k, v, allow_zero=k != "deadman_ms") for k, v in teleop.items()}
        if "min_confidence" in scalars and scalars["min_confidence"] > 1.0:
            raise MappingError(f"min_confidence must be in [0, 1], got {scalars['min_confidence']}")
        gestures = data.get("gestures") or {}
        if not isinstance(gestures, Mapping):
            raise MappingError("'gestures' must map gesture names to bindings")
        bindings = {str(name): _binding(str(name), spec) for name, spec in gestures.items()}
        return cls(bindings=bindings, limits=limits, **scalars)

    @classmethod
    def load(cls, path: str | Path) -> "TeleopConfig":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise MappingError(f"cannot read gesture mapping {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise MappingError(f"gesture mapping {path} is not valid YAML: {exc}") from exc
        try:
            return cls.from_dict(data or {})
        except MappingError as exc:
            raise MappingError(f"{path}: {exc}") from exc


def _positive(name: str, value: Any, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MappingError(f"{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise MappingError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return float(value)


def _binding(gesture: str, spec: Any) -> Binding:
    if not isinstance(spec, Mapping):
        raise MappingError(f"gesture '{gesture}': expected a mapping with 'action' or 'velocity', got {spec!r}")
    unknown = set(spec) - _BINDING_KEYS
    if unknown:
        raise MappingError(f"gesture '{gesture}': unknown keys {sorted(unknown)} (known: {sorted(_BINDING_KEYS)})")
    action, velocity_spec = spec.get("action"), spec.get("velocity")
    if (action is None) == (velocity_spec is None):
        raise MappingError(f"gesture '{gesture}': give exactly one of 'action' or 'velocity'")
    if action is not None and action not in ACTIONS:
        raise MappingError(f"gesture '{gesture}': unknown action '{action}' (actions: {', '.join(ACTIONS)})")
    velocity = None
    if velocity_spec is not None:
        if not isinstance(velocity_spec, Mapping):
            raise MappingError(f"gesture '{gesture}': velocity must be a mapping of {sorted(_VELOCITY_KEYS)}")
        unknown = set(velocity_spec) - _VELOCITY_KEYS
        if unknown:
            raise MappingError(f"gesture '{gesture}': unknown velocity keys {sorted(unknown)} "
                               f"(known: {sorted(_VELOCITY_KEYS)})")
        values = {}
        for key, value in velocity_spec.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise MappingError(f"gesture '{gesture}': velocity.{key} must be a finite number, got {value!r}")
            values[key] = float(value)
        velocity = Velocity(values.get("x", 0.0), values.get("y", 0.0), values.get("z", 0.0),
                            math.radians(values.get("yaw_rate_deg_s", 0.0)))
    duration = _positive(f"gesture '{gesture}': duration_s", spec.get("duration_s", 0.0))
    return Binding(gesture, action, velocity, duration, str(spec.get("description", "")))


# ------------------------------------------------------------------------------------------------- controller
@dataclass(frozen=True)
class GestureInput:
    name: str
    confidence: float = 1.0
    stable: bool = True
    is_dynamic: bool = False
    num_hands: int = 1


@dataclass(frozen=True)
class TeleopOutput:
    velocity: Velocity | None        # the command to send now; None: send nothing
    actions: tuple[str, ...] = ()    # actions to perform now
    reason: str = ""                 # why: for logs and the debug topic


class TeleopController:
    def __init__(self, config: TeleopConfig):
        self.config = config
        self.last_hand_t: float | None = None
        self.last_message_t: float | None = None
        self.last_velocity = ZERO
        self.last_reason = ""
        self.latched: str | None = None                # the action gesture that fired and is still held
        self.last_fired: dict[str, float] = {}
        self.impulse: tuple[Velocity, float, str] | None = None     # (velocity, until, gesture)

    def on_gesture(self, t: float, gesture: GestureInput, flying: bool = True) -> TeleopOutput:
        """A gesture message at time ``t`` (s, any monotonic clock); ``flying``: the vehicle accepts motion."""
        self.last_message_t = t
        cfg = self.config
        binding = cfg.bindings.get(gesture.name)
        counts = gesture.stable and gesture.confidence >= cfg.min_confidence and gesture.num_hands > 0
        actions: list[str] = []
        if gesture.num_hands > 0:
            self.last_hand_t = t
        # ---- actions: once per stable appearance, and not again within the cooldown
        if counts and binding is not None and binding.action is not None:
            if gesture.is_dynamic or self.latched != gesture.name:
                if t - self.last_fired.get(binding.action, -math.inf) >= cfg.action_cooldown_s:
                    actions.append(binding.action)
                    self.last_fired[binding.action] = t
                if not gesture.is_dynamic:
                    self.latched = gesture.name
        elif gesture.num_hands > 0 and not (gesture.stable and gesture.name == self.latched):
            self.latched = None          # the hand shows something else: the action may fire again next time
        # ---- velocity
        if counts and binding is not None and binding.velocity is not None and gesture.is_dynamic:
            self.impulse = (cfg.limits.clamp(binding.velocity), t + binding.duration_s, gesture.name)
        if gesture.num_hands > 0:
            if self.impulse is not None and t < self.impulse[1]:
                velocity, reason = self.impulse[0], f"{self.impulse[2]}: its velocity for its duration"
            elif counts and binding is not None and binding.velocity is not None and not gesture.is_dynamic:
                velocity, reason = cfg.limits.clamp(binding.velocity), f"gesture {gesture.name}"
            else:
                velocity, reason = ZERO, f"hover: hand visible, {gesture.name if counts else 'no stable gesture'}"
            self.last_velocity, self.last_reason = velocity, reason
            return self._gate(TeleopOutput(velocity, tuple(actions), reason), flying)
        return self._gate(replace(self._without_hand(t), actions=tuple(actions)), flying)

    def on_tick(self, t: float, flying: bool = True) -> TeleopOutput | None:
        """Periodic check: when gesture messages have stopped coming for the dead-man time, the dead-man rule
        applies as if no hand were seen (None while messages are still arriving: they drive the output)."""
        if self.last_message_t is not None and t - self.last_message_t < self.config.deadman_ms / 1000.0:
            return None
        return self._gate(self._without_hand(t), flying)

    def _without_hand(self, t: float) -> TeleopOutput:
        cfg = self.config
        if self.last_hand_t is None:
            return TeleopOutput(None, (), "no hand seen yet")
        gone = t - self.last_hand_t
        if gone <= cfg.deadman_ms / 1000.0:
            velocity = self.last_velocity
            if self.impulse is not None and t < self.impulse[1]:
                velocity = self.impulse[0]
            return TeleopOutput(velocity, (), f"hand lost {gone * 1000:.0f} ms ago: keeping {self.last_reason}")
        self.impulse = None
        self.last_velocity = ZERO
        self.latched = None
        if gone <= (cfg.deadman_ms + cfg.stop_ms) / 1000.0:
            return TeleopOutput(ZERO, (), f"dead-man: no hand for {cfg.deadman_ms:g} ms, stopping")
        return TeleopOutput(None, (), "dead-man: no hand, control released")

    @staticmethod
    def _gate(output: TeleopOutput, flying: bool) -> TeleopOutput:
        if flying or output.velocity is None:
            return output
        return TeleopOutput(None, output.actions, f"not flying: no velocity ({output.reason})")

