"""core/vehicle_link.py: the driver nodes' link supervision, driven by explicit times (no sleeps, no emulators)."""
from __future__ import annotations

import math

from mmchat_ros.core.vehicle_link import (Arm, CommandRetries, ControllerView, Disarm, EmergencyStop,
                                          FollowSetpoint, HeadingSetpoint, LandOutcome, LinkMonitor,
                                          MavlinkSupervisor, MavlinkVehicleView, Reconnect, ReportAdopted,
                                          ReportHandOver, ReportLinkLost, ReportLinkRestored, ReportLinkUp,
                                          RequestTelemetry, RetryGate, SendHeartbeat, SendHover, SendLand, SetMode,
                                          StreamSetpoint, TakeOff, TakeoffOutcome, TelloSupervisor)


def setpoint(at: float) -> HeadingSetpoint:
    return HeadingSetpoint(0.5, 0.0, 0.1, 0.0, received=at)


def flying_controller(at: float) -> ControllerView:
    return ControllerView(enabled=True, mode="VELOCITY", setpoint=setpoint(at))


def kinds(actions) -> list[type]:
    return [type(a) for a in actions]


# --------------------------------------------------------------------------------------------- link monitor
def test_link_up_lost_after_the_timeout_and_restored():
    link = LinkMonitor(timeout_s=1.0)
    assert link.update(None, 0.0) is None and not link.up             # never heard: nothing to report
    assert link.update(0.0, 0.1) == ReportLinkUp() and link.up
    assert link.update(0.0, 1.0) is None and link.up                  # exactly the timeout: still up
    assert link.update(0.0, 1.5) == ReportLinkLost(1.5) and not link.up
    assert link.update(0.0, 3.0) is None                              # lost is reported once
    assert link.update(4.0, 4.0) == ReportLinkRestored(2.5) and link.up
    assert link.update(4.5, 4.6) is None


def test_retry_gate_opens_once_per_interval_and_defers_after_a_failure():
    gate = RetryGate(1.0)
    assert gate.try_now(0.0) and not gate.try_now(0.5) and gate.try_now(1.0)
    gate.defer(5.0)
    assert not gate.ready(4.9) and gate.ready(5.0)


def test_command_retries_are_per_command():
    retries = CommandRetries(1.0)
    assert retries.due("arm", 0.0) and retries.due("mode", 0.1)
    assert not retries.due("arm", 0.9) and retries.due("arm", 1.0)


def test_controller_view_freshness_and_modes():
    view = ControllerView(True, "TAKING_OFF", setpoint(10.0))
    assert view.fresh_setpoint(10.2, 0.3) is view.setpoint and view.fresh_setpoint(10.4, 0.3) is None
    assert view.setpoint_age(12.0) == 2.0 and ControllerView().setpoint_age(0.0) == math.inf
    assert view.taking_off and not view.emergency and ControllerView(mode="EMERGENCY").emergency


# ---------------------------------------------------------------------------------------------------- Tello
def tello() -> TelloSupervisor:
    return TelloSupervisor(link_timeout_s=1.0, connect_retry_s=1.0, setpoint_timeout_s=0.3,
                           controller_silence_land_s=3.0)


def airborne_tello(now: float = 0.0) -> TelloSupervisor:
    s = tello()
    s.step(now, now, ControllerView(), in_air=False)       # link up, 'command'
    s.connect_result(True)
    s.flying = True
    return s


def test_tello_connects_with_backoff_until_state_arrives():
    s = tello()
    assert s.step(0.0, None, ControllerView(), False) == [Reconnect()]
    assert s.step(0.5, None, ControllerView(), False) == []          # gate shut for connect_retry_s
    assert s.step(1.0, None, ControllerView(), False) == [Reconnect()]
    assert s.connect_result(False) is False and not s.connected
    assert s.step(1.5, 1.5, ControllerView(), False) == [ReportLinkUp()]   # still gated: no 'command' yet
    assert s.step(2.0, 1.9, ControllerView(), False) == [Reconnect()]
    assert s.connect_result(True) is True and s.connect_result(True) is False


def test_tello_takes_off_when_the_controller_starts_a_flight_and_gives_up_after_three_failures():
    s = airborne_tello()
    s.flying = False
    starting = ControllerView(enabled=True, mode="TAKING_OFF")
    assert s.step(0.1, 0.1, ControllerView(enabled=True, mode="LANDED"), False) == []   # enabled, not starting
    assert s.step(1.0, 1.0, starting, False) == [TakeOff()]
    assert s.takeoff_result(False, 1.0) is TakeoffOutcome.RETRY
    assert s.step(2.9, 2.9, starting, False) == []                  # 2 s back-off
    assert s.step(3.0, 3.0, starting, False) == [TakeOff()]
    s.takeoff_result(False, 3.0)
    assert s.takeoff_result(False, 5.0) is TakeoffOutcome.GIVE_UP
    assert s.step(10.0, 10.0, starting, False) == []
    s.step(10.1, 10.1, ControllerView(enabled=False), False)        # disabling resets the count
    assert s.step(10.2, 10.2, starting, False) == [TakeOff()]
    assert s.takeoff_result(True, 12.0) is TakeoffOutcome.FLYING and s.flying


def test_tello_adopts_a_vehicle_already_in_the_air():
    s = airborne_tello()
    s.flying = False
    assert s.step(0.1, 0.1, ControllerView(enabled=True, mode="HOVER"), in_air=True) == [ReportAdopted()]
    assert s.flying


def test_tello_follows_fresh_setpoints_and_hovers_on_stale_ones():
    s = airborne_tello()
    assert s.step(1.0, 1.0, flying_controller(0.9), True) == [FollowSetpoint(setpoint(0.9))]
    assert s.step(1.5, 1.5, flying_controller(0.9), True) == [SendHover()]


def test_tello_silent_controller_watchdog_lands():
    s = airborne_tello()
    assert s.step(3.0, 3.0, flying_controller(0.1), True) == [SendHover()]   # 2.9 s: not yet
    actions = s.step(3.2, 3.2, flying_controller(0.1), True)
    assert kinds(actions) == [SendHover, SendLand] and actions[1].controller_silent
    assert s.land_result(False, in_air=True, now=3.3) is LandOutcome.RETRY
    assert s.step(4.0, 4.0, flying_controller(0.1), True) == []               # 1 s back-off
    assert kinds(s.step(4.3, 4.3, flying_controller(0.1), True)) == [SendHover, SendLand]
    assert s.land_result(False, in_air=False, now=4.4) is LandOutcome.ON_GROUND and not s.flying


def test_tello_lands_when_disabled():
    s = airborne_tello()
    actions = s.step(1.0, 1.0, ControllerView(enabled=False), True)
    assert kinds(actions) == [SendHover, SendLand] and not actions[1].controller_silent
    assert s.land_result(True, in_air=True, now=1.5) is LandOutcome.LANDED and not s.flying
    assert s.step(2.0, 2.0, ControllerView(enabled=False), False) == []


def test_tello_link_loss_in_the_air_sends_one_hover_then_silence():
    s = airborne_tello()
    assert s.step(1.0, 1.0, flying_controller(1.0), True) == [FollowSetpoint(setpoint(1.0))]
    assert s.step(2.5, 1.0, flying_controller(1.0), True) == [ReportLinkLost(1.5), SendHover()]
    assert s.step(5.0, 1.0, flying_controller(1.0), True) == []               # no 'command': the Tello's failsafe
    assert s.step(6.0, 6.0, ControllerView(enabled=False), True)[0] == ReportLinkRestored(3.5)


def test_tello_link_loss_on_the_ground_keeps_reconnecting():
    s = airborne_tello()
    s.flying = False
    s.gate.defer(0.0)
    assert s.step(2.0, 0.5, ControllerView(), False) == [ReportLinkLost(1.5), Reconnect()]
    assert s.step(2.5, 0.5, ControllerView(), False) == []
    assert s.step(3.0, 0.5, ControllerView(), False) == [Reconnect()]


def test_tello_emergency_once_per_emergency():
    s = airborne_tello()
    assert s.on_flight_mode("EMERGENCY", in_air=True) == [EmergencyStop()] and not s.flying
    assert s.on_flight_mode("EMERGENCY", in_air=True) == []
    assert s.step(1.0, 1.0, ControllerView(enabled=True, mode="EMERGENCY"), True) == []
    s.on_flight_mode("LANDED", in_air=False)
    assert s.on_flight_mode("EMERGENCY", in_air=False) == []          # on the ground and not flying


# -------------------------------------------------------------------------------------------------- MAVLink
def mavlink(**overrides) -> MavlinkSupervisor:
    config = dict(control_mode={"px4": "OFFBOARD", "ardupilot": "GUIDED"},
                  land_mode={"px4": "AUTO.LAND", "ardupilot": "LAND"}, link_timeout_s=1.0, heartbeat_rate_hz=1.0,
                  setpoint_timeout_s=0.3, controller_silence_land_s=3.0, offboard_stream_s=1.5,
                  command_retry_s=1.0, takeoff_height_m=1.0)
    return MavlinkSupervisor(**(config | overrides))


def vehicle(now: float, autopilot: str = "px4", armed: bool = False, mode: str = "POSCTL",
            airborne: bool | None = False) -> MavlinkVehicleView:
    return MavlinkVehicleView(now, autopilot, armed, mode, airborne)


def commands(actions) -> list:
    """What changes the vehicle: the stream, heartbeats and reports left out."""
    return [a for a in actions if not isinstance(a, (StreamSetpoint, SendHeartbeat, ReportLinkUp, ReportLinkRestored,
                                                RequestTelemetry))]


def test_mavlink_heartbeats_before_the_vehicle_talks_and_link_up_requests_telemetry():
    s = mavlink()
    assert s.step(0.0, vehicle(None, autopilot=None), ControllerView()) == [SendHeartbeat()]
    assert s.step(0.5, vehicle(None, autopilot=None), ControllerView()) == []
    assert s.step(1.0, vehicle(1.0, autopilot=None), ControllerView()) == []   # no HEARTBEAT from an autopilot
    actions = s.step(1.1, vehicle(1.1), ControllerView())
    assert actions == [ReportLinkUp(), RequestTelemetry(), SendHeartbeat(), StreamSetpoint(None)]


def test_mavlink_px4_hand_over_streams_then_offboard_then_arms():
    s = mavlink()
    starting = ControllerView(enabled=True, mode="ARMED", setpoint=setpoint(0.0))
    assert commands(s.step(0.0, vehicle(0.0), starting)) == []          # set-points must stream first
    assert commands(s.step(1.0, vehicle(1.0), starting)) == []
    assert commands(s.step(1.5, vehicle(1.5), starting)) == [SetMode("OFFBOARD")]
    assert s.requested_mode == "OFFBOARD"
    assert commands(s.step(2.0, vehicle(2.0), starting)) == []          # retry gate
    assert commands(s.step(2.5, vehicle(2.5, mode="OFFBOARD"), starting)) == [Arm()]
    assert s.arming_requested
    assert commands(s.step(2.6, vehicle(2.6, armed=True, mode="OFFBOARD"), starting)) == [] and s.engaged


def test_mavlink_stream_restarts_after_link_loss_before_offboard():
    s = mavlink()
    starting = ControllerView(enabled=True, mode="ARMED", setpoint=setpoint(0.0))
    s.step(0.0, vehicle(0.0), starting)
    assert s.step(1.2, vehicle(0.0), starting) == [ReportLinkLost(1.2)]  # silent: no heartbeat, no set-point
    assert s.step(1.4, vehicle(0.0), starting) == []
    actions = s.step(1.6, vehicle(1.6), starting)
    assert actions[0] == ReportLinkRestored(after_s=1.6 - 1.2) and commands(actions) == []
    assert commands(s.step(3.1, vehicle(3.1), starting)) == [SetMode("OFFBOARD")]


def test_mavlink_ardupilot_guided_arm_takeoff():
    s = mavlink()
    starting = ControllerView(enabled=True, mode="TAKING_OFF", setpoint=setpoint(0.0))
    assert commands(s.step(0.0, vehicle(0.0, "ardupilot", mode="STABILIZE"), starting)) == [SetMode("GUIDED")]
    assert commands(s.step(1.0, vehicle(1.0, "ardupilot", mode="GUIDED"), starting)) == [Arm()]
    assert commands(s.step(1.2, vehicle(1.2, "ardupilot", armed=True, mode="GUIDED"), starting)) == [TakeOff(1.0)]
    assert commands(s.step(2.5, vehicle(2.5, "ardupilot", armed=True, mode="GUIDED"), starting)) == []   # once


def test_mavlink_leaving_the_control_mode_while_armed_is_handed_over():
    s = mavlink()
    flying = flying_controller(0.0)
    s.step(0.0, vehicle(0.0, armed=True, mode="OFFBOARD", airborne=True), flying)
    assert s.engaged
    assert commands(s.step(0.1, vehicle(0.1, armed=True, mode="POSCTL", airborne=True), flying)) == \
        [ReportHandOver("POSCTL", was_engaged=True)]
    assert commands(s.step(1.5, vehicle(1.5, armed=True, mode="POSCTL", airborne=True), flying_controller(1.5))) \
        == []                                                             # not taken back
    s.step(2.0, vehicle(2.0, armed=False, mode="POSCTL"), flying_controller(2.0))
    assert not s.handed_over


def test_mavlink_disabled_lands_in_the_air_and_disarms_on_the_ground():
    s = mavlink()
    off = ControllerView(enabled=False)
    actions = commands(s.step(0.0, vehicle(0.0, armed=True, mode="OFFBOARD", airborne=True), off))
    assert kinds(actions) == [SendLand] and not actions[0].controller_silent
    assert commands(s.step(1.5, vehicle(1.5, armed=True, mode="AUTO.LAND", airborne=True), off)) == []
    assert commands(s.step(2.0, vehicle(2.0, armed=True, mode="AUTO.LAND", airborne=False), off)) == [Disarm()]
    assert s.step(2.0, vehicle(2.0), off) == [StreamSetpoint(None)]


def test_mavlink_silent_controller_watchdog_lands():
    s = mavlink()
    in_air = vehicle(3.0, armed=True, mode="OFFBOARD", airborne=True)
    assert commands(s.step(3.0, in_air, flying_controller(0.1))) == []
    actions = commands(s.step(3.2, vehicle(3.2, armed=True, mode="OFFBOARD", airborne=True),
                              flying_controller(0.1)))
    assert kinds(actions) == [SendLand] and actions[0].controller_silent


def test_mavlink_emergency_forces_disarm_and_repeats_it():
    s = mavlink()
    assert s.on_flight_mode("EMERGENCY", armed=True, now=0.0) == [EmergencyStop()]
    emergency = ControllerView(enabled=False, mode="EMERGENCY")
    armed = vehicle(0.5, armed=True, mode="OFFBOARD", airborne=True)
    assert commands(s.step(0.5, armed, emergency)) == []                  # just sent
    assert commands(s.step(1.0, vehicle(1.0, armed=True, mode="OFFBOARD", airborne=True), emergency)) == \
        [Disarm(force=True)]
    assert s.on_flight_mode("EMERGENCY", armed=False, now=2.0) == []
