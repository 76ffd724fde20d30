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
import operator
from dataclasses import dataclass, field

import numpy as np

from mmchat_ros.core.airframe import GRAVITY, Airframe
from mmchat_ros.core.flight.gains import DEFAULT_CONTROL_RATE_HZ, ControlLimits, FlightGains, PidGains
from mmchat_ros.core.flight.mixer import Mixer, MixerResult
from mmchat_ros.core.flight.trajectory import KinematicLimits
from mmchat_ros.core.geometry import (cross3_tuple, quat_between_tuple, quat_multiply_tuple, quat_normalize_tuple,
                                      quat_to_rotation_rows, rotation_rows_to_quat_tuple, wrap_angle, yaw_from_quat)

GYRO_BIAS_TIME_S = 2.0          # time constant of the gyro-bias estimate
MAX_GYRO_BIAS = 0.1             # rad/s: a gyro worse than this needs calibrating, not compensating


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
        return all(map(math.isfinite, self.position.tolist() + self.velocity.tolist() + self.quaternion_wxyz.tolist()
                       + self.angular_velocity_body.tolist()))


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
class PidLoop:
    """One PID loop driven with an explicit dt, with conditional integration for anti-windup: proportional on the
    error, derivative on the measurement (no kick when the setpoint steps), integral and output clamped to the
    output limits, and the integrator frozen (``integrate=False``) while the vehicle is on the ground or the stage
    downstream is saturated.

    The arithmetic is simple-pid's (PID(kp, ki, kd, sample_time=None, output_limits=(low, high))), written out:
    the library's per-call overhead (a clock sample, property reads) cost more than the loop itself, nine times
    per control step.
    """

    def __init__(self, gains: PidGains, low: float, high: float):
        self.gains = gains
        self.low, self.high = float(low), float(high)
        self.reset()

    def __call__(self, setpoint: float, measurement: float, dt: float, integrate: bool = True) -> float:
        gains = self.gains
        error = setpoint - measurement
        if integrate:
            self.integral = min(max(self.integral + gains.ki * error * dt, self.low), self.high)
        last, self._last_measurement = self._last_measurement, measurement
        derivative = 0.0 if last is None else -gains.kd * (measurement - last) / dt
        return min(max(gains.kp * error + self.integral + derivative, self.low), self.high)

    def reset(self) -> None:
        self.integral = min(max(0.0, self.low), self.high)
        self._last_measurement: float | None = None


# ------------------------------------------------------------------------------------------------- controller
# The step works on plain floats (3-vectors as tuples or lists, rotations as row tuples): numpy costs about a
# microsecond per operation on arrays this small, several times the arithmetic. Arrays only at the boundary.
def _clamp(value: float, limit: float) -> float:
    return min(max(value, -limit), limit)


def _clamp_speed(vx: float, vy: float, vz: float, limits: ControlLimits) -> list[float]:
    speed_xy = math.hypot(vx, vy)
    if speed_xy > limits.max_speed_xy:
        scale = limits.max_speed_xy / speed_xy
        vx, vy = vx * scale, vy * scale
    return [vx, vy, _clamp(vz, limits.max_speed_z)]


def _drag_world(rot, drag_per_kg, velocity) -> tuple[float, float, float]:
    """rot @ (drag_per_kg * (rot.T @ velocity)): linear body-axis drag per kg at a world velocity, world frame."""
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = rot
    vx, vy, vz = velocity
    dx, dy, dz = drag_per_kg
    bx = dx * (r00 * vx + r10 * vy + r20 * vz)
    by = dy * (r01 * vx + r11 * vy + r21 * vz)
    bz = dz * (r02 * vx + r12 * vy + r22 * vz)
    return r00 * bx + r01 * by + r02 * bz, r10 * bx + r11 * by + r12 * bz, r20 * bx + r21 * by + r22 * bz


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
        self.inertia = tuple(float(i) for i in airframe.inertia_kgm2)
        self.drag_per_kg = tuple(float(d) / airframe.mass_kg for d in airframe.drag_coeff_ns_per_m)

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
        self.max_angular_accel = max_torque / np.array(self.inertia)
        self.rate_loops = [PidLoop(gains.rate_roll_pitch, -self.max_angular_accel[0], self.max_angular_accel[0]),
                           PidLoop(gains.rate_roll_pitch, -self.max_angular_accel[1], self.max_angular_accel[1]),
                           PidLoop(gains.rate_yaw, -self.max_angular_accel[2], self.max_angular_accel[2])]

        # Attitude P with roll/pitch priority (PX4-style reduced attitude): yaw error is weighted down by
        # yaw_weight and the yaw gain compensated, so small-angle yaw response is still attitude_yaw.
        self.yaw_weight = min(1.0, max(0.0, gains.attitude_yaw / gains.attitude_roll_pitch))
        yaw_gain = gains.attitude_yaw / self.yaw_weight if self.yaw_weight > 1e-4 else 0.0
        self.attitude_gain = (gains.attitude_roll_pitch, gains.attitude_roll_pitch, yaw_gain)

        # Velocity commands (teleop, follow, braking) go through a critically damped second-order reference model
        # whose acceleration is fed forward and kept inside the reference limits (acceleration and jerk): a raw
        # step would wind the velocity integrators up and overshoot, and a bare slew demands attitude steps the
        # vehicle lags behind. Its bandwidth is the attitude loop's (horizontal) and the vertical velocity loop's.
        self.velocity_model_bandwidth = (self.attitude_gain[0], self.attitude_gain[0], gains.velocity_z.kp)
        reference = self.kinematic_limits()
        self.velocity_model_accel_xy = reference.accel_xy
        self.velocity_model_accel_z = min(reference.accel_up, reference.accel_down)
        self._velocity_model_jerk = (reference.jerk_xy, reference.jerk_xy, reference.jerk_z)
        self._velocity_reference: list[float] = [0.0, 0.0, 0.0]
        self._velocity_reference_accel: list[float] = [0.0, 0.0, 0.0]
        # Roughly how long the vehicle takes to follow a velocity change (reference model plus attitude lag).
        self.velocity_response_time_s = 2.0 / min(self.velocity_model_bandwidth) + 2.0 / self.attitude_gain[0]

        # Disturbance observers (Luenberger, both poles at the bandwidth): the estimated state follows the airframe
        # model driven by the motors' thrusts as the mixer commanded them, run through the nominal motor lag; the
        # disturbance state absorbs whatever makes the measurement differ. Gravity, drag and I·α stay as
        # feed-forward; the observers only carry the model's error.
        obs = gains.observer
        self._obs_gain_v = (obs.velocity_bw, obs.velocity_bw, obs.velocity_z_bw)
        self._obs_gain_w = obs.rate_bw                  # the same on every axis
        self._motor_lag = airframe.motor_time_constant_s
        self._allocation = tuple(tuple(row) for row in airframe.allocation_matrix().tolist())
        # An estimate never grows past what the vehicle could plausibly be fighting: half of g, half the torque.
        self._max_disturbance_v = 0.5 * GRAVITY
        self._max_disturbance_w = tuple((0.5 * self.max_angular_accel).tolist())
        self._motor_model = [airframe.hover_thrust_n / airframe.num_motors] * airframe.num_motors
        self._velocity_estimate: list[float] | None = None
        self._rate_estimate: list[float] | None = None
        self.velocity_disturbance = [0.0, 0.0, 0.0]    # m/s², world frame: add to the model to get reality
        self._disturbance_trend = [0.0, 0.0, 0.0]      # its rate of change, m/s³
        # A wrong mass or thrust constant scales every acceleration the thrust makes, in every direction: an
        # additive estimate would follow it only with lag along a curve. So the part of the disturbance along the
        # thrust axis is moved, slowly, into a thrust efficiency (real acceleration per modelled acceleration).
        self.thrust_efficiency = 1.0
        self._efficiency_rate = 0.5 * obs.velocity_z_bw
        self.rate_disturbance = [0.0, 0.0, 0.0]        # rad/s², body frame
        self.gyro_bias = [0.0, 0.0, 0.0]               # rad/s, estimated (see _unbias_gyro)
        self._last_quat: tuple[float, float, float, float] | None = None
        self._last_gyro = [0.0, 0.0, 0.0]

        # Acceleration feed-forward with lead: the thrust direction reaches a commanded acceleration only after
        # the attitude loop's time constant (plus the motor lag), the collective after the motor lag; leading the
        # reference's acceleration by its rate of change times that lag cancels it (the lag of a first-order
        # loop). The reference's jerk is its acceleration differenced, bounded by what references may carry.
        # The tilt follows its set-point with a low-frequency delay of 1/k_att (rate loop and motors included: for
        # τs³ + s² + k_r s + k_r k_att that delay is k_r / (k_r k_att)); thrust follows after the motor lag.
        delay = 1.5 * self.nominal_dt
        lead_xy = 1.0 / self.attitude_gain[0] + delay
        self._ff_lead = (lead_xy, lead_xy, self._motor_lag + delay)
        reference = self.kinematic_limits()
        self._max_ff_jerk = (2.0 * reference.jerk_xy, 2.0 * reference.jerk_xy, 2.0 * reference.jerk_z)
        self._last_accel_ff: list[float] | None = None

        self._mode: str | None = None
        self._yaw_target: float | None = None
        self._position_target: list[float] | None = None
        self._saturated_roll_pitch = False
        self._saturated_yaw = False
        self._saturated_thrust = False

    # -- state ------------------------------------------------------------------------------------------
    @property
    def position_target(self) -> np.ndarray | None:
        """The position the outer loop holds: the setpoint in position mode, the current position otherwise."""
        return None if self._position_target is None else np.array(self._position_target)

    @property
    def yaw_target(self) -> float | None:
        return self._yaw_target

    def reset(self, state: VehicleState | None = None) -> None:
        """Clear every integrator and derivative memory; hold the given state's position and heading."""
        for loop in (*self.position_loops, *self.velocity_loops, *self.rate_loops):
            loop.reset()
        self.velocity_disturbance = [0.0, 0.0, 0.0]
        self._disturbance_trend = [0.0, 0.0, 0.0]
        self.thrust_efficiency = 1.0
        self.rate_disturbance = [0.0, 0.0, 0.0]
        self._last_quat = None                         # (the gyro bias is the sensor's: it is kept)
        self._velocity_estimate = self._rate_estimate = None
        self._motor_model = [self.airframe.hover_thrust_n / self.airframe.num_motors] * self.airframe.num_motors
        self._last_accel_ff = None
        self._mode = None
        self._saturated_roll_pitch = self._saturated_yaw = self._saturated_thrust = False
        self._position_target = None if state is None else state.position.tolist()
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
        position, velocity = state.position.tolist(), state.velocity.tolist()
        quaternion, gyro = state.quaternion_wxyz.tolist(), state.angular_velocity_body.tolist()
        if not all(map(math.isfinite, position + velocity + quaternion + gyro)):
            raise ValueError("vehicle state has non-finite values")
        q = quat_normalize_tuple(quaternion)
        rot = quat_to_rotation_rows(q)
        omega = self._unbias_gyro(gyro, q, dt, integrate)
        yaw_now = yaw_from_quat(q)
        self._observe(velocity, omega, rot, dt, integrate, integrate_rates=integrate_rates)

        if setpoint.mode != self._mode:
            self._on_mode_change(setpoint.mode, position, velocity, yaw_now)
        self.last_setpoint = setpoint          # for plots of set-point vs state

        # Yaw target: held in position mode, integrated from the rate in velocity mode. Never let it lead the
        # vehicle by more than ~1 s of max yaw rate, so a saturated yaw does not wind up a spin.
        yaw_rate_ff = _clamp(setpoint.yaw_rate_rad_s, self.max_yaw_rate)
        if setpoint.mode == POSITION_MODE:
            self._yaw_target = wrap_angle(setpoint.yaw_rad)
        else:
            lead = wrap_angle(self._yaw_target + yaw_rate_ff * dt - yaw_now)
            lead = _clamp(lead, self.max_yaw_rate)
            self._yaw_target = wrap_angle(yaw_now + lead)

        velocity_sp, accel_ff = self._velocity_setpoint(position, velocity, setpoint, dt, integrate)
        accel_sp = self._acceleration_setpoint(velocity, rot, velocity_sp, accel_ff, dt, integrate)
        attitude_sp, collective = self._attitude_setpoint(rot, accel_sp, self._yaw_target)
        rate_sp = self._rate_setpoint(rot, q, attitude_sp, yaw_rate_ff)
        mixed, torque = self._rates_and_mixer(omega, rate_sp, collective, dt, integrate_rates)
        yaw_rate_sp = self.gains.attitude_yaw * wrap_angle(self._yaw_target - yaw_now) + yaw_rate_ff
        return self._output(mixed, rate_sp, attitude_sp, accel_sp, torque, velocity_sp,
                            _clamp(yaw_rate_sp, self.max_yaw_rate))

    def update_attitude(self, state: VehicleState, attitude_sp: np.ndarray, collective_n: float, dt: float,
                        integrate: bool = True) -> ControlOutput:
        """Attitude + rate loops only: track a given attitude with a given collective (open-loop descents)."""
        q = quat_normalize_tuple(state.quaternion_wxyz.tolist())
        rot = quat_to_rotation_rows(q)
        omega = self._unbias_gyro(state.angular_velocity_body.tolist(), q, dt, False)
        self._observe(state.velocity.tolist(), omega, rot, dt, integrate, linear=False)
        collective_n = min(max(float(collective_n), 0.0), self.max_collective_n)
        rate_sp = self._rate_setpoint(rot, q, quat_normalize_tuple(attitude_sp), 0.0)
        mixed, torque = self._rates_and_mixer(omega, rate_sp, collective_n, dt, integrate)
        return self._output(mixed, rate_sp, attitude_sp, (0.0, 0.0, 0.0), torque)

    def mix_collective_only(self, collective_n: float) -> ControlOutput:
        """Equal share of the collective on every motor: the last resort when no attitude is known."""
        result = self.mixer.mix(float(np.clip(collective_n, 0.0, self.max_collective_n)), np.zeros(3))
        self._motor_model = result.motor_thrusts_n.tolist()   # no dynamics model needed here: observers restart
        self._velocity_estimate = self._rate_estimate = None
        return ControlOutput(result.motor_thrusts_n, float(result.motor_thrusts_n.sum()), np.zeros(3),
                             np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(3), np.zeros(3), result.saturated)

    def zero_output(self) -> ControlOutput:
        """Motors off."""
        return ControlOutput(np.zeros(self.airframe.num_motors), 0.0, np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]),
                             np.zeros(3), np.zeros(3), False)

    @staticmethod
    def _output(mixed: MixerResult, rate_sp, attitude_sp, accel_sp, torque, velocity_sp=(0.0, 0.0, 0.0),
                yaw_rate_sp: float = 0.0) -> ControlOutput:
        motors = mixed.motor_thrusts_n
        return ControlOutput(motors, float(motors.sum()), np.array(rate_sp), np.array(attitude_sp, float),
                             np.array(accel_sp), np.array(torque), mixed.saturated, np.array(velocity_sp), yaw_rate_sp)

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

    def _unbias_gyro(self, gyro: list[float], q: tuple, dt: float, learn: bool) -> list[float]:
        """Body rates minus the estimated gyro bias. The bias is learnt (time constant GYRO_BIAS_TIME_S) from the
        difference between the gyro and the rotation between successive attitudes: a biased gyro would make the
        rate loop hold a constant rotation against the attitude loop, i.e. a steady tilt error."""
        previous, self._last_quat = self._last_quat, q
        # Learnt in the air and while turning slowly only (contacts and fast turns disturb the comparison).
        if learn and previous is not None and max(abs(gyro[0]), abs(gyro[1]), abs(gyro[2])) < 1.0:
            pw, px, py, pz = previous
            dw, dx, dy, dz = quat_multiply_tuple((pw, -px, -py, -pz), q)
            twice_sign = 2.0 * math.copysign(1.0, dw)     # rates from the attitude: 2 sign(δw) δxyz / dt
            step = dt / GYRO_BIAS_TIME_S
            # The gyro averaged over the same step as the attitude difference.
            self.gyro_bias = [
                _clamp(bias + step * (0.5 * (rate + last) - twice_sign * delta / dt - bias), MAX_GYRO_BIAS)
                for bias, rate, last, delta in zip(self.gyro_bias, gyro, self._last_gyro, (dx, dy, dz))]
        self._last_gyro = gyro
        bx, by, bz = self.gyro_bias
        if not (bx or by or bz):
            return gyro
        return [gyro[0] - bx, gyro[1] - by, gyro[2] - bz]

    def _observe(self, velocity: list[float], omega: list[float], rot: tuple, dt: float, integrate: bool,
                 linear: bool = True, integrate_rates: bool | None = None) -> None:
        """Advance the disturbance observers over the last step (the motors' modelled thrust acted during it)."""
        motors = self._motor_model
        wrench = [sum(map(operator.mul, row, motors)) for row in self._allocation]
        integrate_rates = integrate if integrate_rates is None else integrate_rates
        w = self._obs_gain_w
        if integrate_rates and self._rate_estimate is not None and w > 0.0:
            ix, iy, iz = self.inertia
            wx, wy, wz = omega
            gyroscopic = cross3_tuple(omega, (ix * wx, iy * wy, iz * wz))
            self._rate_estimate, self.rate_disturbance = map(list, zip(*[
                (estimate + dt * ((torque - gyro) / inertia + disturbance + 2.0 * w * (rate - estimate)),
                 _clamp(disturbance + dt * w * w * (rate - estimate), limit))
                for estimate, torque, gyro, inertia, disturbance, rate, limit in zip(
                    self._rate_estimate, wrench[1:], gyroscopic, self.inertia, self.rate_disturbance, omega,
                    self._max_disturbance_w)]))
        else:
            self._rate_estimate = omega
        if not linear:
            self._velocity_estimate = None
            return
        if integrate and self._velocity_estimate is not None and max(self._obs_gain_v) > 0.0:
            body_z = (rot[0][2], rot[1][2], rot[2][2])
            thrust_accel = wrench[0] / self.mass
            disturbance = self.velocity_disturbance
            if thrust_accel > 0.3 * GRAVITY:
                along = (disturbance[0] * body_z[0] + disturbance[1] * body_z[1]
                         + disturbance[2] * body_z[2]) / thrust_accel
                self.thrust_efficiency = min(max(self.thrust_efficiency * (1.0 + dt * self._efficiency_rate * along),
                                                 0.5), 2.0)
            accel = self.thrust_efficiency * thrust_accel
            drag = _drag_world(rot, self.drag_per_kg, velocity)
            model = [body_z[0] * accel - drag[0], body_z[1] * accel - drag[1], body_z[2] * accel - drag[2] - GRAVITY]
            # Extended state: the disturbance and its rate (drag grows with speed along a curve, gusts ramp), so a
            # ramping disturbance is followed without the lag a constant-disturbance model would have.
            limit = self._max_disturbance_v
            self._velocity_estimate, self.velocity_disturbance, self._disturbance_trend = map(list, zip(*[
                (estimate + dt * (m + d + 3.0 * g * (v - estimate)),
                 _clamp(d + dt * (trend + 3.0 * g * g * (v - estimate)), limit),
                 trend + dt * g * g * g * (v - estimate))
                for estimate, m, d, trend, g, v in zip(self._velocity_estimate, model, disturbance,
                                                       self._disturbance_trend, self._obs_gain_v, velocity)]))
        else:
            self._velocity_estimate = velocity
            self._disturbance_trend = [0.0, 0.0, 0.0]

    def _on_mode_change(self, mode: str, position: list[float], velocity: list[float], yaw_now: float) -> None:
        # Entering position mode from velocity mode: the position integrators restart from zero so that no stale
        # integral kicks the vehicle; derivative memory is cleared with them.
        for loop in self.position_loops:
            loop.reset()
        if self._position_target is None:
            self._position_target = position
        if self._yaw_target is None or abs(wrap_angle(self._yaw_target - yaw_now)) > self.max_yaw_rate:
            self._yaw_target = yaw_now
        self._velocity_reference = velocity                # shape velocity commands from the current motion
        self._velocity_reference_accel = [0.0, 0.0, 0.0]
        self._last_accel_ff = None
        self._mode = mode

    def _velocity_setpoint(self, position: list[float], velocity: list[float], setpoint: Setpoint, dt: float,
                           integrate: bool) -> tuple[list[float], list[float]]:
        """Velocity setpoint (clamped to the speed limits) and the acceleration feed-forward that goes with it."""
        lim = self.gains.limits
        accel_ff = setpoint.acceleration.tolist()
        if setpoint.mode == POSITION_MODE:
            target = setpoint.position.tolist()
            self._position_target = target
            correction = [loop(goal, measured, dt, integrate)
                          for loop, goal, measured in zip(self.position_loops, target, position)]
            correction = self._brakeable(correction, [goal - measured for goal, measured in zip(target, position)])
            vx, vy, vz = (c + v for c, v in zip(correction, setpoint.velocity.tolist()))
        else:
            # Position loop bypassed; it tracks the vehicle so that going back to position mode starts at rest.
            self._position_target = position
            vx, vy, vz, model_accel = self._shape_velocity(_clamp_speed(*setpoint.velocity.tolist(), lim), dt)
            accel_ff = [a + m for a, m in zip(accel_ff, model_accel)]
        return _clamp_speed(vx, vy, vz, lim), accel_ff

    def _brakeable(self, velocity: list[float], error: list[float]) -> list[float]:
        """Cap the position loop's correction at the speed from which half the acceleration limit stops the
        vehicle at the target: a far target (a bare step) is approached without overshoot, while near it the
        P gain rules as designed."""
        vx, vy, vz = velocity
        error_xy = math.hypot(error[0], error[1])
        cap = math.sqrt(self.max_tilt_accel * error_xy)             # sqrt(2 · a/2 · |e|)
        speed = math.hypot(vx, vy)
        if speed > cap:
            vx, vy = vx * (cap / speed), vy * (cap / speed)
        brake_z = self.max_accel_down if error[2] > 0.0 else self.max_accel_up
        return [vx, vy, _clamp(vz, math.sqrt(brake_z * abs(error[2])))]

    def _shape_velocity(self, command: list[float], dt: float) -> tuple[float, float, float, list[float]]:
        """Advance the velocity reference model one step towards `command`; returns (velocity, acceleration)."""
        accel = [
            reference_accel + _clamp(w * w * (goal - reference) - 2.0 * w * reference_accel, max_jerk) * dt
            for w, goal, reference, reference_accel, max_jerk in zip(
                self.velocity_model_bandwidth, command, self._velocity_reference, self._velocity_reference_accel,
                self._velocity_model_jerk)]
        norm_xy = math.hypot(accel[0], accel[1])
        if norm_xy > self.velocity_model_accel_xy:
            scale = self.velocity_model_accel_xy / norm_xy
            accel[0], accel[1] = accel[0] * scale, accel[1] * scale
        accel[2] = _clamp(accel[2], self.velocity_model_accel_z)
        self._velocity_reference_accel = accel
        self._velocity_reference = [v + a * dt for v, a in zip(self._velocity_reference, accel)]
        return (*self._velocity_reference, accel)

    def _acceleration_setpoint(self, velocity: list[float], rot: tuple, velocity_sp: list[float],
                               accel_ff: list[float], dt: float, integrate: bool) -> list[float]:
        # Feed-forward: the reference's own acceleration, plus the airframe's linear drag at the commanded
        # velocity (body-axis coefficients), so the integrators only carry what is not modelled.
        # Everything known in advance (reference, modelled drag, estimated disturbance) is led together.
        drag = _drag_world(rot, self.drag_per_kg, velocity_sp)
        accel_ff = [a + d - e for a, d, e in zip(accel_ff, drag, self.velocity_disturbance)]
        last = self._last_accel_ff
        self._last_accel_ff = accel_ff
        if last is None:
            accel = list(accel_ff)
        else:
            accel = [a + lead * _clamp((a - previous) / dt, max_jerk) for a, previous, lead, max_jerk
                     in zip(accel_ff, last, self._ff_lead, self._max_ff_jerk)]
        # Vertical first: its integrator is frozen while collective thrust is saturated.
        loops = self.velocity_loops
        accel[2] += loops[2](velocity_sp[2], velocity[2], dt, integrate and not self._saturated_thrust)
        accel[2] = min(max(accel[2], -self.max_accel_down), self.max_accel_up)
        accel[0] += loops[0](velocity_sp[0], velocity[0], dt, integrate)
        accel[1] += loops[1](velocity_sp[1], velocity[1], dt, integrate)
        # Horizontal acceleration is what is left within the tilt limit at this vertical acceleration.
        max_xy = (GRAVITY + accel[2]) * math.tan(self.max_tilt)
        norm_xy = math.hypot(accel[0], accel[1])
        if norm_xy > max_xy:
            scale = max_xy / norm_xy
            accel[0], accel[1] = accel[0] * scale, accel[1] * scale
        return accel

    def _attitude_setpoint(self, rot: tuple, accel_sp: list[float], yaw_sp: float
                           ) -> tuple[tuple[float, float, float, float], float]:
        """The attitude that points the thrust along the required thrust vector with the heading yaw_sp, and the
        collective thrust."""
        # Thrust divided by the learnt thrust efficiency: a lighter vehicle (or stronger motors) gets less.
        scale = self.mass / self.thrust_efficiency
        tx, ty, tz = scale * accel_sp[0], scale * accel_sp[1], scale * (accel_sp[2] + GRAVITY)
        norm = math.sqrt(tx * tx + ty * ty + tz * tz)
        body_z_d = (tx / norm, ty / norm, tz / norm)
        yx, yy, yz = cross3_tuple(body_z_d, (math.cos(yaw_sp), math.sin(yaw_sp), 0.0))
        norm = math.sqrt(yx * yx + yy * yy + yz * yz)      # never degenerate: tilt is limited well below 90°
        body_y_d = (yx / norm, yy / norm, yz / norm)
        body_x_d = cross3_tuple(body_y_d, body_z_d)
        attitude_sp = rotation_rows_to_quat_tuple(tuple(zip(body_x_d, body_y_d, body_z_d)))

        # Collective along the current body z: while the attitude catches up, thrust is not spent pushing
        # the vehicle sideways.
        along_body_z = tx * rot[0][2] + ty * rot[1][2] + tz * rot[2][2]
        return attitude_sp, min(max(along_body_z, 0.0), self.max_collective_n)

    def _rate_setpoint(self, rot: tuple, q: tuple, q_sp: tuple, yaw_rate_ff: float) -> list[float]:
        rot_sp = quat_to_rotation_rows(q_sp)
        # Reduced attitude: the rotation that aligns the thrust axis only, applied in the world frame.
        tilt = quat_between_tuple((rot[0][2], rot[1][2], rot[2][2]), (rot_sp[0][2], rot_sp[1][2], rot_sp[2][2]))
        q_reduced = q_sp if tilt is None else quat_multiply_tuple(tilt, q)
        # The remaining rotation about body z (yaw), scaled down so roll/pitch are corrected first.
        rw, rx, ry, rz = q_reduced
        mix_w, _, _, mix_z = quat_multiply_tuple((rw, -rx, -ry, -rz), q_sp)
        if mix_w < 0.0:                                     # the shortest way round
            mix_w, mix_z = -mix_w, -mix_z
        half_yaw_w = math.acos(min(1.0, max(-1.0, mix_w)))
        half_yaw_z = math.asin(min(1.0, max(-1.0, mix_z)))
        q_weighted = quat_multiply_tuple(q_reduced, (math.cos(self.yaw_weight * half_yaw_w), 0.0, 0.0,
                                                     math.sin(self.yaw_weight * half_yaw_z)))
        qw, qx, qy, qz = q
        error_w, *error = quat_multiply_tuple((qw, -qx, -qy, -qz), q_weighted)
        sign = -1.0 if error_w < 0.0 else 1.0
        limits = (self.max_roll_pitch_rate, self.max_roll_pitch_rate, self.max_yaw_rate)
        # Plus the yaw rate: world z expressed in the body frame, times yaw rate.
        return [_clamp(2.0 * (sign * e) * gain + world_z * yaw_rate_ff, limit) for e, gain, world_z, limit
                in zip(error, self.attitude_gain, rot[2], limits)]

    def _rates_and_mixer(self, omega: list[float], rate_sp: list[float], collective: float, dt: float,
                         integrate: bool) -> tuple[MixerResult, list[float]]:
        freeze = (self._saturated_roll_pitch, self._saturated_roll_pitch, self._saturated_yaw)
        angular_accel = [loop(sp, measured, dt, integrate and not frozen) for loop, sp, measured, frozen
                         in zip(self.rate_loops, rate_sp, omega, freeze)]
        ix, iy, iz = self.inertia
        wx, wy, wz = omega
        gyroscopic = cross3_tuple(omega, (ix * wx, iy * wy, iz * wz))
        torque = [inertia * (a - d) + g for inertia, a, d, g
                  in zip(self.inertia, angular_accel, self.rate_disturbance, gyroscopic)]
        mixed = self.mixer.mix(collective, torque)
        # The nominal motor lag over the coming step: what the observers will compare the next state with.
        lag = 1.0 - math.exp(-dt / self._motor_lag)
        self._motor_model = [m + (t - m) * lag for m, t in zip(self._motor_model, mixed.motor_thrusts_n.tolist())]
        self._saturated_roll_pitch = mixed.roll_pitch_scale < 1.0
        self._saturated_yaw = mixed.yaw_scale < 1.0
        self._saturated_thrust = abs(mixed.thrust_shift_n) > 1e-6 or collective >= self.max_collective_n
        return mixed, torque
