"""Supervision of a real vehicle's link, pure: what the driver nodes (tello_driver, mavlink_driver) decide, without
sockets, threads or a clock. Every call takes the current time ``now`` (monotonic seconds) and returns the actions
for the node to carry out (send a command, log a report); the outcome of a blocking command comes back through a
``*_result`` method.

- LinkMonitor: link up / lost / restored from the time of the vehicle's last message;
- RetryGate, CommandRetries: at most one attempt per interval (one gate, or one per command);
- ControllerView: the flight controller as a driver sees it (enable, mode, latest set-point) and the
  silent-controller watchdog;
- TelloSupervisor: the Tello's connect / take-off / rc / land sequence;
- MavlinkSupervisor: heartbeat, set-point stream, and the arming and mode hand-over of a PX4 or ArduPilot vehicle.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from mmchat_ros.core.flight.state_machine import FlightMode


# ------------------------------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class ReportLinkUp:
    """The vehicle is heard for the first time."""


@dataclass(frozen=True)
class ReportLinkRestored:
    after_s: float                   # how long it was lost


@dataclass(frozen=True)
class ReportLinkLost:
    silent_s: float                  # since the vehicle's last message


@dataclass(frozen=True)
class Reconnect:
    """Tello: send 'command' (enter SDK mode)."""


@dataclass(frozen=True)
class SendHover:
    """Zero velocity (Tello: ``rc 0 0 0 0``)."""


@dataclass(frozen=True)
class FollowSetpoint:
    setpoint: HeadingSetpoint


@dataclass(frozen=True)
class StreamSetpoint:
    """MAVLink: the velocity set-point streamed this tick; None = zero velocity."""
    setpoint: HeadingSetpoint | None


@dataclass(frozen=True)
class TakeOff:
    height_m: float | None = None    # ArduPilot's MAV_CMD_NAV_TAKEOFF height; None: the Tello climbs by itself


@dataclass(frozen=True)
class SendLand:
    reason: str
    controller_silent: bool = False  # the watchdog, not the controller, decided it


@dataclass(frozen=True)
class EmergencyStop:
    """The flight controller went to EMERGENCY: motors stop now."""


@dataclass(frozen=True)
class ReportAdopted:
    """Tello: already in the air when the controller enables it; flown on without 'takeoff'."""


@dataclass(frozen=True)
class SendHeartbeat:
    pass


@dataclass(frozen=True)
class RequestTelemetry:
    pass


@dataclass(frozen=True)
class SetMode:
    mode: str


@dataclass(frozen=True)
class Arm:
    pass


@dataclass(frozen=True)
class Disarm:
    force: bool = False              # even in the air (repeats of an emergency stop)


@dataclass(frozen=True)
class ReportHandOver:
    """The vehicle left (or was already armed outside) the control mode: hands off until it disarms."""
    mode: str
    was_engaged: bool                # it had been armed in the control mode under our control


# -------------------------------------------------------------------------------------------- link and gates
class LinkMonitor:
    """Up while the vehicle's last message is at most ``timeout_s`` old; reports each change once."""

    def __init__(self, timeout_s: float):
        self.timeout_s = float(timeout_s)
        self.up = False
        self.lost_since: float | None = None

    def alive(self, last_message: float | None, now: float) -> bool:
        return last_message is not None and now - last_message <= self.timeout_s

    def update(self, last_message: float | None,
               now: float) -> ReportLinkUp | ReportLinkRestored | ReportLinkLost | None:
        if not self.alive(last_message, now):
            if not self.up:
                return None
            self.up = False
            self.lost_since = now
            return ReportLinkLost(math.inf if last_message is None else now - last_message)
        if self.up:
            return None
        self.up = True
        if self.lost_since is None:
            return ReportLinkUp()
        after, self.lost_since = now - self.lost_since, None
        return ReportLinkRestored(after)


class RetryGate:
    """One attempt per ``interval_s``: ``try_now`` opens at most once per interval; ``defer`` holds it shut longer
    (after a failure)."""

    def __init__(self, interval_s: float):
        self.interval_s = float(interval_s)
        self.next_attempt = -math.inf

    def ready(self, now: float) -> bool:
        return now >= self.next_attempt

    def try_now(self, now: float) -> bool:
        if not self.ready(now):
            return False
        self.next_attempt = now + self.interval_s
        return True

    def defer(self, until: float) -> None:
        self.next_attempt = until


class CommandRetries:
    """Rate-limits repeats of each command whose effect is not confirmed yet, per command name."""

    def __init__(self, retry_s: float):
        self.retry_s = float(retry_s)
        self.last_sent: dict[str, float] = {}

    def due(self, what: str, now: float) -> bool:
        if now - self.last_sent.get(what, -math.inf) < self.retry_s:
            return False
        self.last_sent[what] = now
        return True

    def sent(self, what: str, now: float) -> None:
        self.last_sent[what] = now


# ----------------------------------------------------------------------------------------- flight controller
@dataclass(frozen=True)
class HeadingSetpoint:
    """The flight controller's last /cmd_vel/vehicle: heading frame (x forward, y left, z up), yaw rate (rad/s)."""
    forward: float
    left: float
    up: float
    yaw_rate: float
    received: float          # monotonic time of arrival


@dataclass(frozen=True)
class ControllerView:
    """The flight controller as a driver sees it at one moment: motor enable, its mode, its latest set-point."""
    enabled: bool = False
    mode: str = ""
    setpoint: HeadingSetpoint | None = None

    @property
    def emergency(self) -> bool:
        return self.mode == FlightMode.EMERGENCY.value

    @property
    def taking_off(self) -> bool:
        """The controller is starting a flight: the only time a driver arms the vehicle or commands a take-off (not
        when the vehicle landed or disarmed by itself while the controller still enables it, e.g. landing blind)."""
        return self.mode in (FlightMode.ARMED.value, FlightMode.TAKING_OFF.value)

    def setpoint_age(self, now: float) -> float:
        return math.inf if self.setpoint is None else now - self.setpoint.received

    def fresh_setpoint(self, now: float, max_age_s: float) -> HeadingSetpoint | None:
        return self.setpoint if self.setpoint_age(now) <= max_age_s else None


def silent_controller_land(silence_s: float) -> SendLand:
    """The watchdog's landing: the flight controller sent no set-point for ``silence_s``."""
    return SendLand(f"no set-point from the flight controller for {silence_s} s", controller_silent=True)


DISABLED_IN_AIR = "the flight controller disables the vehicle in the air"


# ------------------------------------------------------------------------------------------------------ Tello
class TakeoffOutcome(Enum):
    FLYING = "flying"
    RETRY = "retrying"
    GIVE_UP = "giving up until the controller re-enables the vehicle"


class LandOutcome(Enum):
    LANDED = "landed"                # the Tello answered 'land' ok
    ON_GROUND = "on the ground"      # it did not, but it is on the ground
    RETRY = "retrying"


class TelloSupervisor:
    """The Tello's link and flight sequencing. ``step`` runs at the rc rate; 'command', 'takeoff' and 'land' block
    in the node until the Tello answers, and their outcomes come back through the ``*_result`` methods.

    Link loss: one rc 0 while flying, then silence, so that the Tello's own failsafe (it lands after 15 s without a
    command) is not defeated; on the ground the driver keeps re-entering SDK mode (a Tello that rebooted)."""

    TAKEOFF_ATTEMPTS = 3
    TAKEOFF_RETRY_S = 2.0
    LAND_RETRY_S = 1.0

    def __init__(self, link_timeout_s: float, connect_retry_s: float, setpoint_timeout_s: float,
                 controller_silence_land_s: float):
        self.link = LinkMonitor(link_timeout_s)
        self.gate = RetryGate(connect_retry_s)      # 'command', 'takeoff' and 'land' share it: one at a time
        self.setpoint_timeout_s = float(setpoint_timeout_s)
        self.controller_silence_land_s = float(controller_silence_land_s)
        self.connected = False          # the Tello answered 'command' (SDK mode)
        self.flying = False             # taken off under our control (or adopted in the air) and not landed since
        self.emergency_sent = False
        self.takeoff_failures = 0

    def step(self, now: float, last_state: float | None, controller: ControllerView, in_air: bool) -> list:
        report = self.link.update(last_state, now)
        actions = [report] if report is not None else []
        if not self.link.up:
            if report is not None and self.flying:
                actions.append(SendHover())
            # Only on the ground: every command restarts the Tello's own 15 s no-command landing timer.
            if not self.flying:
                actions += self._connect(now)
            return actions
        if not self.connected:
            actions += self._connect(now)      # state without our 'command': the Tello was already in SDK mode
        return actions + self._fly(now, controller, in_air)

    def _connect(self, now: float) -> list:
        return [Reconnect()] if self.gate.try_now(now) else []

    def _fly(self, now: float, controller: ControllerView, in_air: bool) -> list:
        if controller.emergency:
            return []          # on_flight_mode has stopped the motors; nothing flies until the controller resets
        if not controller.enabled:
            self.takeoff_failures = 0
            return self._land(now, SendLand(DISABLED_IN_AIR)) if self.flying else []
        if not self.flying:
            if in_air:
                self.flying = True
                return [ReportAdopted()]
            if controller.taking_off and self.takeoff_failures < self.TAKEOFF_ATTEMPTS and self.gate.ready(now):
                return [TakeOff()]
            return []
        setpoint = controller.fresh_setpoint(now, self.setpoint_timeout_s)
        if setpoint is None and controller.setpoint_age(now) > self.controller_silence_land_s:
            return self._land(now, silent_controller_land(self.controller_silence_land_s))
        return [SendHover()] if setpoint is None else [FollowSetpoint(setpoint)]

    def _land(self, now: float, land: SendLand) -> list:
        return [SendHover(), land] if self.gate.ready(now) else []

    def connect_result(self, ok: bool) -> bool:
        """Whether this reply made the link connected (it was not before)."""
        newly = ok and not self.connected
        self.connected = self.connected or ok
        return newly

    def takeoff_result(self, ok: bool, now: float) -> TakeoffOutcome:
        if ok:
            self.flying = True
            self.takeoff_failures = 0
            return TakeoffOutcome.FLYING
        self.takeoff_failures += 1
        self.gate.defer(now + self.TAKEOFF_RETRY_S)
        return TakeoffOutcome.GIVE_UP if self.takeoff_failures >= self.TAKEOFF_ATTEMPTS else TakeoffOutcome.RETRY

    def land_result(self, ok: bool, in_air: bool, now: float) -> LandOutcome:
        if ok or not in_air:
            self.flying = False
            return LandOutcome.LANDED if ok else LandOutcome.ON_GROUND
        self.gate.defer(now + self.LAND_RETRY_S)
        return LandOutcome.RETRY

    def on_flight_mode(self, mode: str, in_air: bool) -> list:
        """The flight controller's mode changed (called at once, not at the next tick)."""
        if mode != FlightMode.EMERGENCY.value:
            self.emergency_sent = False
            return []
        if (self.flying or in_air) and not self.emergency_sent:
            self.emergency_sent = True
            self.flying = False
            return [EmergencyStop()]
        return []


# ---------------------------------------------------------------------------------------------------- MAVLink
@dataclass(frozen=True)
class MavlinkVehicleView:
    """What the supervisor needs of the vehicle's telemetry at one moment."""
    message_time: float | None       # arrival of its latest message
    autopilot: str | None            # "px4", "ardupilot"; None until a HEARTBEAT says
    armed: bool
    mode: str
    airborne: bool | None            # None when neither the landed state nor the height is known


class MavlinkSupervisor:
    """Brings a PX4 or ArduPilot vehicle's arming and mode to what the flight controller wants, one command at a
    time, and streams set-points while the link is up. ``control_mode`` and ``land_mode`` name, per autopilot, the
    mode that follows our set-points and the landing mode.

    PX4: OFFBOARD (once set-points have streamed ``offboard_stream_s``), then arm; ArduPilot: GUIDED, arm, then a
    take-off command to ``takeoff_height_m``. A vehicle that leaves the control mode while armed is not taken back.
    Link loss: silent (no heartbeat, no set-point), so the vehicle's own failsafes engage."""

    def __init__(self, *, control_mode: Mapping[str, str], land_mode: Mapping[str, str], link_timeout_s: float,
                 heartbeat_rate_hz: float, setpoint_timeout_s: float, controller_silence_land_s: float,
                 offboard_stream_s: float, command_retry_s: float, takeoff_height_m: float):
        self.control_mode, self.land_mode = dict(control_mode), dict(land_mode)
        self.link = LinkMonitor(link_timeout_s)
        self.heartbeat = RetryGate(1.0 / heartbeat_rate_hz)
        self.retries = CommandRetries(command_retry_s)
        self.setpoint_timeout_s = float(setpoint_timeout_s)
        self.controller_silence_land_s = float(controller_silence_land_s)
        self.offboard_stream_s = float(offboard_stream_s)
        self.takeoff_height_m = float(takeoff_height_m)
        self.stream_since: float | None = None     # set-points flowing continuously since then
        self.requested_mode: str | None = None
        self.engaged = False                       # armed in the control mode under our control this flight
        self.handed_over = False                   # it left the control mode while armed: hands off until disarmed
        self.takeoff_sent = False

    @property
    def arming_requested(self) -> bool:
        """The latest arm/disarm command sent was 'arm' (what an accepted COMMAND_ACK confirms)."""
        return self.retries.last_sent.get("arm", 0) > self.retries.last_sent.get("disarm", 0)

    def step(self, now: float, vehicle: MavlinkVehicleView, controller: ControllerView) -> list:
        if not self.link.alive(vehicle.message_time, now):
            self.stream_since = None
            lost = self.link.update(vehicle.message_time, now)
            if lost is not None:
                return [lost]
            if vehicle.message_time is None and self.heartbeat.try_now(now):
                return [SendHeartbeat()]     # let a udpout/serial peer learn about us before it talks
            return []
        if vehicle.autopilot is None:
            return []                        # no HEARTBEAT from an autopilot yet
        actions: list = []
        report = self.link.update(vehicle.message_time, now)
        if report is not None:
            actions += [report, RequestTelemetry()]
        if self.heartbeat.try_now(now):
            actions.append(SendHeartbeat())
        actions.append(StreamSetpoint(controller.fresh_setpoint(now, self.setpoint_timeout_s)
                                      if controller.enabled else None))
        if self.stream_since is None:
            self.stream_since = now
        return actions + self._supervise(now, vehicle, controller)

    def on_flight_mode(self, mode: str, armed: bool, now: float) -> list:
        """The flight controller's mode changed: an emergency stop is sent at once, not at the next tick."""
        if mode == FlightMode.EMERGENCY.value and armed:
            self.retries.sent("kill", now)
            return [EmergencyStop()]
        return []

    def _supervise(self, now: float, v: MavlinkVehicleView, controller: ControllerView) -> list:
        due = self.retries.due
        if controller.emergency:
            return [Disarm(force=True)] if v.armed and due("kill", now) else []
        if not v.armed:
            self.engaged = self.handed_over = self.takeoff_sent = False
        landing = v.mode == self.land_mode[v.autopilot]
        if not controller.enabled:
            if v.armed and v.airborne is not False:
                return [SendLand(DISABLED_IN_AIR)] if not landing and due("land", now) else []
            return [Disarm()] if v.armed and due("disarm", now) else []
        if controller.setpoint_age(now) > self.controller_silence_land_s and v.airborne:
            return [silent_controller_land(self.controller_silence_land_s)] if not landing and due("land", now) \
                else []
        control_mode = self.control_mode[v.autopilot]
        if self.handed_over:
            return []
        if v.armed and v.mode != control_mode:
            # Only a disarmed vehicle is switched to the control mode: one that left it while armed (the pilot's
            # switch, its own failsafe), or was flying in another mode when we (re)connected, stays as it is.
            self.handed_over = True
            return [ReportHandOver(v.mode, self.engaged)]
        if not v.armed and not controller.taking_off:
            return []      # disarmed while the controller is not starting a flight (it landed by itself): stay so
        if v.mode != control_mode:
            streamed = self.stream_since is not None and now - self.stream_since >= self.offboard_stream_s
            if (v.autopilot != "px4" or streamed) and due("mode", now):
                self.requested_mode = control_mode
                return [SetMode(control_mode)]
            return []
        if not v.armed:
            return [Arm()] if due("arm", now) else []
        self.engaged = True
        if v.autopilot == "ardupilot" and not v.airborne and not self.takeoff_sent and due("takeoff", now):
            self.takeoff_sent = True
            return [TakeOff(self.takeoff_height_m)]
        return []
