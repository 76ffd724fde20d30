"""Take-offs that cannot complete as planned: a vehicle heavier than its model, one held on the ground, one not
upright. Before the lift-off watchdog each of the first two sat in TAKING_OFF forever, motors pushing on the
ground (the outer integrators wait for the lift-off, and the reference's 0.2 m lead asks at most the model's
hover thrust plus max_accel_up: 1.41 x hover for the x500)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mmchat_ros.core.flight.core_config import FlightCoreConfig
from mmchat_ros.core.flight.takeoff import ABANDON_AFTER_TIMEOUTS, CLIMB_TIME_ALLOWANCE
from mmchat_ros.core.geometry import quat_from_euler

sys.path.insert(0, str(Path(__file__).parent))
from test_flight_control import FlightHarness, QuadrotorSim  # noqa: E402  (the shared rigid-body test double)

TIMEOUT_S = FlightCoreConfig().takeoff_liftoff_timeout_s


def harness_with_mass(mass_scale: float) -> FlightHarness:
    """The controller flies the nominal x500; the vehicle weighs ``mass_scale`` times as much."""
    harness = FlightHarness()
    harness.sim = QuadrotorSim(harness.core.airframe, physics_dt=harness.dt, mass_scale=mass_scale)
    harness.core.update_odometry(harness.sim.state(), harness.now)
    return harness


def test_a_vehicle_too_heavy_for_its_model_lifts_off_once_the_integrators_may_act():
    harness = harness_with_mass(1.5)
    assert harness.core.takeoff(harness.now)
    status = harness.run(TIMEOUT_S, until=lambda s: s.mode == "TAKING_OFF")
    on_ground = harness.run(0.9 * TIMEOUT_S)
    assert on_ground.mode == "TAKING_OFF" and harness.sim.on_ground()          # what the model asks is not enough
    status = harness.run(ABANDON_AFTER_TIMEOUTS * TIMEOUT_S + 10.0, until=lambda s: s.mode != "TAKING_OFF")
    assert status.mode == "HOVER", status
    heights = []
    status = harness.run(5.0, each=lambda now: heights.append(harness.sim.position[2]))
    assert status.mode == "HOVER" and abs(harness.sim.position[2] - 1.5) < 0.1
    assert max(heights) < 1.5 + 0.3                                               # no shot into the sky


def test_a_take_off_that_cannot_leave_the_ground_is_abandoned_with_the_reason():
    harness = harness_with_mass(3.0)          # heavier than the motors can lift at all
    assert harness.core.takeoff(harness.now)
    harness.run(1.0, until=lambda s: s.mode == "TAKING_OFF")
    started = harness.now
    status = harness.run(ABANDON_AFTER_TIMEOUTS * TIMEOUT_S + 1.0, until=lambda s: s.mode != "TAKING_OFF")
    assert status.mode == "LANDED" and not harness.armed and not harness.thrusts.any()
    assert abs(harness.now - started - ABANDON_AFTER_TIMEOUTS * TIMEOUT_S) < 0.1
    assert status.last_rejection.startswith("take-off abandoned: still on the ground")
    assert status.land_reason == status.last_rejection and status.rejections_by_reason["takeoff"] == 1
    harness.run(1.0)
    assert harness.core.takeoff(harness.now), "a later take-off is not blocked"


def test_a_fall_back_to_the_ground_restarts_the_lift_off_watchdog():
    harness = FlightHarness()
    assert harness.core.takeoff(harness.now)
    harness.run(5.0, until=lambda s: s.mode == "TAKING_OFF" and harness.sim.position[2] > 0.3)
    cut, advance = harness.now, harness.sim.advance
    # The motors lose their signal for 0.8 s: the vehicle falls back and sits on the ground, motors off.
    harness.sim.advance = lambda commands, duration: advance(
        np.zeros_like(commands) if harness.now < cut + 0.8 else commands, duration)
    harness.run(0.8)
    assert harness.sim.on_ground()
    status = harness.run(10.0, until=lambda s: s.mode != "TAKING_OFF")
    assert status.mode == "HOVER", status


def test_a_climb_that_never_arrives_ends_in_a_landing():
    harness = FlightHarness()

    def tether(now):               # above 0.5 m it pulls down harder than the motors can lift
        harness.sim.external_force[2] = -60.0 if harness.sim.position[2] > 0.5 else 0.0

    assert harness.core.takeoff(harness.now)
    harness.run(1.0, until=lambda s: s.mode == "TAKING_OFF")
    started = harness.now
    status = harness.run(30.0, each=tether, until=lambda s: s.mode != "TAKING_OFF")
    deadline_s = ABANDON_AFTER_TIMEOUTS * TIMEOUT_S + CLIMB_TIME_ALLOWANCE * (1.5 / 0.7 + 0.7)
    assert status.mode == "LANDING" and abs(harness.now - started - deadline_s) < 0.1
    assert status.last_rejection.startswith("take-off abandoned: 0.") and "not at 1.50 m" in status.last_rejection
    assert status.land_reason == status.last_rejection
    status = harness.run(20.0, each=tether, until=lambda s: s.mode == "LANDED")
    assert status.mode == "LANDED" and harness.sim.on_ground()


def test_a_take_off_is_refused_when_the_vehicle_is_not_upright():
    harness = FlightHarness()
    core, sim = harness.core, harness.sim
    limit = core.config.max_arming_tilt_deg
    for roll_deg in (180.0, 90.0, limit + 5.0):
        state = sim.state()
        state.quaternion_wxyz = np.array(quat_from_euler(np.radians(roll_deg), 0.0, 0.0))
        core.update_odometry(state, harness.now)
        refused = core.takeoff(harness.now)
        assert not refused and refused.reason.startswith("take-off refused: the vehicle leans"), refused
        assert f"max_arming_tilt_deg={limit:g}" in refused.reason and core.mode.value == "LANDED"
    state = sim.state()
    state.quaternion_wxyz = np.array(quat_from_euler(np.radians(limit - 5.0), 0.0, 0.0))
    core.update_odometry(state, harness.now)
    assert core.takeoff(harness.now)                  # standing on a slope: accepted
