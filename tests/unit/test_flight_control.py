"""Cascaded controller and mixer, closed loop on a rigid-body quadrotor test double.

``QuadrotorSim`` below is the test double the flight tests share (test_flight_safety and test_flight_plan import
it from here): 6-DOF rigid body, first-order motor lag, linear body drag, gyroscopic torque, ground contact. Its
rotation maths is written independently of the controller's so a shared sign error cannot hide.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from mmchat_ros.core.airframe import GRAVITY, load_airframe
from mmchat_ros.core.flight.control import CascadedController, Setpoint, VehicleState
from mmchat_ros.core.flight.gains import ControlLimits, gains_from_dict, load_gains
from mmchat_ros.core.flight.mixer import Mixer
from mmchat_ros.core.geometry import (quat_from_euler, quat_to_rotation_matrix, rotation_matrix_to_quat, tilt_from_quat,
                                      yaw_from_quat)

AIRFRAMES = ("x500", "crazyflie")
RATE_HZ = 250.0
DT = 1.0 / RATE_HZ


# ------------------------------------------------------------------------------------------------ test double
def _rotation_to_quat(r: np.ndarray) -> np.ndarray:
    w = math.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2])) / 2.0
    x = math.copysign(math.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2])) / 2.0, r[2, 1] - r[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2])) / 2.0, r[0, 2] - r[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2])) / 2.0, r[1, 0] - r[0, 1])
    q = np.array([w, x, y, z])
    return q / np.linalg.norm(q)


def _yaw_rotation(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class QuadrotorSim:
    """Rigid-body quadrotor: state in the world frame (z up), rotation matrix body→world, body rates."""

    def __init__(self, airframe, physics_dt: float = 0.002, mass_scale: float = 1.0, ground_z: float = 0.0):
        self.airframe = airframe
        self.mass = airframe.mass_kg * mass_scale          # the controller only knows the nominal mass
        self.allocation = airframe.allocation_matrix()
        self.inertia = np.array(airframe.inertia_kgm2, float)
        self.drag = np.array(airframe.drag_coeff_ns_per_m, float)
        self.physics_dt = physics_dt
        self.ground_z = ground_z
        self.position = np.array([0.0, 0.0, ground_z])
        self.velocity = np.zeros(3)
        self.rotation = np.eye(3)
        self.omega = np.zeros(3)
        self.motor_thrusts = np.zeros(airframe.num_motors)
        self.external_force = np.zeros(3)                    # world frame, N (wind gusts in tests)
        self.time = 0.0

    def hover_at(self, position, yaw_rad: float = 0.0) -> "QuadrotorSim":
        self.position = np.array(position, float)
        self.rotation = _yaw_rotation(yaw_rad)
        self.motor_thrusts = np.full(self.airframe.num_motors, self.mass * GRAVITY / self.airframe.num_motors)
        return self

    def state(self) -> VehicleState:
        return VehicleState(self.position.copy(), self.velocity.copy(), _rotation_to_quat(self.rotation),
                            self.omega.copy())

    @property
    def yaw(self) -> float:
        return math.atan2(self.rotation[1, 0], self.rotation[0, 0])

    @property
    def tilt_deg(self) -> float:
        return math.degrees(math.acos(min(1.0, max(-1.0, self.rotation[2, 2]))))

    def on_ground(self) -> bool:
        return self.position[2] <= self.ground_z + 1e-9

    def advance(self, motor_commands, duration: float) -> None:
        af = self.airframe
        commands = np.clip(np.asarray(motor_commands, float), 0.0, af.motor_max_thrust_n)
        steps = max(1, round(duration / self.physics_dt))
        dt = duration / steps
        lag = 1.0 - math.exp(-dt / af.motor_time_constant_s)      # exact first-order motor response per step
        inertia, weight = self.inertia, self.mass * GRAVITY
        for _ in range(steps):
            self.motor_thrusts += (commands - self.motor_thrusts) * lag
            thrust, tau_x, tau_y, tau_z = self.allocation @ self.motor_thrusts
            r = self.rotation
            force = r @ (np.array([0.0, 0.0, thrust]) - self.drag * (r.T @ self.velocity)) + self.external_force
            force[2] -= weight
            w = self.omega
            gyroscopic = np.array([w[1] * inertia[2] * w[2] - w[2] * inertia[1] * w[1],
                                   w[2] * inertia[0] * w[0] - w[0] * inertia[2] * w[2],
                                   w[0] * inertia[1] * w[1] - w[1] * inertia[0] * w[0]])
            self.omega = w + dt * (np.array([tau_x, tau_y, tau_z]) - gyroscopic) / inertia
            self.velocity = self.velocity + dt * force / self.mass
            self.position = self.position + dt * self.velocity
            angle = float(np.linalg.norm(self.omega)) * dt
            if angle > 0.0:                                        # exact rotation over the step (Rodrigues)
                k = self.omega * dt / angle
                skew = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
                self.rotation = r @ (np.eye(3) + math.sin(angle) * skew + (1.0 - math.cos(angle)) * skew @ skew)
            if self.position[2] <= self.ground_z:
                # Ground contact: no sinking, friction stops the body; resting on its legs levels it.
                self.position[2] = self.ground_z
                if self.velocity[2] < 0.0 or force[2] <= 0.0:
                    self.velocity[:] = 0.0
                if force[2] <= 0.0:
                    self.omega[:] = 0.0
                    self.rotation = _yaw_rotation(self.yaw)
            self.time += dt


class FlightHarness:
    """FlightCore flying QuadrotorSim in closed loop on simulated time (shared with the other flight tests)."""

    def __init__(self, airframe_name: str = "x500", config=None, authorised: bool = True):
        from mmchat_ros.core.flight.flight_core import FlightCore
        self.core = FlightCore.from_names(airframe_name, config)
        self.sim = QuadrotorSim(self.core.airframe, physics_dt=1.0 / self.core.config.control_rate_hz)
        self.dt = 1.0 / self.core.config.control_rate_hz
        self.now = 0.0
        self.odometry = True            # feed /odom
        self.imu = True                 # feed the IMU attitude
        self.armed = False
        self.thrusts = np.zeros(self.core.airframe.num_motors)
        self.core.set_authorised(authorised, self.now)
        self.core.update_odometry(self.sim.state(), self.now)

    def run(self, seconds: float, each=None, until=None):
        """Fly for `seconds` (or until `until(status)`); `each(now)` runs before every step. Returns the status."""
        status = None
        for _ in range(int(round(seconds / self.dt))):
            state = self.sim.state()
            if self.odometry:
                self.core.update_odometry(state, self.now)
            if self.imu and self.core.wants_attitude(self.now):      # what the flight controller node reads
                self.core.update_attitude(state.quaternion_wxyz, state.angular_velocity_body, self.now)
            if each is not None:
                each(self.now)
            self.thrusts, self.armed, status = self.core.step(self.now)
            self.sim.advance(self.thrusts if self.armed else np.zeros_like(self.thrusts), self.dt)
            self.now += self.dt
            if until is not None and until(status):
                break
        return status

    def take_off(self, height=None):
        decision = self.core.takeoff(self.now, height)
        assert decision, decision.reason
        status = self.run(10.0, until=lambda s: s.mode == "HOVER")
        assert status.mode == "HOVER", status
        return status


def fly(controller, sim, setpoint, seconds, record=None):
    """Run the loop at the control rate; returns positions (n, 3)."""
    positions = np.empty((int(round(seconds * RATE_HZ)), 3))
    for i in range(len(positions)):
        out = controller.update(sim.state(), setpoint, DT)
        if record is not None:
            record.append(out)
        sim.advance(out.motor_thrusts_n, DT)
        positions[i] = sim.position
    return positions


def make(name, **sim_args):
    airframe = load_airframe(name)
    return airframe, CascadedController(airframe, load_gains(name), RATE_HZ), QuadrotorSim(airframe, **sim_args)


# ------------------------------------------------------------------------------------------------------ gains
def test_gains_file_covers_every_airframe_with_valid_limits():
    for name in AIRFRAMES:
        gains = load_gains(name)
        assert gains.position_z.kp > 0 and gains.rate_roll_pitch.kp > gains.attitude_roll_pitch > 0
        assert 0 < gains.limits.max_tilt_deg < 80 and gains.limits.max_speed_xy > 0
    with pytest.raises(KeyError, match="no flight gains"):
        load_gains("no_such_airframe")


def test_gains_validation_names_the_bad_entry():
    spec = {"position": {"xy": {"kp": 1}, "z": {"kp": 1}}, "velocity": {"xy": {"kp": 1}, "z": {"kp": -2}},
            "attitude": {"roll_pitch": {"kp": 6}, "yaw": {"kp": 2}},
            "rate": {"roll_pitch": {"kp": 15}, "yaw": {"kp": 5}}}
    with pytest.raises(ValueError, match=r"velocity\.z"):
        gains_from_dict(spec, "test")
    spec["velocity"]["z"]["kp"] = 2
    spec["limits"] = {"max_accel_down": 12.0}
    with pytest.raises(ValueError, match="max_accel_down"):
        gains_from_dict(spec, "test")


# --------------------------------------------------------------------------------------------------- rotations
def test_rotation_helpers_agree_with_the_independent_double():
    rng = np.random.default_rng(3)
    for _ in range(20):
        roll, pitch, yaw = rng.uniform(-1.2, 1.2), rng.uniform(-1.2, 1.2), rng.uniform(-3.1, 3.1)
        q = quat_from_euler(roll, pitch, yaw)
        r = quat_to_rotation_matrix(q)
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(_rotation_to_quat(r) * np.sign(_rotation_to_quat(r)[0]), q * np.sign(q[0]),
                                   atol=1e-9)
        np.testing.assert_allclose(rotation_matrix_to_quat(r), q * np.sign(q[0]), atol=1e-9)
        assert yaw_from_quat(q) == pytest.approx(yaw, abs=1e-9)
    # REP 103: positive yaw turns body x towards world +y (left).
    assert quat_to_rotation_matrix(quat_from_euler(0, 0, math.pi / 2)) @ np.array([1.0, 0, 0]) == \
        pytest.approx([0, 1, 0], abs=1e-12)


# ------------------------------------------------------------------------------------------------------- mixer
@pytest.mark.parametrize("name", AIRFRAMES)
def test_mixer_inverts_the_allocation_when_unsaturated(name):
    airframe = load_airframe(name)
    mixer = Mixer(airframe)
    hover = airframe.hover_thrust_n
    torque = np.array([0.02, -0.015, 0.004]) * airframe.arm_length_m * airframe.motor_max_thrust_n
    result = mixer.mix(hover, torque)
    assert not result.saturated
    np.testing.assert_allclose(mixer.wrench(result.motor_thrusts_n), [hover, *torque], rtol=1e-9, atol=1e-12)


def test_mixer_keeps_roll_pitch_over_thrust_and_yaw_when_saturated():
    airframe = load_airframe("x500")
    mixer = Mixer(airframe)
    max_total = airframe.num_motors * airframe.motor_max_thrust_n
    roll_pitch = np.array([1.0, -0.6])          # N·m: a hard correction

    # Full collective + hard roll/pitch + yaw: roll/pitch delivered exactly, collective gives way, yaw last.
    result = mixer.mix(0.98 * max_total, np.array([*roll_pitch, 0.15]))
    wrench = mixer.wrench(result.motor_thrusts_n)
    assert np.all(result.motor_thrusts_n >= 0) and np.all(result.motor_thrusts_n <= airframe.motor_max_thrust_n)
    np.testing.assert_allclose(wrench[1:3], roll_pitch, rtol=1e-9)
    assert result.roll_pitch_scale == 1.0
    assert wrench[0] < 0.98 * max_total and result.thrust_shift_n < 0
    assert result.yaw_scale < 1.0 and 0.0 <= wrench[3] < 0.15

    # Zero collective: thrust is raised so the torque can still be made (attitude before exact thrust).
    result = mixer.mix(0.0, np.array([*roll_pitch, 0.0]))
    np.testing.assert_allclose(mixer.wrench(result.motor_thrusts_n)[1:3], roll_pitch, rtol=1e-9)
    assert result.thrust_shift_n > 0

    # More roll/pitch than the motors can make: scaled down uniformly (direction kept), never out of range.
    result = mixer.mix(0.5 * max_total, np.array([10.0, -6.0, 0.0]))
    wrench = mixer.wrench(result.motor_thrusts_n)
    assert result.roll_pitch_scale < 1.0
    assert wrench[1] / wrench[2] == pytest.approx(10.0 / -6.0, rel=1e-9)
    assert np.all(result.motor_thrusts_n >= -1e-12) and np.all(result.motor_thrusts_n <= 7.0 + 1e-12)


# ---------------------------------------------------------------------------------------------- closed loop
@pytest.mark.parametrize("name", AIRFRAMES)
def test_hover_holds_position_within_5_cm(name):
    airframe, controller, sim = make(name)
    sim.hover_at((0.3, -0.2, 1.0), yaw_rad=0.4)
    setpoint = Setpoint("position", (0.3, -0.2, 1.0), yaw_rad=0.4)
    positions = fly(controller, sim, setpoint, 3.0)
    assert np.max(np.linalg.norm(positions - [0.3, -0.2, 1.0], axis=1)) < 0.05
    assert abs(math.remainder(sim.yaw - 0.4, math.tau)) < math.radians(1.0)


def test_hover_integrators_absorb_a_heavier_vehicle_and_a_steady_wind():
    # 8 % more mass than the controller knows, and a 0.6 N side wind: the integrators must take both out.
    airframe, controller, sim = make("x500", mass_scale=1.08)
    sim.hover_at((0.0, 0.0, 1.0))
    sim.external_force = np.array([0.0, 0.6, 0.0])
    positions = fly(controller, sim, Setpoint("position", (0.0, 0.0, 1.0)), 8.0)
    assert np.linalg.norm(positions[-1] - [0.0, 0.0, 1.0]) < 0.05
    assert np.max(np.linalg.norm(positions[-250:] - [0.0, 0.0, 1.0], axis=1)) < 0.05


@pytest.mark.parametrize("name", AIRFRAMES)
def test_altitude_step_of_1_m_overshoots_under_10_percent_and_settles_within_3_s(name):
    airframe, controller, sim = make(name)
    sim.hover_at((0.0, 0.0, 1.0))
    positions = fly(controller, sim, Setpoint("position", (0.0, 0.0, 2.0)), 5.0)
    z = positions[:, 2]
    overshoot = (z.max() - 2.0) / 1.0
    outside = np.nonzero(np.abs(z - 2.0) > 0.05)[0]       # 5 % settling band
    settling_time = (outside[-1] + 1) * DT if len(outside) else 0.0
    assert overshoot < 0.10, f"overshoot {overshoot:.1%}"
    assert settling_time < 3.0, f"settling time {settling_time:.2f} s"
    assert np.max(np.abs(positions[:, :2])) < 0.01          # a vertical step does not wander sideways


@pytest.mark.parametrize("name", AIRFRAMES)
def test_2_m_move_along_the_heading_ends_within_15_cm_inside_the_tilt_limit(name):
    airframe, controller, sim = make(name)
    yaw = math.radians(30.0)
    sim.hover_at((1.0, 1.0, 1.5), yaw_rad=yaw)
    goal = np.array([1.0 + 2.0 * math.cos(yaw), 1.0 + 2.0 * math.sin(yaw), 1.5])   # 2 m forward
    max_tilt = 0.0
    setpoint = Setpoint("position", goal, yaw_rad=yaw)
    for _ in range(int(6.0 * RATE_HZ)):
        out = controller.update(sim.state(), setpoint, DT)
        sim.advance(out.motor_thrusts_n, DT)
        max_tilt = max(max_tilt, sim.tilt_deg)
    assert np.linalg.norm(sim.position - goal) < 0.15
    assert np.linalg.norm(sim.velocity) < 0.1
    assert max_tilt < controller.gains.limits.max_tilt_deg + 3.0


def _recover(name, target_quat, collective_fraction, seconds=1.5):
    """Attitude + rate loops only: from 25° roll / -10° pitch to `target_quat` at a fixed collective."""
    airframe = load_airframe(name)
    controller = CascadedController(airframe, load_gains(name), RATE_HZ)
    sim = QuadrotorSim(airframe).hover_at((0.0, 0.0, 20.0))
    sim.rotation = quat_to_rotation_matrix(quat_from_euler(math.radians(25.0), math.radians(-10.0), 0.0))
    collective = collective_fraction * airframe.num_motors * airframe.motor_max_thrust_n
    tilts, yaws, outputs = [], [], []
    for _ in range(int(seconds * RATE_HZ)):
        out = controller.update_attitude(sim.state(), target_quat, collective, DT)
        sim.advance(out.motor_thrusts_n, DT)
        tilts.append(sim.tilt_deg)
        yaws.append(math.degrees(sim.yaw))
        outputs.append(out)
    return np.array(tilts), np.array(yaws), outputs, airframe


@pytest.mark.parametrize("name", AIRFRAMES)
def test_mixer_saturation_keeps_the_attitude_under_control(name):
    # 95 % collective, a 25°/10° upset and a 90° yaw demand at once: the motors saturate, and roll/pitch come
    # back as fast as with no yaw demand at all; yaw follows with what is left.
    tilts, yaws, outputs, airframe = _recover(name, quat_from_euler(0.0, 0.0, math.radians(90.0)), 0.95)
    reference_tilts, _, _, _ = _recover(name, np.array([1.0, 0.0, 0.0, 0.0]), 0.95, seconds=1.5)
    recovered_at = np.argmax(tilts < 5.0) * DT
    assert any(o.saturated for o in outputs)
    assert all(np.all((o.motor_thrusts_n >= 0) & (o.motor_thrusts_n <= airframe.motor_max_thrust_n))
               for o in outputs)
    # Within about 3 attitude time constants (the gains come from the rule, so the bound does too).
    settle_s = 3.0 / load_gains(name).attitude_roll_pitch
    assert 0.0 < recovered_at <= np.argmax(reference_tilts < 5.0) * DT + 0.05 < settle_s
    assert tilts[int(settle_s * RATE_HZ):].max() < 4.0
    assert yaws[-1] > 45.0                                   # yaw gets there, after roll/pitch


@pytest.mark.parametrize("name", AIRFRAMES)
def test_full_power_climb_with_a_yaw_turn_stays_upright(name):
    airframe = load_airframe(name)
    base = load_gains(name)
    limits = ControlLimits(**{**base.limits.__dict__, "max_accel_up": 50.0, "max_speed_z": 5.0})
    controller = CascadedController(airframe, type(base)(**{**base.__dict__, "limits": limits}), RATE_HZ)
    sim = QuadrotorSim(airframe).hover_at((0.0, 0.0, 2.0))
    setpoint = Setpoint("position", (0.0, 0.0, 40.0), yaw_rad=math.pi - 0.01)   # far: still climbing at 2 s
    positions = fly(controller, sim, setpoint, 2.0)
    assert sim.velocity[2] > 3.0                             # climbing at the motors' limit...
    assert np.max(np.abs(positions[:, :2])) < 0.02           # ...straight up
    assert sim.tilt_deg < 1.0 and abs(math.degrees(sim.yaw)) > 90.0


# ---------------------------------------------------------------------------------------------- modes, yaw
def test_velocity_mode_tracks_velocity_and_integrates_yaw_rate():
    airframe, controller, sim = make("x500")
    sim.hover_at((0.0, 0.0, 1.0))
    setpoint = Setpoint("velocity", velocity=(0.8, -0.4, 0.2), yaw_rate_rad_s=0.5)
    fly(controller, sim, setpoint, 4.0)
    np.testing.assert_allclose(sim.velocity, [0.8, -0.4, 0.2], atol=0.05)
    assert sim.yaw == pytest.approx(0.5 * 4.0, abs=0.15)
    # The position loop holds the current position as its target while bypassed.
    np.testing.assert_allclose(controller.position_target, sim.position, atol=0.02)


def test_switching_from_velocity_to_position_mode_is_smooth():
    airframe, controller, sim = make("x500")
    sim.hover_at((0.0, 0.0, 1.0))
    fly(controller, sim, Setpoint("velocity", velocity=(0.0, 0.0, 0.0)), 1.0)
    before = controller.update(sim.state(), Setpoint("velocity"), DT).motor_thrusts_n
    hold = Setpoint("position", sim.position.copy(), yaw_rad=sim.yaw)
    after = controller.update(sim.state(), hold, DT).motor_thrusts_n
    assert np.max(np.abs(after - before)) < 0.02 * airframe.motor_max_thrust_n


def test_frozen_integrators_stay_at_zero_and_reset_clears_them():
    airframe, controller, sim = make("x500")
    sim.hover_at((0.0, 0.0, 1.0))
    state = sim.state()
    for _ in range(200):
        controller.update(state, Setpoint("position", (1.0, 1.0, 2.0)), DT, integrate=False)
    assert all(loop.integral == 0.0 for loop in (*controller.velocity_loops, *controller.rate_loops))
    for _ in range(200):
        controller.update(state, Setpoint("position", (1.0, 1.0, 2.0)), DT)
    assert controller.velocity_loops[2].integral != 0.0
    controller.reset(state)
    assert all(loop.integral == 0.0 for loop in (*controller.velocity_loops, *controller.rate_loops))


def test_attitude_error_gives_rates_that_undo_it():
    airframe, controller, sim = make("x500")
    hold = Setpoint("position", (0.0, 0.0, 1.0))
    rolled = VehicleState((0, 0, 1.0), (0, 0, 0), quat_from_euler(math.radians(10), 0, 0), (0, 0, 0))
    assert controller.update(rolled, hold, DT).body_rate_setpoint[0] < 0       # rolled right → roll back left
    controller.reset()
    pitched = VehicleState((0, 0, 1.0), (0, 0, 0), quat_from_euler(0, math.radians(10), 0), (0, 0, 0))
    assert controller.update(pitched, hold, DT).body_rate_setpoint[1] < 0
    controller.reset()
    yawed = VehicleState((0, 0, 1.0), (0, 0, 0), quat_from_euler(0, 0, 0.3), (0, 0, 0))
    assert controller.update(yawed, hold, DT).body_rate_setpoint[2] < 0
    # A forward position error tilts the thrust vector forward (nose down = positive pitch in REP 103).
    controller.reset()
    level = VehicleState((0, 0, 1.0), (0, 0, 0))
    out = controller.update(level, Setpoint("position", (1.0, 0.0, 1.0)), DT)
    assert out.acceleration_setpoint[0] > 0
    assert quat_to_rotation_matrix(out.attitude_setpoint_quat)[0, 2] > 0           # body z leans towards +x
    assert tilt_from_quat(out.attitude_setpoint_quat) <= math.radians(controller.gains.limits.max_tilt_deg) + 1e-9


def test_controller_never_reads_the_wall_clock(monkeypatch):
    airframe, controller, sim = make("crazyflie")
    sim.hover_at((0.0, 0.0, 1.0))

    def forbidden():
        raise AssertionError("the controller read the wall clock")

    monkeypatch.setattr(time, "monotonic", forbidden)
    monkeypatch.setattr(time, "time", forbidden)
    fresh = CascadedController(airframe, load_gains("crazyflie"), RATE_HZ)
    fresh.reset(sim.state())
    fresh.update(sim.state(), Setpoint("position", (0, 0, 1.0)), DT)
    with pytest.raises(ValueError, match="dt"):
        fresh.update(sim.state(), Setpoint("position", (0, 0, 1.0)), 0.0)
