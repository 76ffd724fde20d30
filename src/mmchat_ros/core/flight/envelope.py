"""Safety envelope: what commands may ask of the vehicle.

- any non-finite number (NaN, ±inf) is rejected, naming the field;
- velocity commands are clamped to the horizontal / vertical speed and yaw-rate limits, and their outward
  component near a geofence wall is limited to a speed the vehicle can brake from before the margin, reaching
  zero at the margin (and beyond the wall only inward motion is left);
- position targets outside the geofence box or above the altitude ceiling are rejected, naming the bound;
- a battery at or below the low threshold asks for a landing.

Every rejection is counted per reason code and the last reason kept, for the diagnostics topic.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

_AXES = ("x", "y", "z")


@dataclass(frozen=True)
class EnvelopeConfig:
    max_speed_xy: float = 2.0                                   # m/s
    max_speed_z: float = 1.0                                    # m/s
    max_yaw_rate_deg_s: float = 60.0
    max_altitude_m: float = 10.0                                # ceiling on world z
    geofence_min: tuple[float, float, float] = (-20.0, -20.0, -1.0)   # world x, y, z, m
    geofence_max: tuple[float, float, float] = (20.0, 20.0, 10.0)
    fence_margin_m: float = 0.5                                 # outward motion stops this far inside the fence
    fence_brake_decel_m_s2: float = 1.5                         # braking the outward speed profile assumes
    low_battery_fraction: float = 0.2                           # 0..1; at or below it, land

    def __post_init__(self) -> None:
        for name in ("max_speed_xy", "max_speed_z", "max_yaw_rate_deg_s", "max_altitude_m",
                     "fence_brake_decel_m_s2"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0.0):
                raise ValueError(f"envelope {name} must be a finite number > 0, got {value!r}")
        if not (math.isfinite(self.fence_margin_m) and self.fence_margin_m >= 0.0):
            raise ValueError(f"envelope fence_margin_m must be >= 0, got {self.fence_margin_m!r}")
        if not 0.0 <= self.low_battery_fraction < 1.0:
            raise ValueError(f"envelope low_battery_fraction must be in [0, 1), got {self.low_battery_fraction!r}")
        lo, hi = tuple(map(float, self.geofence_min)), tuple(map(float, self.geofence_max))
        if len(lo) != 3 or len(hi) != 3 or not all(math.isfinite(v) for v in (*lo, *hi)):
            raise ValueError("envelope geofence_min / geofence_max must be three finite numbers each")
        for axis, a, b in zip(_AXES, lo, hi):
            if b - a <= 2.0 * self.fence_margin_m:
                raise ValueError(f"geofence {axis}: [{a}, {b}] is not wider than twice the margin")
        object.__setattr__(self, "geofence_min", lo)
        object.__setattr__(self, "geofence_max", hi)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | None) -> "EnvelopeConfig":
        spec = dict(spec or {})
        unknown = set(spec) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown envelope keys {sorted(unknown)}")
        for key in ("geofence_min", "geofence_max"):
            if key in spec:
                spec[key] = tuple(float(v) for v in spec[key])
        return cls(**spec)

    @property
    def ceiling_m(self) -> float:
        return min(self.max_altitude_m, self.geofence_max[2])


# The envelope fields a node sets from its parameters (the flight controller's, live).
ENVELOPE_PARAMETERS = ("max_speed_xy", "max_speed_z", "max_yaw_rate_deg_s", "max_altitude_m", "geofence_min",
                       "geofence_max", "low_battery_fraction")


def envelope_to_json(config: EnvelopeConfig) -> str:
    """The envelope as the flight controller publishes it on /flight/envelope (std_msgs/String)."""
    return json.dumps(asdict(config), sort_keys=True)


def envelope_from_json(text: str) -> EnvelopeConfig:
    return EnvelopeConfig.from_dict(json.loads(text))


@dataclass(frozen=True)
class EnvelopeHardLimits:
    """How far the envelope may be widened while the vehicle runs: speeds and yaw rate no more than the
    controller flies the airframe at (config/flight_gains.yaml limits), the geofence and ceiling no wider than
    the airframe's ``envelope_limits`` (config/airframes.yaml), or than the start-up envelope where it has none."""
    max_speed_xy: float
    max_speed_z: float
    max_yaw_rate_deg_s: float
    max_altitude_m: float
    geofence_min: tuple[float, float, float]
    geofence_max: tuple[float, float, float]
    source: str

    @classmethod
    def of(cls, airframe_name: str, airframe_limits: Mapping[str, Any], control_limits: Any,
           startup: EnvelopeConfig) -> "EnvelopeHardLimits":
        unknown = set(airframe_limits) - {"max_altitude_m", "geofence_min", "geofence_max"}
        if unknown:
            raise ValueError(f"airframe '{airframe_name}': unknown envelope_limits keys {sorted(unknown)}")
        return cls(float(control_limits.max_speed_xy), float(control_limits.max_speed_z),
                   float(control_limits.max_yaw_rate_deg_s),
                   float(airframe_limits.get("max_altitude_m", startup.max_altitude_m)),
                   tuple(float(v) for v in airframe_limits.get("geofence_min", startup.geofence_min)),
                   tuple(float(v) for v in airframe_limits.get("geofence_max", startup.geofence_max)),
                   f"airframe '{airframe_name}'")

    def problem(self, config: EnvelopeConfig) -> str | None:
        """Why ``config`` goes beyond these limits (the first bound it breaks), or None."""
        for name in ("max_speed_xy", "max_speed_z", "max_yaw_rate_deg_s", "max_altitude_m"):
            value, limit = getattr(config, name), getattr(self, name)
            if value > limit:
                return f"{name}={value:g} is above the {self.source} hard limit {limit:g}"
        for i, axis in enumerate(_AXES):
            if config.geofence_min[i] < self.geofence_min[i]:
                return (f"geofence_min {axis}={config.geofence_min[i]:g} is beyond the {self.source} hard limit "
                        f"{self.geofence_min[i]:g}")
            if config.geofence_max[i] > self.geofence_max[i]:
                return (f"geofence_max {axis}={config.geofence_max[i]:g} is beyond the {self.source} hard limit "
                        f"{self.geofence_max[i]:g}")
        return None


@dataclass(frozen=True)
class EnvelopeCheck:
    """Result of a check: ok, or rejected with a reason (and its code); ``value`` is the possibly limited command."""
    ok: bool
    reason: str = ""
    code: str = ""
    value: Any = None
    limited: bool = False        # the command was accepted but clamped

    def __bool__(self) -> bool:
        return self.ok


def first_non_finite(**values: Any) -> str | None:
    """'name=value is not a finite number' for the first argument that is not a finite real, else None."""
    for name, value in values.items():
        if type(value) is float or type(value) is int:       # the common case, checked without numpy
            if not math.isfinite(value):
                return f"{name}={value!r} is not a finite number"
            continue
        items = np.ravel(np.asarray(value, dtype=object)) if np.ndim(value) else [value]
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(float(item)):
                return f"{name}={item!r} is not a finite number"
    return None


class SafetyEnvelope:
    def __init__(self, config: EnvelopeConfig | None = None):
        self.reconfigure(config or EnvelopeConfig())
        self.rejections: Counter[str] = Counter()
        self.last_rejection = ""

    def reconfigure(self, config: EnvelopeConfig) -> None:
        """New limits from the next check on (the rejection counts carry over)."""
        lo, hi = np.array(config.geofence_min), np.array(config.geofence_max)
        hi[2] = config.ceiling_m
        self.config, self._lo, self._hi = config, lo, hi
        self.max_yaw_rate_rad_s = math.radians(config.max_yaw_rate_deg_s)

    # -- bookkeeping ---------------------------------------------------------------------------------------
    @property
    def rejection_count(self) -> int:
        return sum(self.rejections.values())

    def reject(self, code: str, reason: str) -> EnvelopeCheck:
        """Count a rejection and return it (other components route their refusals here too)."""
        self.rejections[code] += 1
        self.last_rejection = reason
        return EnvelopeCheck(False, reason, code)

    # -- checks -----------------------------------------------------------------------------------------------
    def check_finite(self, what: str, **values: Any) -> EnvelopeCheck:
        bad = first_non_finite(**values)
        if bad:
            return self.reject("non_finite", f"{what} rejected: {bad}")
        return EnvelopeCheck(True)

    def contains(self, position: np.ndarray) -> bool:
        p = np.asarray(position, float)
        return bool(np.all(p >= self._lo) and np.all(p <= self._hi))

    def position_violation(self, position: np.ndarray) -> str | None:
        """Which bound a position breaks, as text, or None when inside the box and below the ceiling."""
        cfg = self.config
        for i, axis in enumerate(_AXES):
            value = float(position[i])
            if value < self._lo[i]:
                return f"{axis}={value:.2f} m is below geofence min_{axis}={self._lo[i]:.2f} m"
            if value > self._hi[i]:
                if axis == "z" and cfg.max_altitude_m < cfg.geofence_max[2]:
                    return f"z={value:.2f} m is above max_altitude_m={cfg.max_altitude_m:.2f} m"
                return f"{axis}={value:.2f} m is above geofence max_{axis}={self._hi[i]:.2f} m"
        return None

    def check_position(self, x: float, y: float, z: float, yaw: float = 0.0,
                       what: str = "position target") -> EnvelopeCheck:
        finite = self.check_finite(what, x=x, y=y, z=z, yaw=yaw)
        if not finite:
            return finite
        violation = self.position_violation(np.array([x, y, z], float))
        if violation:
            code = "altitude" if violation.startswith("z=") and "max_altitude" in violation else "geofence"
            return self.reject(code, f"{what} rejected: {violation}")
        return EnvelopeCheck(True, value=np.array([x, y, z], float))

    def limit_velocity(self, vx: float, vy: float, vz: float, yaw_rate: float,
                       position: np.ndarray | None = None, what: str = "velocity command") -> EnvelopeCheck:
        """Clamp a world-frame velocity command; ``value`` is (velocity (3,), yaw_rate). With a position, the
        component that would leave the geofence is limited (see module docstring)."""
        finite = self.check_finite(what, vx=vx, vy=vy, vz=vz, yaw_rate=yaw_rate)
        if not finite:
            return finite
        cfg = self.config
        velocity = np.array([vx, vy, vz], float)
        speed_xy = math.hypot(velocity[0], velocity[1])
        if speed_xy > cfg.max_speed_xy:
            velocity[:2] *= cfg.max_speed_xy / speed_xy
        velocity[2] = min(max(velocity[2], -cfg.max_speed_z), cfg.max_speed_z)
        limited_yaw_rate = min(max(float(yaw_rate), -self.max_yaw_rate_rad_s), self.max_yaw_rate_rad_s)
        if position is not None and np.isfinite(position).all():
            velocity = self._fence_velocity(np.asarray(position, float), velocity)
        limited = bool(velocity[0] != vx or velocity[1] != vy or velocity[2] != vz or limited_yaw_rate != yaw_rate)
        return EnvelopeCheck(True, value=(velocity, limited_yaw_rate), limited=limited)

    def _fence_velocity(self, position: np.ndarray, velocity: np.ndarray) -> np.ndarray:
        cfg = self.config
        out = velocity.copy()
        for i in range(3):
            if out[i] > 0.0:
                room = self._hi[i] - cfg.fence_margin_m - position[i]
            elif out[i] < 0.0:
                room = position[i] - (self._lo[i] + cfg.fence_margin_m)
            else:
                continue
            # Fastest outward speed from which braking at fence_brake_decel stops at the margin; zero at/after it.
            allowed = math.sqrt(2.0 * cfg.fence_brake_decel_m_s2 * room) if room > 0.0 else 0.0
            if abs(out[i]) > allowed:
                out[i] = math.copysign(allowed, out[i])
        return out

    # -- battery ---------------------------------------------------------------------------------------------
    def battery_low(self, fraction: float) -> bool:
        """True at or below the low threshold; an unknown (non-finite) level is not low."""
        return isinstance(fraction, (int, float)) and math.isfinite(fraction) \
            and fraction <= self.config.low_battery_fraction
