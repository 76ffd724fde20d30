"""The flight core's parts, each on its own: odometry gate and bookkeeping, take-off climb, landing, hover / go-to /
velocity set-points, configuration. (FlightCore flying them together: test_flight_safety, test_flight_plan.)"""
from __future__ import annotations

import math

import numpy as np
import pytest

from mmchat_ros.core.airframe import load_airframe
from mmchat_ros.core.flight.control import POSITION_MODE, VELOCITY_MODE, CascadedController, VehicleState
from mmchat_ros.core.flight.core_config import FlightCoreConfig
from mmchat_ros.core.flight.envelope import EnvelopeConfig, SafetyEnvelope
from mmchat_ros.core.flight.gains import load_gains
from mmchat_ros.core.flight.landing import DESCENT_LEAD_M, Landing
from mmchat_ros.core.flight.mux import PositionCommand, VelocityCommand
from mmchat_ros.core.flight.odometry import MAX_ODOM_PREDICTION_S, Odometry
from mmchat_ros.core.flight.setpoints import HoverAndGoTo, velocity_setpoint
from mmchat_ros.core.flight.takeoff import ABANDON_AFTER_TIMEOUTS, CLIMB_LEAD_M, LIFTOFF_HEIGHT_M, TakeoffClimb
from mmchat_ros.core.geometry import quat_from_euler

DT = 0.004


def at(position, velocity=(0.0, 0.0, 0.0), quaternion=(1.0, 0.0, 0.0, 0.0), rates=(0.0, 0.0, 0.0)) -> VehicleState:
    return VehicleState(np.array(position, float), np.array(velocity, float), np.array(quaternion, float),
                        np.array(rates, float))


def x500_controller() -> CascadedController:
    airframe = load_airframe("x500")
    return CascadedController(airframe, load_gains("x500", airframe=airframe), 1.0 / DT)


# ---------------------------------------------------------------------------------------------------- odometry
def test_odometry_refuses_an_outlier_and_believes_a_jump_that_repeats():
    odometry = Odometry(timeout_s=0.5, jump_m=1.0, reset_samples=3)
    assert odometry.update(at((0.0, 0.0, 1.0), (1.0, 0.0, 0.0)), 0.0).accepted
    # Where the previous reading predicts the vehicle (moving at 1 m/s) is fine; 2 m off is not.
    assert odometry.update(at((0.1, 0.0, 1.0), (1.0, 0.0, 0.0)), 0.1).accepted
    refused = odometry.update(at((2.2, 0.0, 1.0), (1.0, 0.0, 0.0)), 0.2)
    assert not refused.accepted and "outlier" in refused.reason and not refused.reset
    assert odometry.measured.position[0] == pytest.approx(0.1)
    assert not odometry.update(at((2.25, 0.0, 1.0), (1.0, 0.0, 0.0)), 0.21).accepted
    reset = odometry.update(at((2.3, 0.0, 1.0), (1.0, 0.0, 0.0)), 0.22)
    assert reset.accepted and reset.reset and "odometry reset" in reset.reason
    assert odometry.state.position[0] == pytest.approx(2.3)
    # After a gap longer than the timeout there is nothing to predict from: taken as it is.
    assert odometry.update(at((9.0, 0.0, 1.0)), 1.0).accepted


def test_odometry_refuses_non_finite_readings_and_normalises_the_quaternion():
    odometry = Odometry(timeout_s=0.5, jump_m=1.0, reset_samples=5)
    assert not odometry.update(at((math.nan, 0.0, 0.0)), 0.0).accepted
    assert not odometry.update(at((0.0, 0.0, 0.0), quaternion=(0.0, 0.0, 0.0, 0.0)), 0.0).accepted
    assert odometry.state is None
    assert odometry.update(at((0.0, 0.0, 0.0), quaternion=(2.0, 0.0, 0.0, 0.0)), 0.0).accepted
    assert np.linalg.norm(odometry.state.quaternion_wxyz) == pytest.approx(1.0)


def test_odometry_freshness_and_rest():
    odometry = Odometry(timeout_s=0.5, jump_m=1.0, reset_samples=5)
    assert not odometry.fresh(0.0) and not odometry.at_rest(0.0)
    odometry.update(at((0.0, 0.0, 0.0)), 1.0)
    assert odometry.fresh(1.5) and odometry.fresh(0.6) and not odometry.fresh(1.6)   # symmetric in time
    assert odometry.at_rest(1.0) and odometry.at_rest(1.45, for_s=0.4) and not odometry.at_rest(1.35, for_s=0.4)
    odometry.update(at((0.0, 0.0, 0.0), rates=(0.0, 0.0, 1.0)), 1.1)     # turning: not at rest
    assert not odometry.at_rest(1.1)


def test_odometry_is_carried_forward_with_the_measured_acceleration():
    odometry = Odometry(timeout_s=0.5, jump_m=1.0, reset_samples=5)
    for i in range(50):                                       # accelerating at 2 m/s² along x
        t = i * 0.01
        odometry.update(at((t * t, 0.0, 1.0), (2.0 * t, 0.0, 0.0)), t)
    stamp = odometry.stamp
    lag = 0.05
    odometry.propagate(stamp + lag)
    t = stamp + lag
    assert odometry.state.position[0] == pytest.approx(t * t, abs=2e-3)
    assert odometry.state.velocity[0] == pytest.approx(2.0 * t, abs=0.02)
    odometry.propagate(stamp + MAX_ODOM_PREDICTION_S + 0.05)  # too old to extrapolate: left where it was
    assert odometry.state.position[0] == pytest.approx(t * t, abs=2e-3)


# ---------------------------------------------------------------------------------------------------- take-off
def test_the_climb_waits_for_the_lift_off_then_arrives_without_overshoot():
    climb = TakeoffClimb(np.array([1.0, 2.0, 1.5]), 0.0, 0.3, ground_z=0.0, max_speed=0.7, liftoff_timeout_s=2.0,
                         started_at=0.0)
    grounded = at((1.0, 2.0, 0.0))
    for _ in range(500):                                      # 2 s on the ground
        setpoint = climb.setpoint(grounded, DT)
    assert setpoint.position[2] == pytest.approx(CLIMB_LEAD_M) and setpoint.velocity[2] == pytest.approx(0.7)
    z, references = 0.0, []
    for _ in range(2000):                                     # a vehicle that follows the reference exactly
        setpoint = climb.setpoint(at((1.0, 2.0, z)), DT)
        z = setpoint.position[2]
        references.append((z, setpoint.velocity[2], setpoint.acceleration[2]))
    heights, speeds, accels = np.array(references).T
    assert heights.max() == pytest.approx(1.5) and np.all(np.diff(heights) >= -1e-12)
    assert speeds.max() <= 0.7 + 1e-9 and np.abs(accels).max() < 1.5       # gentle: about the 1 m/s² brake rate
    assert climb.reached(at((1.0, 2.0, 1.45), (0.0, 0.0, 0.1)), tolerance=0.1)
    assert not climb.reached(at((1.0, 2.0, 1.45), (0.0, 0.0, 0.3)), tolerance=0.1)
    assert tuple(setpoint.position[:2]) == (1.0, 2.0) and setpoint.yaw_rad == 0.3


def test_the_lift_off_watchdog_lets_the_integrators_act_then_gives_up():
    climb = TakeoffClimb(np.array([0.0, 0.0, 1.5]), 0.0, 0.0, ground_z=0.0, max_speed=0.7, liftoff_timeout_s=2.0,
                         started_at=10.0)
    grounded, off = at((0.0, 0.0, 0.0)), at((0.0, 0.0, LIFTOFF_HEIGHT_M + 0.01))
    assert not climb.integrate(grounded, 11.9) and climb.integrate(grounded, 12.0)    # after the timeout
    assert not climb.stuck(13.9) and climb.stuck(10.0 + ABANDON_AFTER_TIMEOUTS * 2.0)
    assert climb.integrate(off, 14.5) and climb.on_ground_for(14.5) == 0.0 and not climb.stuck(20.0)
    # Back on the ground (a fall): the watchdog starts again from there.
    assert not climb.integrate(grounded, 20.0) and climb.on_ground_for(21.0) == pytest.approx(1.0)
    assert climb.integrate(grounded, 22.0) and climb.stuck(24.0)
    # Whatever keeps it from the height, the climb is overdue once the watchdog's allowance and twice the time a
    # follower of the reference needs (speed up, 1.5 m at 0.7 m/s, slow down) have passed.
    assert climb.deadline == pytest.approx(10.0 + ABANDON_AFTER_TIMEOUTS * 2.0 + 2.0 * (1.5 / 0.7 + 0.7))
    assert not climb.overdue(climb.deadline - 0.01) and climb.overdue(climb.deadline)


# ----------------------------------------------------------------------------------------------------- landing
def test_the_descent_slows_near_the_ground_and_touches_down_when_low_and_still():
    config = FlightCoreConfig()
    landing = Landing(config, x500_controller(), ground_z=0.0, hover_thrust_n=11.8)
    state = at((1.0, 0.0, 3.0), quaternion=quat_from_euler(0.0, 0.0, 0.5))
    assert landing.step(state, True, None, 0.0, DT) is not None
    assert landing.xy.tolist() == [1.0, 0.0] and landing.yaw == pytest.approx(0.5)
    landing.step(state, True, None, DT, DT)
    assert landing.z_ref == pytest.approx(3.0 - 2 * config.landing_speed_m_s * DT)
    stuck = Landing(config, x500_controller(), ground_z=0.0, hover_thrust_n=11.8)
    low = at((1.0, 0.0, 0.5))                                 # below the slow-down height, not descending
    for i in range(500):                                      # 2 s: the reference would be 0.5 m down
        stuck.step(low, True, None, i * DT, DT)
    assert stuck.z_ref == pytest.approx(0.5 - DESCENT_LEAD_M)               # leads by at most this
    assert stuck.controller.last_setpoint.velocity[2] == -config.landing_final_speed_m_s
    down = at((1.0, 0.0, 0.05))
    now = 10.0
    while landing.step(down, True, None, now, DT) is not None:
        now += DT
        assert now < 10.0 + config.touchdown_time_s + 0.1
    assert now == pytest.approx(10.0 + config.touchdown_time_s, abs=2 * DT)


def test_a_blind_descent_is_level_and_ends_once_the_vehicle_must_be_down():
    config = FlightCoreConfig()
    landing = Landing(config, x500_controller(), ground_z=0.0, hover_thrust_n=11.8)
    tilted = np.array(quat_from_euler(0.2, 0.0, 0.0))
    output = landing.step(at((0.0, 0.0, 2.0)), False, (tilted, np.zeros(3)), 0.0, DT)
    assert output.body_rate_setpoint[0] < 0.0                     # rolling back to level
    assert output.collective_thrust_n == pytest.approx(config.open_loop_thrust_fraction * 11.8, rel=0.05)
    from_2_m = landing.blind_duration_s
    assert landing.step(at((0.0, 0.0, 2.0)), False, None, from_2_m - DT, DT) is not None
    assert landing.step(at((0.0, 0.0, 2.0)), False, None, from_2_m, DT) is None
    higher = Landing(config, x500_controller(), ground_z=0.0, hover_thrust_n=11.8)
    higher.step(at((0.0, 0.0, 8.0)), False, None, 0.0, DT)
    assert higher.blind_duration_s > from_2_m


# ---------------------------------------------------------------------------------------------------- set-points
def test_hover_brakes_inside_the_limits_then_holds_where_it_stopped():
    limits = x500_controller().kinematic_limits()
    references = HoverAndGoTo(limits)
    moving = at((0.0, 0.0, 1.5), (1.0, 0.0, 0.0))
    first = references.hover(moving, yaw_target=None, dt=DT)
    stop = references.hold_at[0]
    assert stop[0] > 0.0 and first.mode == POSITION_MODE
    for _ in range(2000):
        setpoint = references.hover(moving, yaw_target=None, dt=DT)
    assert np.allclose(setpoint.position, stop) and not setpoint.velocity.any()
    references.hold(np.array([5.0, 5.0, 2.0]), 1.0)
    setpoint = references.hover(moving, yaw_target=None, dt=DT)
    assert setpoint.position.tolist() == [5.0, 5.0, 2.0] and setpoint.yaw_rad == 1.0


def test_go_to_shapes_a_bare_target_and_follows_a_moving_reference_as_given():
    limits = x500_controller().kinematic_limits()
    references = HoverAndGoTo(limits)
    here = at((0.0, 0.0, 1.5))
    bare = PositionCommand(4.0, 0.0, 1.5, 0.0)
    speeds = [references.go_to(here, bare, DT).velocity[0] for _ in range(3000)]
    assert 0.0 < max(speeds) <= limits.speed_xy + 1e-9
    assert references.go_to(here, bare, DT).position[0] == pytest.approx(4.0)
    moving = PositionCommand(1.0, 2.0, 1.5, 0.0, vx=0.5, ax=0.1)
    setpoint = references.go_to(here, moving, DT)
    assert setpoint.position.tolist() == [1.0, 2.0, 1.5] and setpoint.velocity[0] == 0.5
    assert setpoint.acceleration[0] == 0.1


def test_a_velocity_command_never_descends_through_the_floor():
    envelope = SafetyEnvelope(EnvelopeConfig())
    down = VelocityCommand(0.0, 0.0, -1.0, 0.0)
    high = velocity_setpoint(at((0.0, 0.0, 3.0)), down, envelope, response_time_s=0.5, floor_z=0.3)
    assert high.mode == VELOCITY_MODE and high.velocity[2] == pytest.approx(-1.0)
    near = velocity_setpoint(at((0.0, 0.0, 0.4)), down, envelope, response_time_s=0.5, floor_z=0.3)
    assert -1.0 < near.velocity[2] < 0.0
    below = velocity_setpoint(at((0.0, 0.0, 0.2)), down, envelope, response_time_s=0.5, floor_z=0.3)
    assert below.velocity[2] == 0.0
    assert velocity_setpoint(at((0.0, 0.0, 0.2)), down, envelope, 0.5, floor_z=None).velocity[2] == -1.0


# ------------------------------------------------------------------------------------------------------ config
def test_flight_core_config_checks_its_values():
    with pytest.raises(ValueError, match="takeoff_speed_m_s"):
        FlightCoreConfig(takeoff_speed_m_s=0.0)
    with pytest.raises(ValueError, match="open_loop_thrust_fraction"):
        FlightCoreConfig(open_loop_thrust_fraction=1.0)
    with pytest.raises(ValueError, match="takeoff_liftoff_timeout_s"):
        FlightCoreConfig(takeoff_liftoff_timeout_s=-1.0)
    with pytest.raises(ValueError, match="max_arming_tilt_deg"):
        FlightCoreConfig(max_arming_tilt_deg=90.0)
    with pytest.raises(ValueError, match="unknown flight core keys"):
        FlightCoreConfig.from_dict({"takeoff_hieght_m": 2.0})
