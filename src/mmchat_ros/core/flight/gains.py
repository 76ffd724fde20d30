"""Controller gains derived from an airframe's physical constants (pole placement on the cascade), so a new
airframe flies from its airframes.yaml entry alone.

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
   fight a fast observer, so those run at ``rate_observer_ratio`` of their loop: ``ω_vz ×`` and ``ω_rate ×`` it. Small integrators remain as a
   backstop (``ki = kp × ω / integral_ratio``).
6. **Yaw.** Yaw torque comes from the rotors' drag torque, much weaker than roll/pitch: the yaw loops take
   ``yaw_ratio`` of the roll/pitch gains.

The design constants (ζ, separation, ratios) live in ``rule:`` of flight_gains.yaml and are the same for every
airframe: nothing is tuned per vehicle. Limits (tilt, speeds, accelerations) are operating choices; an airframe
without an entry gets limits derived from its thrust-to-weight ratio.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from mmchat_ros.core.airframe import GRAVITY, Airframe


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
        "observer": {"velocity_bw": rule.observer_ratio * attitude, "velocity_z_bw": rule.rate_observer_ratio * velocity_z,
                     "rate_bw": rule.rate_observer_ratio * rate_bw},
        "jerk_ratio": rule.jerk_ratio,
    }
