"""Controller gains: their types, flight_gains.yaml, and the rule that derives them from an airframe's physical
constants (pole placement on the cascade), so a new airframe flies from its airframes.yaml entry alone.

``load_gains`` is the entry point: an airframe's flight_gains.yaml entry either spells its gains out or only
gives limits, and then the rule below derives the gains.

The rule, loop by loop from the inside out (each loop is designed on the closed loop inside it):

1. **Body rate.** The rate loop commands angular acceleration; torque = inertia × that, so with the airframe's
   inertia the plant is the same for every size: an integrator behind the motor lag. Its effective lag is
   ``τ = motor_time_constant_s + 1.5 / control_rate_hz`` (one sample of computation delay plus half a sample of
   zero-order hold). P control on 1/(s(τs+1)) gives s²τ + s + kp = 0: ``kp = 1 / (4 ζ² τ)`` for damping ζ,
   closed-loop natural frequency ``ω_rate = 1 / (2 ζ τ)``.
2. **Attitude.** P on the rotation error, ``k_att = ω_rate / separation`` (time-scale separation from the rate
   loop, so the rate loop looks like a unit gain to it).
3. **Velocity.** Horizontal: acceleration is the thrust direction, which follows the attitude loop, so
   ``ω_v = k_att / separation``. Vertical: acceleration is collective thrust, which only lags by τ, so the
   vertical velocity loop sits one separation inside the rate loop's bandwidth: ``ω_vz = ω_rate / separation``.
4. **Position.** P on the position error over the velocity loop: s² + ω_v s + ω_v k_p = 0 is damped at
   ζ_pos for ``k_p = ω_v / (4 ζ_pos²)``.
5. **Bias.** Disturbance observers estimate what the model gets wrong (mass, thrust, drag, wind, centre of mass,
   yaw torque). The linear one runs on the measured attitude and the modelled motor thrust, so its estimate does
   not depend on how well the loops track and it can be faster than them: ``k_att × observer_ratio`` horizontally.
   Where the motor lag enters directly (vertical thrust, body rates) a slower real motor than the file says would
   fight a fast observer, so those run at ``rate_observer_ratio`` of their loop: ``ω_vz ×`` and ``ω_rate ×`` it.
   Small integrators remain as a backstop (``ki = kp × ω / integral_ratio``).
6. **Yaw.** Yaw torque comes from the rotors' drag torque, much weaker than roll/pitch: the yaw loops take
   ``yaw_ratio`` of the roll/pitch gains.

The design constants (ζ, separation, ratios) live in ``rule:`` of flight_gains.yaml and are the same for every
airframe: nothing is tuned per vehicle. Limits (tilt, speeds, accelerations) are operating choices; an airframe
without an entry gets limits derived from its thrust-to-weight ratio.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from mmchat_ros.core.airframe import GRAVITY, Airframe, load_airframe
from mmchat_ros.core.paths import config_file

DEFAULT_CONTROL_RATE_HZ = 250.0


# ------------------------------------------------------------------------------------------------------- types
@dataclass(frozen=True)
class PidGains:
    kp: float
    ki: float = 0.0
    kd: float = 0.0


@dataclass(frozen=True)
class ControlLimits:
    max_tilt_deg: float = 30.0
    max_speed_xy: float = 2.0              # m/s
    max_speed_z: float = 1.0               # m/s
    max_yaw_rate_deg_s: float = 60.0
    max_roll_pitch_rate_deg_s: float = 220.0
    max_accel_up: float = 5.0              # m/s² above hover; also capped by the motors' thrust
    max_accel_down: float = 4.0            # m/s² below hover; < g so the thrust vector always points up


@dataclass(frozen=True)
class ObserverGains:
    """Disturbance-observer bandwidths, rad/s (0 = off)."""
    velocity_bw: float = 0.0               # horizontal linear acceleration
    velocity_z_bw: float = 0.0             # vertical
    rate_bw: float = 0.0                   # angular acceleration


@dataclass(frozen=True)
class FlightGains:
    position_xy: PidGains
    position_z: PidGains
    velocity_xy: PidGains
    velocity_z: PidGains
    attitude_roll_pitch: float             # rad/s of body rate per rad of attitude error
    attitude_yaw: float
    rate_roll_pitch: PidGains              # rad/s² of angular acceleration per rad/s of rate error
    rate_yaw: PidGains
    limits: ControlLimits = ControlLimits()
    observer: ObserverGains = ObserverGains()
    jerk_ratio: float = 0.5                # reference jerk limit = accel limit × attitude gain × this


# ---------------------------------------------------------------------------------------------------- the rule
@dataclass(frozen=True)
class GainRule:
    rate_damping: float = 0.45           # ζ of the rate loop
    lag_margin: float = 2.0              # design for motors this many times slower than the file says
    separation: float = 3.5              # bandwidth ratio between nested loops
    position_damping: float = 0.8        # ζ of the position loop over the velocity loop
    observer_ratio: float = 2.5          # horizontal disturbance-observer bandwidth / the attitude loop's
    rate_observer_ratio: float = 0.5     # angular disturbance-observer bandwidth / the rate loop's
    integral_ratio: float = 10.0         # integrator corner one decade below its loop
    yaw_ratio: float = 0.4               # yaw gains / roll-pitch gains
    jerk_ratio: float = 0.5              # reference jerk = acceleration limit × attitude bandwidth × this

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | None) -> "GainRule":
        spec = dict(spec or {})
        unknown = set(spec) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"flight_gains.yaml rule: unknown keys {sorted(unknown)}")
        rule = cls(**{k: float(v) for k, v in spec.items()})
        for f in fields(rule):
            value = getattr(rule, f.name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"flight_gains.yaml rule.{f.name} must be finite and > 0, got {value}")
        return rule


def effective_lag_s(airframe: Airframe, control_rate_hz: float, lag_margin: float = 1.0) -> float:
    return airframe.motor_time_constant_s * lag_margin + 1.5 / control_rate_hz


def derived_limits(airframe: Airframe) -> dict[str, float]:
    """Operating limits for an airframe nobody wrote limits for, from its thrust-to-weight ratio."""
    thrust_to_weight = airframe.num_motors * airframe.motor_max_thrust_n / airframe.hover_thrust_n
    # Level flight at full tilt must leave 20 % of the thrust for control: cos(tilt) >= 1 / (0.8 T/W).
    tilt = math.degrees(math.acos(min(1.0, 1.0 / (0.8 * thrust_to_weight))))
    return {
        "max_tilt_deg": max(10.0, min(30.0, tilt)),
        "max_accel_up": max(1.0, min(5.0, (0.8 * thrust_to_weight - 1.0) * GRAVITY)),
        "max_accel_down": 4.0,
    }


def derive_gains_spec(airframe: Airframe, control_rate_hz: float, rule: GainRule | None = None) -> dict:
    """The gains of the rule for this airframe, as a flight_gains.yaml-style mapping (without limits)."""
    rule = rule or GainRule()
    tau = effective_lag_s(airframe, control_rate_hz, rule.lag_margin)
    zeta = rule.rate_damping
    rate_kp = 1.0 / (4.0 * zeta * zeta * tau)
    rate_bw = 1.0 / (2.0 * zeta * tau)
    attitude = rate_bw / rule.separation
    velocity_xy = attitude / rule.separation
    # Vertical: P on an integrator behind the motor lag stays stable however slow the motors really are, so it
    # is designed on the file's lag.
    velocity_z = 1.0 / (2.0 * zeta * effective_lag_s(airframe, control_rate_hz)) / rule.separation
    position_xy = velocity_xy / (4.0 * rule.position_damping ** 2)
    position_z = velocity_z / (4.0 * rule.position_damping ** 2)
    yaw = rule.yaw_ratio
    return {
        "position": {"xy": {"kp": position_xy}, "z": {"kp": position_z}},
        "velocity": {"xy": {"kp": velocity_xy, "ki": velocity_xy * velocity_xy / rule.integral_ratio},
                     "z": {"kp": velocity_z, "ki": velocity_z * velocity_z / rule.integral_ratio}},
        "attitude": {"roll_pitch": {"kp": attitude}, "yaw": {"kp": yaw * attitude}},
        "rate": {"roll_pitch": {"kp": rate_kp, "ki": rate_kp * rate_bw / rule.integral_ratio},
                 "yaw": {"kp": yaw * rate_kp, "ki": yaw * rate_kp * rate_bw / rule.integral_ratio}},
        "observer": {"velocity_bw": rule.observer_ratio * attitude,
                     "velocity_z_bw": rule.rate_observer_ratio * velocity_z,
                     "rate_bw": rule.rate_observer_ratio * rate_bw},
        "jerk_ratio": rule.jerk_ratio,
    }


# ------------------------------------------------------------------------------------------- flight_gains.yaml
def default_gains_file() -> Path:
    return config_file("flight_gains.yaml")


def _pid_gains(spec: Mapping[str, Any], where: str) -> PidGains:
    if not isinstance(spec, Mapping) or "kp" not in spec:
        raise ValueError(f"{where}: expected a mapping with at least 'kp', got {spec!r}")
    unknown = set(spec) - {"kp", "ki", "kd"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    gains = PidGains(float(spec["kp"]), float(spec.get("ki", 0.0)), float(spec.get("kd", 0.0)))
    if not all(math.isfinite(g) and g >= 0.0 for g in (gains.kp, gains.ki, gains.kd)) or gains.kp <= 0.0:
        raise ValueError(f"{where}: gains must be finite, kp > 0, ki and kd >= 0; got {gains}")
    return gains


def gains_from_dict(spec: Mapping[str, Any], name: str = "gains") -> FlightGains:
    """Build FlightGains from one airframe's entry of flight_gains.yaml (see that file for the layout)."""
    try:
        position, velocity, attitude, rate = (spec[k] for k in ("position", "velocity", "attitude", "rate"))
        limit_spec = dict(spec.get("limits", {}))
        unknown = set(limit_spec) - set(ControlLimits.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{name}.limits: unknown keys {sorted(unknown)}")
        limits = ControlLimits(**{k: float(v) for k, v in limit_spec.items()})
        observer_spec = dict(spec.get("observer", {}))
        unknown = set(observer_spec) - set(ObserverGains.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{name}.observer: unknown keys {sorted(unknown)}")
        observer = ObserverGains(**{k: float(v) for k, v in observer_spec.items()})
        if not all(math.isfinite(v) and v >= 0.0 for v in observer.__dict__.values()):
            raise ValueError(f"{name}.observer: bandwidths must be finite and >= 0, got {observer}")
        gains = FlightGains(
            position_xy=_pid_gains(position["xy"], f"{name}.position.xy"),
            position_z=_pid_gains(position["z"], f"{name}.position.z"),
            velocity_xy=_pid_gains(velocity["xy"], f"{name}.velocity.xy"),
            velocity_z=_pid_gains(velocity["z"], f"{name}.velocity.z"),
            attitude_roll_pitch=_pid_gains(attitude["roll_pitch"], f"{name}.attitude.roll_pitch").kp,
            attitude_yaw=_pid_gains(attitude["yaw"], f"{name}.attitude.yaw").kp,
            rate_roll_pitch=_pid_gains(rate["roll_pitch"], f"{name}.rate.roll_pitch"),
            rate_yaw=_pid_gains(rate["yaw"], f"{name}.rate.yaw"),
            limits=limits,
            observer=observer,
            jerk_ratio=float(spec.get("jerk_ratio", FlightGains.__dataclass_fields__["jerk_ratio"].default)),
        )
    except KeyError as exc:
        raise ValueError(f"{name}: missing key {exc}") from None
    lim = gains.limits
    if not 0.0 < lim.max_tilt_deg < 80.0:
        raise ValueError(f"{name}.limits.max_tilt_deg must be in (0, 80), got {lim.max_tilt_deg}")
    if not 0.0 < lim.max_accel_down < GRAVITY:
        raise ValueError(f"{name}.limits.max_accel_down must be in (0, g), got {lim.max_accel_down}")
    for key in ("max_speed_xy", "max_speed_z", "max_yaw_rate_deg_s", "max_roll_pitch_rate_deg_s", "max_accel_up"):
        value = getattr(lim, key)
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"{name}.limits.{key} must be finite and > 0, got {value}")
    return gains


def load_gains(airframe_name: str, path: str | Path | None = None, airframe: Airframe | None = None,
               control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ) -> FlightGains:
    """Gains and limits of one airframe: derived from its physical constants by the rule (gains.py, with the
    design constants of flight_gains.yaml's ``rule:``) and the limits of its flight_gains.yaml entry (derived
    from thrust-to-weight where it has none). An entry that spells out position/velocity/attitude/rate gains
    overrides the rule. ``airframe``: the airframe itself (default: loaded by name from airframes.yaml)."""
    path = Path(path) if path else default_gains_file()
    data = yaml.safe_load(path.read_text()) or {}
    entry = data.get(airframe_name) or {}
    if "position" in entry:
        return gains_from_dict(entry, airframe_name)
    if airframe is None:
        try:
            airframe = load_airframe(airframe_name)
        except KeyError as exc:
            raise KeyError(f"no flight gains for airframe '{airframe_name}' in {path}, and no such airframe to "
                           f"derive them from ({exc.args[0]})") from None
    spec = derive_gains_spec(airframe, control_rate_hz, GainRule.from_dict(data.get("rule")))
    spec["limits"] = {**derived_limits(airframe), **dict(entry.get("limits") or {})}
    unknown = set(entry) - {"limits"}
    if unknown:
        raise ValueError(f"{path}: {airframe_name}: unknown keys {sorted(unknown)}")
    return gains_from_dict(spec, airframe_name)
