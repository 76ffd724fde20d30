"""Safety layer: envelope, command mux, flight state machine, and the FlightCore watchdogs in closed loop."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from mmchat_ros.core.flight.envelope import EnvelopeConfig, SafetyEnvelope
from mmchat_ros.core.flight.flight_core import FlightCoreConfig
from mmchat_ros.core.flight.mux import (CommandMux, EmergencyStopCommand, HoverCommand, LandCommand,
                                        PositionCommand, VelocityCommand)
from mmchat_ros.core.flight.state_machine import FlightEvent, FlightMode, FlightStateMachine, GuardContext
from mmchat_ros.core.plan_vocabulary import ActionType, PlanStep

sys.path.insert(0, str(Path(__file__).parent))
from test_flight_control import FlightHarness  # noqa: E402  (the shared rigid-body test double)

NAN, INF = float("nan"), float("inf")


# ---------------------------------------------------------------------------------------------------- envelope
def test_envelope_rejects_every_non_finite_value_naming_the_field():
    envelope = SafetyEnvelope()
    result = envelope.limit_velocity(0.5, NAN, 0.0, 0.0)
    assert not result and "vy=nan" in result.reason and result.code == "non_finite"
    result = envelope.limit_velocity(0.5, 0.0, 0.0, INF)
    assert not result and "yaw_rate=inf" in result.reason
    result = envelope.check_position(1.0, 2.0, -INF)
    assert not result and "z=-inf" in result.reason
    assert envelope.rejections["non_finite"] == 3 and envelope.rejection_count == 3
    assert envelope.last_rejection == result.reason


def test_envelope_clamps_speed_and_yaw_rate_keeping_direction():
    envelope = SafetyEnvelope(EnvelopeConfig(max_speed_xy=2.0, max_speed_z=1.0, max_yaw_rate_deg_s=60.0))
    result = envelope.limit_velocity(3.0, 4.0, -5.0, 3.0)
    velocity, yaw_rate = result.value
    assert result and result.limited
    np.testing.assert_allclose(velocity, [1.2, 1.6, -1.0])
    assert yaw_rate == pytest.approx(math.radians(60.0))
    assert envelope.rejection_count == 0                     # clamping is not a rejection


def test_geofence_rejects_targets_outside_the_box_naming_the_bound():
    envelope = SafetyEnvelope(EnvelopeConfig(geofence_min=(-5, -5, -1), geofence_max=(5, 5, 8), max_altitude_m=6.0))
    result = envelope.check_position(6.5, 0.0, 2.0)
    assert not result and "max_x=5.00" in result.reason and result.code == "geofence"
    result = envelope.check_position(0.0, -7.0, 2.0)
    assert not result and "min_y=-5.00" in result.reason
    result = envelope.check_position(0.0, 0.0, 7.0)           # inside the box, above the altitude ceiling
    assert not result and "max_altitude_m=6.00" in result.reason and result.code == "altitude"
    assert envelope.check_position(4.9, -4.9, 5.9)
    assert envelope.rejections == {"geofence": 2, "altitude": 1}


def test_velocity_toward_the_fence_is_limited_to_what_can_stop_at_the_margin():
    cfg = EnvelopeConfig(geofence_min=(-5, -5, -1), geofence_max=(5, 5, 8), fence_margin_m=0.5,
                         fence_brake_decel_m_s2=1.0, max_speed_xy=3.0)
    envelope = SafetyEnvelope(cfg)
    far = envelope.limit_velocity(2.0, 0.0, 0.0, 0.0, position=np.array([0.0, 0.0, 2.0])).value[0]
    np.testing.assert_allclose(far, [2.0, 0.0, 0.0])
    near = envelope.limit_velocity(2.0, 0.0, 0.0, 0.0, position=np.array([4.0, 0.0, 2.0])).value[0]
    assert near[0] == pytest.approx(math.sqrt(2.0 * 1.0 * 0.5))   # 0.5 m of room left before the margin
    at_margin = envelope.limit_velocity(2.0, 1.0, 0.0, 0.0, position=np.array([4.6, 0.0, 2.0])).value[0]
    np.testing.assert_allclose(at_margin, [0.0, 1.0, 0.0])       # outward part zeroed, the rest kept
    outside = envelope.limit_velocity(1.0, 0.0, 0.0, 0.0, position=np.array([5.5, 0.0, 2.0])).value[0]
    np.testing.assert_allclose(outside, [0.0, 0.0, 0.0])
    inward = envelope.limit_velocity(-1.0, 0.0, 0.0, 0.0, position=np.array([5.5, 0.0, 2.0])).value[0]
    np.testing.assert_allclose(inward, [-1.0, 0.0, 0.0])         # going back in is always allowed
    up = envelope.limit_velocity(0.0, 0.0, 1.0, 0.0, position=np.array([0.0, 0.0, 7.6])).value[0]
    np.testing.assert_allclose(up, [0.0, 0.0, 0.0])              # the ceiling is a fence too


def test_low_battery_threshold():
    envelope = SafetyEnvelope(EnvelopeConfig(low_battery_fraction=0.2))
    assert envelope.battery_low(0.2) and envelope.battery_low(0.05)
    assert not envelope.battery_low(0.21) and not envelope.battery_low(NAN)


def test_envelope_config_validation():
    with pytest.raises(ValueError, match="geofence x"):
        EnvelopeConfig(geofence_min=(0, -5, -1), geofence_max=(0.5, 5, 8))
    with pytest.raises(ValueError, match="unknown envelope keys"):
        EnvelopeConfig.from_dict({"max_sped_xy": 2.0})
    cfg = EnvelopeConfig.from_dict({"geofence_max": [3, 3, 3], "max_altitude_m": 5})
    assert cfg.ceiling_m == 3.0


# --------------------------------------------------------------------------------------------------------- mux
def test_mux_priorities_and_timeouts():
    mux = CommandMux(timeouts_s={"operator": 1.0, "plan": 0.5, "teleop": 0.5, "follow": 0.5})
    mux.set_authorised(True)
    follow, teleop, operator = VelocityCommand(0.1, 0, 0), VelocityCommand(0.2, 0, 0), VelocityCommand(0.3, 0, 0)
    assert mux.submit("follow", follow, 0.0)
    assert mux.active(0.1).source == "follow"
    assert mux.submit("teleop", teleop, 0.1)
    assert mux.active(0.2).command == teleop
    assert mux.submit("operator", operator, 0.2)
    assert mux.active(0.3).source == "operator"
    assert mux.submit("teleop", teleop, 0.9)              # still fresh, but outranked
    assert mux.active(1.0).source == "operator"
    assert mux.active(1.25).source == "teleop"            # operator expired after 1.0 s
    assert mux.active(1.45) is None                       # teleop (0.9 s + 0.5 s) and follow expired too
    assert mux.active(1.5) is None
    assert mux.pending_sources() == []


def test_mux_authorisation_gates_motion_but_never_land_or_emergency_stop():
    mux = CommandMux()
    result = mux.submit("teleop", VelocityCommand(1, 0, 0), 0.0)
    assert not result and "no authorised operator" in result.reason
    assert not mux.submit("operator", PositionCommand(0, 0, 1, 0), 0.0)
    assert mux.submit("teleop", HoverCommand(), 0.0)
    assert mux.submit("teleop", LandCommand(), 0.0)
    assert mux.submit("nobody-we-know", EmergencyStopCommand(), 0.0)
    assert mux.rejections["unauthorised"] == 2

    mux.set_authorised(True)
    assert mux.submit("teleop", VelocityCommand(1, 0, 0), 1.0)
    mux.set_authorised(False)                              # losing the operator voids pending motion
    assert mux.active(1.1) is None

    open_mux = CommandMux(require_authorisation=False)
    assert open_mux.submit("teleop", VelocityCommand(1, 0, 0), 0.0)


def test_mux_land_flushes_motion_and_rejects_garbage():
    mux = CommandMux()
    mux.set_authorised(True)
    assert mux.submit("operator", VelocityCommand(1, 0, 0), 0.0)
    assert mux.submit("plan", LandCommand(), 0.1)
    assert mux.active(0.2) is None
    unknown = mux.submit("joystick", VelocityCommand(1, 0, 0), 0.3)
    assert not unknown and "unknown source 'joystick'" in unknown.reason
    bad = mux.submit("teleop", VelocityCommand(NAN, 0, 0), 0.3)
    assert not bad and "vx=nan" in bad.reason
    assert mux.submit("teleop", VelocityCommand(1, 0, 0), 1.0)
    stale = mux.submit("teleop", VelocityCommand(1, 0, 0), 0.5)
    assert not stale and "older" in stale.reason


def test_mux_from_config_custom_priorities():
    mux = CommandMux.from_config({"sources": {"teleop": {"priority": 10, "timeout_s": 0.3},
                                              "plan": {"priority": 5}}, "require_authorisation": False})
    assert mux.submit("plan", VelocityCommand(1, 0, 0), 0.0)
    assert mux.submit("teleop", VelocityCommand(2, 0, 0), 0.0)
    assert mux.active(0.1).source == "teleop"
    assert mux.active(0.4).source == "plan"
    with pytest.raises(ValueError, match="unknown mux keys"):
        CommandMux.from_config({"source": {}})


# ----------------------------------------------------------------------------------------------- state machine
GOOD = GuardContext(authorised=True, odometry_ok=True, battery_ok=True, on_ground=True)
AIR = GuardContext(authorised=True, odometry_ok=True, battery_ok=True, on_ground=False)


def test_state_machine_nominal_flight():
    machine = FlightStateMachine()
    for event, mode in [(FlightEvent.ARM, FlightMode.ARMED), (FlightEvent.TAKEOFF, FlightMode.TAKING_OFF),
                        (FlightEvent.TAKEOFF_COMPLETE, FlightMode.HOVER), (FlightEvent.VELOCITY, FlightMode.VELOCITY),
                        (FlightEvent.POSITION, FlightMode.POSITION), (FlightEvent.HOVER, FlightMode.HOVER),
                        (FlightEvent.LAND, FlightMode.LANDING), (FlightEvent.TOUCHDOWN, FlightMode.LANDED)]:
        result = machine.request(event, GOOD if event is FlightEvent.ARM else AIR)
        assert result and result.mode is mode and machine.mode is mode
    assert not machine.armed


@pytest.mark.parametrize("mode, event, context, reason", [
    (FlightMode.LANDED, FlightEvent.TAKEOFF, GOOD, "not armed"),
    (FlightMode.LANDED, FlightEvent.ARM, GuardContext(False, True, True, True), "no authorised operator"),
    (FlightMode.LANDED, FlightEvent.ARM, GuardContext(True, False, True, True), "no valid odometry"),
    (FlightMode.LANDED, FlightEvent.ARM, GuardContext(True, True, False, True), "battery low"),
    (FlightMode.LANDED, FlightEvent.ARM, GuardContext(True, True, True, False), "not confirmed at rest"),
    (FlightMode.HOVER, FlightEvent.DISARM, AIR, "refusing to disarm in the air"),
    (FlightMode.HOVER, FlightEvent.VELOCITY, GuardContext(False, True, True, False), "no authorised operator"),
    (FlightMode.TAKING_OFF, FlightEvent.VELOCITY, AIR, "wait until the climb is complete"),
    (FlightMode.LANDING, FlightEvent.POSITION, AIR, "landing in progress"),
    (FlightMode.EMERGENCY, FlightEvent.TAKEOFF, GOOD, "emergency stop latched"),
    (FlightMode.EMERGENCY, FlightEvent.RESET, AIR, "not confirmed at rest on the ground"),
    (FlightMode.HOVER, FlightEvent.RESET, AIR, "no emergency stop latched"),
])
def test_state_machine_refusals_say_why(mode, event, context, reason):
    machine = FlightStateMachine(mode)
    result = machine.request(event, context)
    assert not result and machine.mode is mode
    assert reason in result.reason and str(event) in result.reason
    assert machine.last_refusal == result.reason


def test_emergency_is_accepted_from_every_mode_and_only_reset_on_the_ground():
    for mode in FlightMode:
        machine = FlightStateMachine(mode)
        assert machine.request(FlightEvent.EMERGENCY, GuardContext()).mode is FlightMode.EMERGENCY
        assert not machine.armed
    machine = FlightStateMachine(FlightMode.EMERGENCY)
    assert machine.request(FlightEvent.LAND, GuardContext())          # land is never refused
    assert machine.request(FlightEvent.RESET, GOOD).mode is FlightMode.LANDED


# ------------------------------------------------------------------------------------ FlightCore, closed loop
@pytest.fixture
def airborne():
    harness = FlightHarness()
    harness.take_off()
    harness.run(0.5)
    return harness


def test_nan_commands_are_rejected_and_hover_continues(airborne):
    core, sim = airborne.core, airborne.sim
    hold = sim.position.copy()
    before = core.status(airborne.now).rejection_count
    results = [core.submit_velocity("teleop", NAN, 0.0, 0.0, 0.0, airborne.now),
               core.submit_velocity_body("teleop", 0.5, INF, 0.0, 0.0, airborne.now),
               core.submit_position("operator", 1.0, 1.0, NAN, 0.0, airborne.now),
               core.submit_velocity("teleop", 0.0, 0.0, 0.0, NAN, airborne.now)]
    assert not any(results)
    assert "vx=nan" in results[0].reason and "left=inf" in results[1].reason
    assert "z=nan" in results[2].reason and "yaw_rate=nan" in results[3].reason
    positions = []
    status = airborne.run(2.0, each=lambda now: positions.append(sim.position.copy()))
    assert status.mode == "HOVER" and status.active_source == ""
    assert status.rejection_count == before + 4 and status.rejections_by_reason["non_finite"] == 4
    assert "yaw_rate=nan" in status.last_rejection
    assert np.max(np.linalg.norm(np.array(positions) - hold, axis=1)) < 0.05


def test_geofence_and_floor_rejections_reach_the_status(airborne):
    core = airborne.core
    result = core.submit_position("operator", 25.0, 0.0, 2.0, 0.0, airborne.now)
    assert not result and "max_x=20.00" in result.reason
    result = core.submit_position("operator", 0.0, 0.0, 0.1, 0.0, airborne.now)
    assert not result and "minimum flight height" in result.reason
    status = core.status(airborne.now)
    assert status.rejections_by_reason["geofence"] == 1 and status.last_rejection == result.reason


def test_velocity_command_cannot_push_through_the_geofence():
    config = FlightCoreConfig(envelope=EnvelopeConfig(geofence_min=(-3, -3, -1), geofence_max=(3, 3, 5),
                                                      fence_margin_m=0.5, max_speed_xy=2.0))
    harness = FlightHarness(config=config)
    harness.take_off()
    xs = []
    harness.run(7.0, each=lambda now: (harness.core.submit_velocity("teleop", 2.0, 0.0, 0.0, 0.0, now),
                                       xs.append(harness.sim.position[0])))
    assert max(xs) < 3.0 - 0.5 + 0.15                       # stopped at the margin, not at (or past) the wall
    assert abs(harness.sim.velocity[0]) < 0.05
    assert harness.core.mode is FlightMode.VELOCITY


def test_command_silence_turns_into_hover_in_place(airborne):
    core, sim = airborne.core, airborne.sim
    status = airborne.run(1.5, each=lambda now: core.submit_velocity("teleop", 1.0, 0.0, 0.0, 0.0, now))
    assert status.mode == "VELOCITY" and status.active_source == "teleop"
    status = airborne.run(0.6)                               # teleop's 0.5 s timeout passes
    assert status.mode == "HOVER" and status.active_source == ""
    airborne.run(2.0)                                        # brakes, then holds where it stopped
    stopped = sim.position.copy()
    assert np.linalg.norm(sim.velocity) < 0.05
    airborne.run(2.0)
    assert np.linalg.norm(sim.position - stopped) < 0.05


def test_status_key_follows_the_status_the_node_publishes_on_change(airborne):
    """The node steps with control() and builds the full status only when status_key() changes: the key must
    change whenever mode, armed, source in control or rejection count do."""
    core = airborne.core
    keys = []

    def check(now):
        status = core.status(now)
        key = core.status_key(now)
        assert key == (status.mode, status.armed, status.active_source, status.rejection_count)
        keys.append(key)
    airborne.run(1.0, each=lambda now: (core.submit_velocity("teleop", 0.5, 0.0, 0.0, 0.0, now), check(now)))
    core.submit_velocity("teleop", NAN, 0.0, 0.0, 0.0, airborne.now)
    airborne.run(1.0, each=check)                            # teleop's timeout: hover
    core.land(airborne.now)
    airborne.run(10.0, each=check)
    assert {key[0] for key in keys} >= {"VELOCITY", "HOVER", "LANDING", "LANDED"}
    assert {key[2] for key in keys} == {"teleop", ""} and len({key[3] for key in keys}) == 2


def test_odometry_silence_lands_open_loop_and_cuts_only_on_the_ground(airborne):
    airborne.odometry = False                                # the IMU keeps the blind descent level
    status = airborne.run(0.6)
    assert status.mode == "LANDING" and status.land_reason == "odometry lost" and not status.odometry_ok
    assert airborne.armed and np.all(airborne.thrusts > 0)  # descending under power, not dropped
    heights_when_armed, tilts = [], []

    def watch(now):
        if airborne.armed:
            heights_when_armed.append(airborne.sim.position[2])
            tilts.append(airborne.sim.tilt_deg)

    status = airborne.run(15.0, each=watch, until=lambda s: s.mode == "LANDED")
    assert status.mode == "LANDED" and not status.armed
    assert airborne.sim.on_ground()
    assert max(tilts) < 3.0
    assert min(heights_when_armed) == 0.0                    # the motors were still on when it touched down


def test_odometry_coming_back_resumes_a_closed_loop_landing(airborne):
    start_xy = airborne.sim.position[:2].copy()
    airborne.odometry = False
    status = airborne.run(0.8)
    assert status.mode == "LANDING" and status.land_reason == "odometry lost"
    airborne.odometry = True
    status = airborne.run(10.0, until=lambda s: s.mode == "LANDED")
    assert status.mode == "LANDED" and airborne.sim.on_ground()
    assert np.linalg.norm(airborne.sim.position[:2] - start_xy) < 0.1    # held x, y on the way down


def test_low_battery_lands_and_blocks_the_next_takeoff(airborne):
    core = airborne.core
    assert core.update_battery(0.55, airborne.now)
    assert not core.update_battery(55.0, airborne.now)      # a percentage, not a fraction: refused
    airborne.run(0.2)
    assert core.mode is FlightMode.HOVER
    core.update_battery(0.15, airborne.now)
    status = airborne.run(0.1)
    assert status.mode == "LANDING" and "battery low" in status.land_reason
    refused = core.submit_velocity("teleop", 1.0, 0.0, 0.0, 0.0, airborne.now)
    assert not refused and "landing in progress" in refused.reason
    status = airborne.run(10.0, until=lambda s: s.mode == "LANDED")
    assert status.mode == "LANDED" and not status.armed and airborne.sim.on_ground()
    airborne.run(0.5)
    refused = core.takeoff(airborne.now)
    assert not refused and "battery low" in refused.reason
    core.update_battery(0.22, airborne.now)                  # still within the hysteresis: no
    assert not core.takeoff(airborne.now)
    core.update_battery(0.95, airborne.now)                  # a fresh battery
    assert core.takeoff(airborne.now)


def test_emergency_stop_cuts_motors_at_once_from_anyone_and_resets_only_on_the_ground(airborne):
    core = airborne.core
    core.set_authorised(False, airborne.now)
    assert core.emergency_stop(airborne.now, source="teleop")
    thrusts, armed, status = core.step(airborne.now + 0.004)
    assert not armed and np.all(thrusts == 0.0) and status.mode == "EMERGENCY"
    airborne.now += 0.004
    assert not core.reset_emergency(airborne.now)           # still falling
    refused = core.takeoff(airborne.now)
    assert not refused and "emergency stop latched" in refused.reason
    airborne.run(2.0)
    assert airborne.sim.on_ground()
    core.set_authorised(True, airborne.now)
    assert core.reset_emergency(airborne.now)
    assert core.mode is FlightMode.LANDED


def test_unauthorised_motion_is_refused_but_land_is_always_accepted(airborne):
    core = airborne.core
    airborne.run(0.5, each=lambda now: core.submit_velocity("teleop", 0.5, 0.0, 0.0, 0.0, now))
    core.set_authorised(False, airborne.now)                 # the operator walks away
    status = airborne.run(0.02)
    assert status.mode == "HOVER" and not status.operator_authorised
    refused = core.submit_velocity("teleop", 0.5, 0.0, 0.0, 0.0, airborne.now)
    assert not refused and "no authorised operator" in refused.reason
    assert core.land(airborne.now, source="teleop")
    status = airborne.run(10.0, until=lambda s: s.mode == "LANDED")
    assert status.mode == "LANDED" and airborne.sim.on_ground()


def test_authorisation_lapses_at_its_expiry_and_a_renewal_resumes(airborne):
    core = airborne.core
    core.set_authorised(True, airborne.now, expires_at=airborne.now + 1.0)
    status = airborne.run(0.5, each=lambda now: core.submit_velocity("teleop", 0.5, 0.0, 0.0, 0.0, now))
    assert status.mode == "VELOCITY" and status.active_source == "teleop" and status.operator_authorised
    status = airborne.run(0.6, each=lambda now: core.submit_velocity("teleop", 0.5, 0.0, 0.0, 0.0, now))
    assert status.mode == "HOVER" and status.active_source == "" and not status.operator_authorised
    refused = core.submit_velocity("teleop", 0.5, 0.0, 0.0, 0.0, airborne.now)
    assert not refused and "no authorised operator" in refused.reason
    core.set_authorised(True, airborne.now, expires_at=airborne.now + 1.0)      # face_auth's next signed claim
    assert core.submit_velocity("teleop", 0.5, 0.0, 0.0, 0.0, airborne.now)
    status = airborne.run(0.1, each=lambda now: core.submit_velocity("teleop", 0.5, 0.0, 0.0, 0.0, now))
    assert status.mode == "VELOCITY" and status.operator_authorised


def test_an_expired_authorisation_is_refused_before_the_next_step(airborne):
    core = airborne.core
    core.set_authorised(True, airborne.now, expires_at=airborne.now + 0.5)
    refused = core.submit_velocity("teleop", 0.5, 0.0, 0.0, 0.0, airborne.now + 0.5)   # no step in between
    assert not refused and "no authorised operator" in refused.reason
    core.set_authorised(True, airborne.now, expires_at=airborne.now - 0.1)     # already past: not authorised
    assert not core.status(airborne.now).operator_authorised


def test_authorisation_expiry_stops_a_running_plan(airborne):
    core = airborne.core
    core.set_authorised(True, airborne.now, expires_at=airborne.now + 0.3)
    assert core.start_plan([PlanStep(ActionType.HOVER, duration_s=10.0)], airborne.now)
    status = airborne.run(0.5)
    assert not core.plan.running and status.mode == "HOVER"
    assert not core.start_plan([PlanStep(ActionType.HOVER, duration_s=1.0)], airborne.now)


def test_hovering_unattended_ends_in_a_landing():
    harness = FlightHarness(config=FlightCoreConfig(hover_land_timeout_s=2.0))
    harness.take_off()
    status = harness.run(1.5)
    assert status.mode == "HOVER"
    status = harness.run(1.0)
    assert status.mode == "LANDING" and "no command" in status.land_reason


def test_flight_core_config_from_plain_data():
    config = FlightCoreConfig.from_dict({
        "control_rate_hz": 200.0, "takeoff_height_m": 2.0,
        "envelope": {"geofence_min": [-4, -4, -1], "geofence_max": [4, 4, 6], "low_battery_fraction": 0.25},
        "plan": {"default_speed_m_s": 0.8},
        "mux": {"sources": {"operator": {"priority": 2, "timeout_s": 1.5}, "teleop": {"priority": 1}}},
    })
    assert config.envelope.geofence_max == (4.0, 4.0, 6.0) and config.plan.default_speed_m_s == 0.8
    harness = FlightHarness(config=config)
    assert harness.core.mux.sources["operator"].timeout_s == 1.5
    assert harness.core.mux.sources["teleop"].timeout_s == config.command_timeout_s
    refused = harness.core.start_plan([PlanStep(0)], 0.0)
    assert not refused and "no 'plan' source" in refused.reason
    with pytest.raises(ValueError, match="unknown flight core keys"):
        FlightCoreConfig.from_dict({"takeof_height_m": 2.0})


def test_takeoff_refusals_and_defaults():
    harness = FlightHarness(authorised=False)
    refused = harness.core.takeoff(harness.now)
    assert not refused and "no authorised operator" in refused.reason
    harness.core.set_authorised(True, harness.now)
    refused = harness.core.takeoff(harness.now, height=40.0)
    assert not refused and "take-off target" in refused.reason
    refused = harness.core.takeoff(harness.now, height=NAN)
    assert not refused
    assert harness.core.status(harness.now).home is None     # no take-off yet: come back home is unknown
    start = harness.sim.position.copy()
    harness.take_off()                                       # default height, 1.5 m
    assert harness.sim.position[2] == pytest.approx(1.5, abs=0.1)
    home = harness.core.status(harness.now).home             # published in /flight/state for the planner
    assert home is not None and np.allclose(home, start, atol=0.05)
    refused = harness.core.takeoff(harness.now)
    assert not refused and "already flying" in refused.reason


def _shifted(state, offset):
    from mmchat_ros.core.flight.control import VehicleState
    return VehicleState(state.position + offset, state.velocity, state.quaternion_wxyz, state.angular_velocity_body)


def test_one_odometry_reading_far_from_the_prediction_is_refused_as_an_outlier(airborne):
    core, sim = airborne.core, airborne.sim
    hold = sim.position.copy()
    results = []

    def glitch(now):
        if not results:
            results.append(core.update_odometry(_shifted(sim.state(), np.array([3.0, 0.0, 0.0])), now))

    airborne.run(0.02, each=glitch)
    assert not results[0] and "odometry rejected" in results[0].reason and "an outlier" in results[0].reason
    status = airborne.run(2.0)
    assert status.mode == "HOVER" and np.linalg.norm(sim.position - hold) < 0.05
    assert status.rejections_by_reason.get("odometry_reset", 0) == 0


def test_an_estimator_reset_is_believed_after_it_repeats_and_nothing_planned_before_it_is_flown(airborne):
    core, sim = airborne.core, airborne.sim
    assert core.start_plan([PlanStep(ActionType.MOVE_BY, x=2.0)], airborne.now)
    airborne.run(0.5)
    offset = np.array([3.0, -2.0, 0.0])                       # the estimator's frame moves by 3.6 m and stays there
    true_state = sim.state
    sim.state = lambda: _shifted(true_state(), offset)
    where = sim.position.copy()
    status = airborne.run(3.0)
    refused = status.rejections_by_reason
    assert refused.get("odometry") == core.config.odom_reset_samples - 1 and refused.get("odometry_reset") == 1
    assert status.mode == "HOVER" and not core.plan.running        # the plan was in the old frame: stopped
    moved = np.linalg.norm((sim.position - where)[:2])
    assert moved < 0.6, f"flew {moved:.2f} m after the reset"         # braked from the plan's speed, no 3.6 m dash
    assert np.linalg.norm(sim.velocity) < 0.1


def test_imu_readings_are_wanted_sparsely_while_odometry_is_fresh_and_all_once_it_is_lost(airborne):
    core, timeout = airborne.core, airborne.core.config.imu_timeout_s
    now = airborne.now
    core.update_attitude(airborne.sim.state().quaternion_wxyz, np.zeros(3), now)
    assert not core.wants_attitude(now + 0.01)                # odometry fresh, an attitude 10 ms old at hand
    assert core.wants_attitude(now + timeout / 2)             # renewed before it would go stale (imu_timeout_s)
    stale = now + core.config.odom_timeout_s + 0.01
    core.update_attitude(airborne.sim.state().quaternion_wxyz, np.zeros(3), stale)
    assert core.wants_attitude(stale + 0.001)                 # odometry lost: every reading keeps the descent level
