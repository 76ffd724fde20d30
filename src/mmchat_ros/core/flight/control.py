"""Cascaded multicopter controller: position → velocity → acceleration/thrust → attitude → body rate → torque → motors.

Frames follow REP 103: world x, y, z with z up; body x forward, y left, z up. Quaternions are (w, x, y, z) and
rotate body vectors into the world frame. All loops take an explicit ``dt``: nothing here reads a clock, so the
controller runs identically on wall time, sim time and in tests.

Loop structure (per control step):

1. position P(ID) on world x, y, z → velocity setpoint, plus the setpoint's velocity feed-forward, clamped to the
   horizontal and vertical speed limits (position mode only; velocity mode bypasses it);
2. velocity PID → acceleration setpoint; vertical acceleration is limited first, then horizontal acceleration
   is limited so that the thrust vector stays within ``max_tilt_deg`` of vertical;
3. thrust vector ``m (a + g ẑ)`` → attitude setpoint (thrust direction + yaw) and collective thrust (the thrust
   vector projected on the current body z, so thrust is not wasted while the attitude catches up);
4. quaternion attitude error, with roll/pitch given priority over yaw → body-rate setpoint;
5. body-rate PID → angular acceleration → torque ``I α + ω × I ω``;
6. mixer: inverse of the airframe's allocation matrix with desaturation (roll/pitch > collective thrust > yaw).

Model mismatch: two disturbance observers compare what the airframe model says the commanded motors should do
with what the state estimate shows, and subtract the difference: one on linear acceleration (wrong mass or
thrust, drag, wind), one on angular acceleration (centre of mass off, wrong inertia or yaw torque). So the
feed-forward terms (gravity, drag, reference acceleration, ``I α``) only need to be roughly right.
Gains (and their loading) are in ``gains.py``, the mixer in ``mixer.py``, the rotation maths in core/geometry.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from simple_pid import PID

from mmchat_ros.core.airframe import GRAVITY, Airframe
from mmchat_ros.core.flight.gains import DEFAULT_CONTROL_RATE_HZ, ControlLimits, FlightGains, PidGains
from mmchat_ros.core.flight.mixer import Mixer
from mmchat_ros.core.flight.trajectory import KinematicLimits
from mmchat_ros.core.geometry import (cross3, quat_between, quat_canonical, quat_conjugate, quat_multiply,
                                      quat_normalize, quat_to_rotation_matrix, rotation_matrix_to_quat, wrap_angle,
                                      yaw_from_quat)

GYRO_BIAS_TIME_S = 2.0          # time constant of the gyro-bias estimate
MAX_GYRO_BIAS = 0.1             # rad/s: a gyro worse than this needs calibrating, not compensating

_EZ = np.array([0.0, 0.0, 1.0])


# ------------------------------------------------------------------------------------------------- data types
@dataclass
class VehicleState:
    """Estimated state: world-frame position and velocity, body→world attitude, body-frame angular velocity."""
    position: np.ndarray
    velocity: np.ndarray
    quaternion_wxyz: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0, 0.0]))
    angular_velocity_body: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        self.position = np.asarray(self.position, float).reshape(3)
        self.velocity = np.asarray(self.velocity, float).reshape(3)
        self.quaternion_wxyz = np.asarray(self.quaternion_wxyz, float).reshape(4)
        self.angular_velocity_body = np.asarray(self.angular_velocity_body, float).reshape(3)

    @property
    def yaw_rad(self) -> float:
        return yaw_from_quat(self.quaternion_wxyz)

    def is_finite(self) -> bool:
        return bool(np.isfinite(self.position).all() and np.isfinite(self.velocity).all()
                    and np.isfinite(self.quaternion_wxyz).all() and np.isfinite(self.angular_velocity_body).all())


POSITION_MODE = "position"
VELOCITY_MODE = "velocity"


@dataclass
class Setpoint:
    """What the outer loops track.

    mode "position": hold ``position`` (world, m) and ``yaw_rad``; ``velocity``, ``acceleration`` and
    ``yaw_rate_rad_s`` are feed-forward terms of a moving reference (zero for a fixed target).
    mode "velocity": track ``velocity`` (world, m/s) and turn at ``yaw_rate_rad_s``; ``acceleration`` is
    feed-forward; ``position`` and ``yaw_rad`` are ignored.
    """
    mode: str = POSITION_MODE
    position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    yaw_rad: float = 0.0
    yaw_rate_rad_s: float = 0.0
    acceleration: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        if self.mode not in (POSITION_MODE, VELOCITY_MODE):
            raise ValueError(f"setpoint mode must be '{POSITION_MODE}' or '{VELOCITY_MODE}', not {self.mode!r}")
        self.position = np.asarray(self.position, float).reshape(3)
        self.velocity = np.asarray(self.velocity, float).reshape(3)
        self.acceleration = np.asarray(self.acceleration, float).reshape(3)
        self.yaw_rad = float(self.yaw_rad)
        self.yaw_rate_rad_s = float(self.yaw_rate_rad_s)


@dataclass
class ControlOutput:
    motor_thrusts_n: np.ndarray            # per motor, airframe motor order, within [0, motor_max_thrust_n]
    collective_thrust_n: float             # total thrust the mixer delivered
    body_rate_setpoint: np.ndarray         # rad/s, body frame
    attitude_setpoint_quat: np.ndarray     # body→world, (w, x, y, z)
    acceleration_setpoint: np.ndarray      # world frame, m/s², gravity excluded
    torque_setpoint: np.ndarray = field(default_factory=lambda: np.zeros(3))   # N·m requested from the mixer
    saturated: bool = False                # the mixer had to give something up
    # For vehicles that run their own inner loops (PX4, Tello, Gazebo's velocity controller): the cascade's
    # velocity set-point (world frame, m/s) and yaw-rate set-point (rad/s).
    velocity_setpoint: np.ndarray = field(default_factory=lambda: np.zeros(3))
    yaw_rate_setpoint: float = 0.0


# --------------------------------------------------------------------------------------------------- PID loop
def _frozen_clock() -> float:
    # simple-pid samples its clock even when given dt; a constant keeps it off the wall clock entirely.
    return 0.0


class PidLoop:
    """One simple-pid loop driven with an explicit dt, with conditional integration for anti-windup.

    simple-pid already clamps the integral to the output limits; on top of that the integrator is frozen
    (``integrate=False``) while the vehicle is on the ground or the stage downstream is saturated.
    """

    def __init__(self, gains: PidGains, low: float, high: float):
        self.gains = gains
        self.pid = PID(gains.kp, gains.ki, gains.kd, setpoint=0.0, sample_time=None, output_limits=(low, high),
                       time_fn=_frozen_clock)

    def __call__(self, setpoint: float, measurement: float, dt: float, integrate: bool = True) -> float:
        self.pid.setpoint = setpoint
        self.pid.Ki = self.gains.ki if integrate else 0.0
        return float(self.pid(measurement, dt=dt))

    @property
    def integral(self) -> float:
        return float(self.pid.components[1])

    def reset(self) -> None:
        self.pid.reset()


# ------------------------------------------------------------------------------------------------- controller
def _clamp_speed(velocity: np.ndarray, limits: ControlLimits) -> np.ndarray:
    speed_xy = math.hypot(velocity[0], velocity[1])
    if speed_xy > limits.max_speed_xy:
        velocity[:2] *= limits.max_speed_xy / speed_xy
    velocity[2] = min(max(velocity[2], -limits.max_speed_z), limits.max_speed_z)
    return velocity


class CascadedController:
    """The full cascade for one airframe. Call ``update`` at the control rate with the latest state estimate."""

    def __init__(self, airframe: Airframe, gains: FlightGains, control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ):
        if not (math.isfinite(control_rate_hz) and control_rate_hz > 0.0):
            raise ValueError(f"control rate must be a positive number of hertz, got {control_rate_hz}")
        self.airframe = airframe
        self.gains = gains
        self.last_setpoint: Setpoint | None = None
        self.control_rate_hz = float(control_rate_hz)
        self.nominal_dt = 1.0 / self.control_rate_hz
        self.mixer = Mixer(airframe)
        self.mass = airframe.mass_kg
        self.inertia = np.asarray(airframe.inertia_kgm2, float)
        self.drag_per_kg = np.asarray(airframe.drag_coeff_ns_per_m, float) / airframe.mass_kg

        lim = gains.limits
        self.max_tilt = math.radians(lim.max_tilt_deg)
        self.max_yaw_rate = math.radians(lim.max_yaw_rate_deg_s)
        self.max_roll_pitch_rate = math.radians(lim.max_roll_pitch_rate_deg_s)
        self.max_collective_n = airframe.num_motors * airframe.motor_max_thrust_n
        # Leave 10 % of the motors' range for attitude control even at full climb.
        self.max_accel_up = min(lim.max_accel_up, 0.9 * self.max_collective_n / self.mass - GRAVITY)
        if self.max_accel_up < 0.1 * GRAVITY:
            raise ValueError(f"airframe '{airframe.name}': too little thrust above hover left for control")
        self.max_accel_down = lim.max_accel_down
        max_accel_xy = GRAVITY * math.tan(self.max_tilt)
        self.max_tilt_accel = max_accel_xy

        self.position_loops = [PidLoop(gains.position_xy, -lim.max_speed_xy, lim.max_speed_xy),
                               PidLoop(gains.position_xy, -lim.max_speed_xy, lim.max_speed_xy),
                               PidLoop(gains.position_z, -lim.max_speed_z, lim.max_speed_z)]
        self.velocity_loops = [PidLoop(gains.velocity_xy, -max_accel_xy, max_accel_xy),
                               PidLoop(gains.velocity_xy, -max_accel_xy, max_accel_xy),
                               PidLoop(gains.velocity_z, -self.max_accel_down, self.max_accel_up)]
        # Rate-loop output is angular acceleration, bounded by what the motors can produce about each axis
        # (the motors on one side of the axis at full thrust, the others off).
        max_torque = np.abs(self.mixer.allocation[1:]).sum(axis=1) * airframe.motor_max_thrust_n / 2.0
        self.max_angular_accel = max_torque / self.inertia
        self.rate_loops = [PidLoop(gains.rate_roll_pitch, -self.max_angular_accel[0], self.max_angular_accel[0]),
                           PidLoop(gains.rate_roll_pitch, -self.max_angular_accel[1], self.max_angular_accel[1]),
                           PidLoop(gains.rate_yaw, -self.max_angular_accel[2], self.max_angular_accel[2])]

        # Attitude P with roll/pitch priority (PX4-style reduced attitude): yaw error is weighted down by
        # yaw_weight and the yaw gain compensated, so small-angle yaw response is still attitude_yaw.
        self.yaw_weight = min(1.0, max(0.0, gains.attitude_yaw / gains.attitude_roll_pitch))
        yaw_gain = gains.attitude_yaw / self.yaw_weight if self.yaw_weight > 1e-4 else 0.0
        self.attitude_gain = np.array([gains.attitude_roll_pitch, gains.attitude_roll_pitch, yaw_gain])

        # Velocity commands (teleop, follow, braking) go through a critically damped second-order reference model
        # whose acceleration is fed forward and kept inside the reference limits (acceleration and jerk): a raw
        # step would wind the velocity integrators up and overshoot, and a bare slew demands attitude steps the
        # vehicle lags behind. Its bandwidth is the attitude loop's (horizontal) and the vertical velocity loop's.
        self.velocity_model_bandwidth = np.array([self.attitude_gain[0], self.attitude_gain[0], gains.velocity_z.kp])
        reference = self.kinematic_limits()
        self.velocity_model_accel_xy = reference.accel_xy
        self.velocity_model_accel_z = min(reference.accel_up, reference.accel_down)
        self._velocity_model_jerk = np.array([reference.jerk_xy, reference.jerk_xy, reference.jerk_z])
        self._velocity_reference = np.zeros(3)
        self._velocity_reference_accel = np.zeros(3)
        # Roughly how long the vehicle takes to follow a velocity change (reference model plus attitude lag).
        self.velocity_response_time_s = 2.0 / float(self.velocity_model_bandwidth.min()) + 2.0 / self.attitude_gain[0]

        # Disturbance observers (Luenberger, both poles at the bandwidth): the estimated state follows the airframe
        # model driven by the motors' thrusts as the mixer commanded them, run through the nominal motor lag; the
        # disturbance state absorbs whatever makes the measurement differ. Gravity, drag and I·α stay as
        # feed-forward; the observers only carry the model's error.
        obs = gains.observer
        self._obs_gain_v = np.array([obs.velocity_bw, obs.velocity_bw, obs.velocity_z_bw])
        self._obs_gain_w = np.full(3, obs.rate_bw)
        self._motor_lag = airframe.motor_time_constant_s
        self._allocation = airframe.allocation_matrix()
        # An estimate never grows past what the vehicle could plausibly be fighting: half of g, half the torque.
        self._max_disturbance_v = 0.5 * GRAVITY
        self._max_disturbance_w = 0.5 * self.max_angular_accel
        self._motor_model = np.full(airframe.num_motors, airframe.hover_thrust_n / airframe.num_motors)
        self._velocity_estimate: np.ndarray | None = None
        self._rate_estimate: np.ndarray | None = None
        self.velocity_disturbance = np.zeros(3)        # m/s², world frame: add to the model to get reality
        self._disturbance_trend = np.zeros(3)          # its rate of change, m/s³
        # A wrong mass or thrust constant scales every acceleration the thrust makes, in every direction: an
        # additive estimate would follow it only with lag along a curve. So the part of the disturbance along the
        # thrust axis is moved, slowly, into a thrust efficiency (real acceleration per modelled acceleration).
        self.thrust_efficiency = 1.0
        self._efficiency_rate = 0.5 * obs.velocity_z_bw
        self.rate_disturbance = np.zeros(3)            # rad/s², body frame
        self.gyro_bias = np.zeros(3)                   # rad/s, estimated (see _unbias_gyro)
        self._last_quat: np.ndarray | None = None
        self._last_gyro = np.zeros(3)

        # Acceleration feed-forward with lead: the thrust direction reaches a commanded acceleration only after
        # the attitude loop's time constant (plus the motor lag), the collective after the motor lag; leading the
        # reference's acceleration by its rate of change times that lag cancels it (the lag of a first-order
        # loop). The reference's jerk is its acceleration differenced, bounded by what references may carry.
        # The tilt follows its set-point with a low-frequency delay of 1/k_att (rate loop and motors included: for
        # τs³ + s² + k_r s + k_r k_att that delay is k_r / (k_r k_att)); thrust follows after the motor lag.
        delay = 1.5 * self.nominal_dt
        lead_xy = 1.0 / self.attitude_gain[0] + delay
        self._ff_lead = np.array([lead_xy, lead_xy, self._motor_lag + delay])
        reference = self.kinematic_limits()
        self._max_ff_jerk = 2.0 * np.array([reference.jerk_xy, reference.jerk_xy, reference.jerk_z])
        self._last_accel_ff: np.ndarray | None = None

        self._mode: str | None = None
        self._yaw_target: float | None = None
        self._position_target: np.ndarray | None = None
        self._saturated_roll_pitch = False
        self._saturated_yaw = False
        self._saturated_thrust = False

    # -- state ------------------------------------------------------------------------------------------
    @property
    def position_target(self) -> np.ndarray | None:
        """The position the outer loop holds: the setpoint in position mode, the current position otherwise."""
        return None if self._position_target is None else self._position_target.copy()

    @property
    def yaw_target(self) -> float | None:
        return self._yaw_target

    def reset(self, state: VehicleState | None = None) -> None:
        """Clear every integrator and derivative memory; hold the given state's position and heading."""
        for loop in (*self.position_loops, *self.velocity_loops, *self.rate_loops):
            loop.reset()
        self.velocity_disturbance = np.zeros(3)
        self._disturbance_trend = np.zeros(3)
        self.thrust_efficiency = 1.0
        self.rate_disturbance = np.zeros(3)
        self._last_quat = None                         # (the gyro bias is the sensor's: it is kept)
        self._velocity_estimate = self._rate_estimate = None
        self._motor_model[:] = self.airframe.hover_thrust_n / self.airframe.num_motors
        self._last_accel_ff = None
        self._mode = None
        self._saturated_roll_pitch = self._saturated_yaw = self._saturated_thrust = False
        self._position_target = None if state is None else state.position.copy()
        self._yaw_target = None if state is None else state.yaw_rad

    # -- cascade -------------------------------------------------------------------------------------------
    def update(self, state: VehicleState, setpoint: Setpoint, dt: float, integrate: bool = True,
               integrate_rates: bool | None = None) -> ControlOutput:
        """One control step. ``integrate=False`` freezes every integrator (on the ground, before lift-off);
        ``integrate_rates`` (default: same) for the body-rate loop and its disturbance observer alone: a take-off
        learns a torque bias (centre of mass off) while the vehicle gets light on its feet, before it tips."""
        integrate_rates = integrate if integrate_rates is None else integrate_rates
        if not (math.isfinite(dt) and dt > 0.0):
            raise ValueError(f"dt must be a positive number of seconds, got {dt}")
        if not state.is_finite():
            raise ValueError("vehicle state has non-finite values")
        q = quat_normalize(state.quaternion_wxyz)
        state = self._unbias_gyro(state, q, dt, integrate)
        yaw_now = yaw_from_quat(q)
        self._observe(state, q, dt, integrate, integrate_rates=integrate_rates)

        if setpoint.mode != self._mode:
            self._on_mode_change(setpoint.mode, state, yaw_now)
        self.last_setpoint = setpoint          # for plots of set-point vs state

        # Yaw target: held in position mode, integrated from the rate in velocity mode. Never let it lead the
        # vehicle by more than ~1 s of max yaw rate, so a saturated yaw does not wind up a spin.
        yaw_rate_ff = min(max(setpoint.yaw_rate_rad_s, -self.max_yaw_rate), self.max_yaw_rate)
        if setpoint.mode == POSITION_MODE:
            self._yaw_target = wrap_angle(setpoint.yaw_rad)
        else:
            lead = wrap_angle(self._yaw_target + yaw_rate_ff * dt - yaw_now)
            lead = min(max(lead, -self.max_yaw_rate), self.max_yaw_rate)
            self._yaw_target = wrap_angle(yaw_now + lead)

        velocity_sp, accel_ff = self._velocity_setpoint(state, setpoint, dt, integrate)
        accel_sp = self._acceleration_setpoint(state, velocity_sp, accel_ff, dt, integrate)
        output = self._attitude_and_below(state, q, accel_sp, self._yaw_target, yaw_rate_ff, dt, integrate_rates)
        yaw_rate_sp = self.gains.attitude_yaw * wrap_angle(self._yaw_target - yaw_now) + yaw_rate_ff
        return replace(output, velocity_setpoint=velocity_sp.copy(),
                       yaw_rate_setpoint=min(max(yaw_rate_sp, -self.max_yaw_rate), self.max_yaw_rate))

    def update_attitude(self, state: VehicleState, attitude_sp: np.ndarray, collective_n: float, dt: float,
                        integrate: bool = True) -> ControlOutput:
        """Attitude + rate loops only: track a given attitude with a given collective (open-loop descents)."""
        q = quat_normalize(state.quaternion_wxyz)
        state = self._unbias_gyro(state, q, dt, False)
        self._observe(state, q, dt, integrate, linear=False)
        collective_n = float(np.clip(collective_n, 0.0, self.max_collective_n))
        rate_sp = self._rate_setpoint(q, quat_normalize(attitude_sp), 0.0)
        return self._rates_and_mixer(state, q, rate_sp, attitude_sp, collective_n, np.zeros(3), dt, integrate)

    def mix_collective_only(self, collective_n: float) -> ControlOutput:
        """Equal share of the collective on every motor: the last resort when no attitude is known."""
        result = self.mixer.mix(float(np.clip(collective_n, 0.0, self.max_collective_n)), np.zeros(3))
        self._motor_model[:] = result.motor_thrusts_n     # no dynamics model needed here: observers restart
        self._velocity_estimate = self._rate_estimate = None
        return ControlOutput(result.motor_thrusts_n, float(result.motor_thrusts_n.sum()), np.zeros(3),
                             np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(3), np.zeros(3), result.saturated)

    def zero_output(self) -> ControlOutput:
        """Motors off."""
        return ControlOutput(np.zeros(self.airframe.num_motors), 0.0, np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]),
                             np.zeros(3), np.zeros(3), False)

    def kinematic_limits(self, max_speed_xy: float = math.inf, max_speed_z: float = math.inf,
                         share: float = 0.8) -> KinematicLimits:
        """What references may ask: the airframe's limits (within the given envelope speeds), ``share`` of the
        speed and acceleration so the feedback loops keep room to correct, and a jerk the attitude loop (for
        horizontal) or the vertical velocity loop can follow."""
        lim = self.gains.limits
        accel_xy = GRAVITY * math.tan(self.max_tilt) * share
        accel_up, accel_down = self.max_accel_up * share, self.max_accel_down * share
        return KinematicLimits(
            speed_xy=min(lim.max_speed_xy, max_speed_xy) * (0.5 + 0.5 * share),
            speed_z=min(lim.max_speed_z, max_speed_z) * (0.5 + 0.5 * share),
            accel_xy=accel_xy, accel_up=accel_up, accel_down=accel_down,
            jerk_xy=accel_xy * self.gains.attitude_roll_pitch * self.gains.jerk_ratio,
            jerk_z=max(accel_up, accel_down) * self.gains.velocity_z.kp * self.gains.jerk_ratio)

    def _unbias_gyro(self, state: VehicleState, q: np.ndarray, dt: float, learn: bool) -> VehicleState:
        """Body rates minus the estimated gyro bias. The bias is learnt (time constant GYRO_BIAS_TIME_S) from the
        difference between the gyro and the rotation between successive attitudes: a biased gyro would make the
        rate loop hold a constant rotation against the attitude loop, i.e. a steady tilt error."""
        previous, self._last_quat = self._last_quat, q
        # Learnt in the air and while turning slowly only (contacts and fast turns disturb the comparison).
        if learn and previous is not None and float(np.abs(state.angular_velocity_body).max()) < 1.0:
            delta = quat_multiply(quat_conjugate(previous), q)
            rates_from_attitude = 2.0 * math.copysign(1.0, delta[0]) * delta[1:] / dt
            # Average the gyro over the same step as the attitude difference.
            gyro = 0.5 * (state.angular_velocity_body + self._last_gyro)
            error = gyro - rates_from_attitude - self.gyro_bias
            self.gyro_bias = np.clip(self.gyro_bias + dt / GYRO_BIAS_TIME_S * error, -MAX_GYRO_BIAS, MAX_GYRO_BIAS)
        self._last_gyro = state.angular_velocity_body.copy()
        if not self.gyro_bias.any():
            return state
        return VehicleState(state.position, state.velocity, state.quaternion_wxyz,
                            state.angular_velocity_body - self.gyro_bias)

    def _observe(self, state: VehicleState, q: np.ndarray, dt: float, integrate: bool, linear: bool = True,
                 integrate_rates: bool | None = None) -> None:
        """Advance the disturbance observers over the last step (the motors' modelled thrust acted during it)."""
        wrench = self._allocation @ self._motor_model
        omega = state.angular_velocity_body
        integrate_rates = integrate if integrate_rates is None else integrate_rates
        if integrate_rates and self._rate_estimate is not None and self._obs_gain_w[0] > 0.0:
            inertia = self.inertia
            model = (wrench[1:] - cross3(omega, inertia * omega)) / inertia
            innovation = omega - self._rate_estimate
            w = self._obs_gain_w
            self._rate_estimate = self._rate_estimate + dt * (model + self.rate_disturbance + 2.0 * w * innovation)
            self.rate_disturbance = np.clip(self.rate_disturbance + dt * w * w * innovation,
                                            -self._max_disturbance_w, self._max_disturbance_w)
        else:
            self._rate_estimate = omega.copy()
        if not linear:
            self._velocity_estimate = None
            return
        velocity = state.velocity
        if integrate and self._velocity_estimate is not None and self._obs_gain_v.max() > 0.0:
            rot = quat_to_rotation_matrix(q)
            thrust_accel = wrench[0] / self.mass
            if thrust_accel > 0.3 * GRAVITY:
                along = float(self.velocity_disturbance @ rot[:, 2]) / thrust_accel
                self.thrust_efficiency = min(max(self.thrust_efficiency * (1.0 + dt * self._efficiency_rate * along),
                                                 0.5), 2.0)
            model = rot[:, 2] * (self.thrust_efficiency * thrust_accel) - rot @ (self.drag_per_kg * (rot.T @ velocity))
            model[2] -= GRAVITY
            # Extended state: the disturbance and its rate (drag grows with speed along a curve, gusts ramp), so a
            # ramping disturbance is followed without the lag a constant-disturbance model would have.
            innovation = velocity - self._velocity_estimate
            w = self._obs_gain_v
            self._velocity_estimate = self._velocity_estimate + dt * (
                model + self.velocity_disturbance + 3.0 * w * innovation)
            self.velocity_disturbance = np.clip(
                self.velocity_disturbance + dt * (self._disturbance_trend + 3.0 * w * w * innovation),
                -self._max_disturbance_v, self._max_disturbance_v)
            self._disturbance_trend = self._disturbance_trend + dt * w * w * w * innovation
        else:
            self._velocity_estimate = velocity.copy()
            self._disturbance_trend = np.zeros(3)

    def _on_mode_change(self, mode: str, state: VehicleState, yaw_now: float) -> None:
        # Entering position mode from velocity mode: the position integrators restart from zero so that no stale
        # integral kicks the vehicle; derivative memory is cleared with them.
        for loop in self.position_loops:
            loop.reset()
        if self._position_target is None:
            self._position_target = state.position.copy()
        if self._yaw_target is None or abs(wrap_angle(self._yaw_target - yaw_now)) > self.max_yaw_rate:
            self._yaw_target = yaw_now
        self._velocity_reference = state.velocity.copy()      # shape velocity commands from the current motion
        self._velocity_reference_accel = np.zeros(3)
        self._last_accel_ff = None
        self._mode = mode

    def _velocity_setpoint(self, state: VehicleState, setpoint: Setpoint, dt: float,
                           integrate: bool) -> tuple[np.ndarray, np.ndarray]:
        """Velocity setpoint (clamped to the speed limits) and the acceleration feed-forward that goes with it."""
        lim = self.gains.limits
        accel_ff = setpoint.acceleration.copy()
        if setpoint.mode == POSITION_MODE:
            self._position_target = setpoint.position.copy()
            velocity = np.array([loop(target, measured, dt, integrate) for loop, target, measured
                                 in zip(self.position_loops, setpoint.position, state.position)])
            velocity = self._brakeable(velocity, setpoint.position - state.position) + setpoint.velocity
        else:
            # Position loop bypassed; it tracks the vehicle so that going back to position mode starts at rest.
            self._position_target = state.position.copy()
            velocity, model_accel = self._shape_velocity(_clamp_speed(setpoint.velocity.copy(), lim), dt)
            accel_ff += model_accel
        return _clamp_speed(velocity, lim), accel_ff

    def _brakeable(self, velocity: np.ndarray, error: np.ndarray) -> np.ndarray:
        """Cap the position loop's correction at the speed from which half the acceleration limit stops the
        vehicle at the target: a far target (a bare step) is approached without overshoot, while near it the
        P gain rules as designed."""
        error_xy = math.hypot(error[0], error[1])
        cap = math.sqrt(self.max_tilt_accel * error_xy)             # sqrt(2 · a/2 · |e|)
        speed = math.hypot(velocity[0], velocity[1])
        if speed > cap:
            velocity[:2] *= cap / speed
        brake_z = self.max_accel_down if error[2] > 0.0 else self.max_accel_up
        cap_z = math.sqrt(brake_z * abs(error[2]))
        velocity[2] = min(max(velocity[2], -cap_z), cap_z)
        return velocity

    def _shape_velocity(self, command: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Advance the velocity reference model one step towards `command`; returns (velocity, acceleration)."""
        w = self.velocity_model_bandwidth
        jerk = w * w * (command - self._velocity_reference) - 2.0 * w * self._velocity_reference_accel
        jerk = np.clip(jerk, -self._velocity_model_jerk, self._velocity_model_jerk)
        accel = self._velocity_reference_accel + jerk * dt
        norm_xy = math.hypot(accel[0], accel[1])
        if norm_xy > self.velocity_model_accel_xy:
            accel[:2] *= self.velocity_model_accel_xy / norm_xy
        accel[2] = min(max(accel[2], -self.velocity_model_accel_z), self.velocity_model_accel_z)
        self._velocity_reference_accel = accel
        self._velocity_reference = self._velocity_reference + accel * dt
        return self._velocity_reference.copy(), accel

    def _acceleration_setpoint(self, state: VehicleState, velocity_sp: np.ndarray, accel_ff: np.ndarray, dt: float,
                               integrate: bool) -> np.ndarray:
        # Feed-forward: the reference's own acceleration, plus the airframe's linear drag at the commanded
        # velocity (body-axis coefficients), so the integrators only carry what is not modelled.
        rot = quat_to_rotation_matrix(state.quaternion_wxyz)
        # Everything known in advance (reference, modelled drag, estimated disturbance) is led together.
        accel_ff = accel_ff + rot @ (self.drag_per_kg * (rot.T @ velocity_sp)) - self.velocity_disturbance
        if self._last_accel_ff is not None:
            jerk = np.clip((accel_ff - self._last_accel_ff) / dt, -self._max_ff_jerk, self._max_ff_jerk)
        else:
            jerk = np.zeros(3)
        self._last_accel_ff = accel_ff.copy()
        accel = accel_ff + self._ff_lead * jerk
        # Vertical first: its integrator is frozen while collective thrust is saturated.
        accel[2] += self.velocity_loops[2](velocity_sp[2], state.velocity[2], dt,
                                           integrate and not self._saturated_thrust)
        accel[2] = min(max(accel[2], -self.max_accel_down), self.max_accel_up)
        for axis in (0, 1):
            accel[axis] += self.velocity_loops[axis](velocity_sp[axis], state.velocity[axis], dt, integrate)
        # Horizontal acceleration is what is left within the tilt limit at this vertical acceleration.
        max_xy = (GRAVITY + accel[2]) * math.tan(self.max_tilt)
        norm_xy = math.hypot(accel[0], accel[1])
        if norm_xy > max_xy:
            accel[:2] *= max_xy / norm_xy
        return accel

    def _attitude_and_below(self, state: VehicleState, q: np.ndarray, accel_sp: np.ndarray, yaw_sp: float,
                            yaw_rate_ff: float, dt: float, integrate: bool) -> ControlOutput:
        # Thrust divided by the learnt thrust efficiency: a lighter vehicle (or stronger motors) gets less.
        thrust_vector = self.mass / self.thrust_efficiency * (accel_sp + GRAVITY * _EZ)
        body_z_d = thrust_vector / np.linalg.norm(thrust_vector)
        heading = np.array([math.cos(yaw_sp), math.sin(yaw_sp), 0.0])
        body_y_d = cross3(body_z_d, heading)
        body_y_d /= np.linalg.norm(body_y_d)          # never degenerate: tilt is limited well below 90°
        body_x_d = cross3(body_y_d, body_z_d)
        attitude_sp = rotation_matrix_to_quat(np.column_stack((body_x_d, body_y_d, body_z_d)))

        # Collective along the current body z: while the attitude catches up, thrust is not spent pushing
        # the vehicle sideways.
        body_z = quat_to_rotation_matrix(q)[:, 2]
        collective = min(max(float(thrust_vector @ body_z), 0.0), self.max_collective_n)
        rate_sp = self._rate_setpoint(q, attitude_sp, yaw_rate_ff)
        return self._rates_and_mixer(state, q, rate_sp, attitude_sp, collective, accel_sp, dt, integrate)

    def _rate_setpoint(self, q: np.ndarray, q_sp: np.ndarray, yaw_rate_ff: float) -> np.ndarray:
        rot = quat_to_rotation_matrix(q)
        rot_sp = quat_to_rotation_matrix(q_sp)
        # Reduced attitude: the rotation that aligns the thrust axis only, applied in the world frame.
        tilt = quat_between(rot[:, 2], rot_sp[:, 2])
        q_reduced = q_sp if tilt is None else quat_multiply(tilt, q)
        # The remaining rotation about body z (yaw), scaled down so roll/pitch are corrected first.
        q_mix = quat_canonical(quat_multiply(quat_conjugate(q_reduced), q_sp))
        half_yaw_w = math.acos(min(1.0, max(-1.0, q_mix[0])))
        half_yaw_z = math.asin(min(1.0, max(-1.0, q_mix[3])))
        q_weighted = quat_multiply(q_reduced, np.array([math.cos(self.yaw_weight * half_yaw_w), 0.0, 0.0,
                                                        math.sin(self.yaw_weight * half_yaw_z)]))
        q_error = quat_canonical(quat_multiply(quat_conjugate(q), q_weighted))
        rate_sp = 2.0 * q_error[1:] * self.attitude_gain
        rate_sp += rot[2, :] * yaw_rate_ff           # world z expressed in the body frame, times yaw rate
        for axis, limit in ((0, self.max_roll_pitch_rate), (1, self.max_roll_pitch_rate), (2, self.max_yaw_rate)):
            rate_sp[axis] = min(max(rate_sp[axis], -limit), limit)
        return rate_sp

    def _rates_and_mixer(self, state: VehicleState, q: np.ndarray, rate_sp: np.ndarray, attitude_sp: np.ndarray,
                         collective: float, accel_sp: np.ndarray, dt: float, integrate: bool) -> ControlOutput:
        omega = state.angular_velocity_body
        freeze = (self._saturated_roll_pitch, self._saturated_roll_pitch, self._saturated_yaw)
        angular_accel = np.array([loop(sp, measured, dt, integrate and not frozen) for loop, sp, measured, frozen
                                  in zip(self.rate_loops, rate_sp, omega, freeze)])
        inertia_omega = self.inertia * omega
        torque = self.inertia * (angular_accel - self.rate_disturbance) + cross3(omega, inertia_omega)
        mixed = self.mixer.mix(collective, torque)
        # The nominal motor lag over the coming step: what the observers will compare the next state with.
        self._motor_model += (mixed.motor_thrusts_n - self._motor_model) * (1.0 - math.exp(-dt / self._motor_lag))
        self._saturated_roll_pitch = mixed.roll_pitch_scale < 1.0
        self._saturated_yaw = mixed.yaw_scale < 1.0
        self._saturated_thrust = abs(mixed.thrust_shift_n) > 1e-6 or collective >= self.max_collective_n
        return ControlOutput(
            motor_thrusts_n=mixed.motor_thrusts_n,
            collective_thrust_n=float(mixed.motor_thrusts_n.sum()),
            body_rate_setpoint=rate_sp,
            attitude_setpoint_quat=attitude_sp,
            acceleration_setpoint=accel_sp,
            torque_setpoint=torque,
            saturated=mixed.saturated,
        )
