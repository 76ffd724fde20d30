"""A PX4 or ArduPilot vehicle over MAVLink 2 (pymavlink): telemetry in, heartbeat / commands / velocity set-points
out. No rclpy; the mavlink_driver node wraps it.

Connection URLs are pymavlink's: ``udpin:0.0.0.0:14540`` (listen: PX4 SITL's offboard port, or a companion link),
``udpout:HOST:PORT`` (send to), ``tcp:HOST:PORT``, ``/dev/ttyUSB0`` or ``/dev/ttyACM0`` with ``baud`` (telemetry
radio, flight controller USB).

Everything that is protocol knowledge without I/O (mode numbers, the set-point type mask, what counts as in the
air) is a plain function here and is unit-tested on its own (tests/unit/test_mavlink_vehicle.py). Messages are
accepted only from the target system's autopilot component; malformed data (pymavlink's BAD_DATA), message ids
the dialect does not know, and messages that fail to decode go to ``on_problem`` and are otherwise ignored.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from mmchat_ros.core.geometry import quat_from_euler, yaw_from_quat  # Z-Y-X Euler, any frame

os.environ.setdefault("MAVLINK20", "1")     # read by pymavlink at import: speak MAVLink 2, as PX4 and ArduPilot do
from pymavlink import mavutil  # noqa: E402

mavlink = mavutil.mavlink

# ------------------------------------------------------------------------------------------------ modes
# PX4 packs its mode into HEARTBEAT.custom_mode as main mode << 16 | sub mode << 24 (px4_custom_mode.h).
PX4_MODES = {
    "MANUAL": (1, 0), "ALTCTL": (2, 0), "POSCTL": (3, 0), "AUTO.READY": (4, 1), "AUTO.TAKEOFF": (4, 2),
    "AUTO.LOITER": (4, 3), "AUTO.MISSION": (4, 4), "AUTO.RTL": (4, 5), "AUTO.LAND": (4, 6),
    "AUTO.PRECLAND": (4, 9), "ACRO": (5, 0), "OFFBOARD": (6, 0), "STABILIZED": (7, 0),
}
# ArduCopter's flight modes are plain numbers in custom_mode (ArduCopter/mode.h).
ARDUCOPTER_MODES = {
    "STABILIZE": 0, "ACRO": 1, "ALT_HOLD": 2, "AUTO": 3, "GUIDED": 4, "LOITER": 5, "RTL": 6, "CIRCLE": 7, "LAND": 9,
    "DRIFT": 11, "SPORT": 13, "POSHOLD": 16, "BRAKE": 17, "SMART_RTL": 21,
}
AUTOPILOTS = ("px4", "ardupilot")
# The mode in which each autopilot follows our velocity set-points, and its landing mode.
CONTROL_MODE = {"px4": "OFFBOARD", "ardupilot": "GUIDED"}
LAND_MODE = {"px4": "AUTO.LAND", "ardupilot": "LAND"}
FORCE_DISARM_MAGIC = 21196          # MAV_CMD_COMPONENT_ARM_DISARM param2: disarm even in the air (kill)

# SET_POSITION_TARGET_LOCAL_NED: use vx, vy, vz and yaw_rate; ignore position, acceleration and yaw.
VELOCITY_TYPE_MASK = (mavlink.POSITION_TARGET_TYPEMASK_X_IGNORE | mavlink.POSITION_TARGET_TYPEMASK_Y_IGNORE
                      | mavlink.POSITION_TARGET_TYPEMASK_Z_IGNORE | mavlink.POSITION_TARGET_TYPEMASK_AX_IGNORE
                      | mavlink.POSITION_TARGET_TYPEMASK_AY_IGNORE | mavlink.POSITION_TARGET_TYPEMASK_AZ_IGNORE
                      | mavlink.POSITION_TARGET_TYPEMASK_YAW_IGNORE)

MAV_RESULTS = {mavlink.MAV_RESULT_ACCEPTED: "accepted", mavlink.MAV_RESULT_TEMPORARILY_REJECTED: "temporarily rejected",
               mavlink.MAV_RESULT_DENIED: "denied", mavlink.MAV_RESULT_UNSUPPORTED: "unsupported",
               mavlink.MAV_RESULT_FAILED: "failed", mavlink.MAV_RESULT_IN_PROGRESS: "in progress"}
TELEMETRY_MESSAGES = ("LOCAL_POSITION_NED", "ATTITUDE_QUATERNION", "HIGHRES_IMU", "SYS_STATUS", "EXTENDED_SYS_STATE")
NO_TELEMETRY_AUTOPILOTS = (mavlink.MAV_AUTOPILOT_INVALID,)


def autopilot_from_heartbeat(autopilot_id: int) -> str | None:
    return {mavlink.MAV_AUTOPILOT_PX4: "px4", mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA: "ardupilot"}.get(autopilot_id)


def mode_name(autopilot: str, custom_mode: int) -> str:
    """HEARTBEAT.custom_mode → a mode name (``MODE(n)`` when unknown)."""
    if autopilot == "px4":
        main, sub = (custom_mode >> 16) & 0xFF, (custom_mode >> 24) & 0xFF
        for name, (m, s) in PX4_MODES.items():
            if m == main and (s == sub or (s == 0 and main != 4)):
                return name
        return f"MODE({main}.{sub})"
    if autopilot == "ardupilot":
        for name, number in ARDUCOPTER_MODES.items():
            if number == custom_mode:
                return name
        return f"MODE({custom_mode})"
    raise ValueError(f"unknown autopilot '{autopilot}' (known: {', '.join(AUTOPILOTS)})")


def set_mode_params(autopilot: str, name: str) -> tuple[float, float, float]:
    """param1..3 of MAV_CMD_DO_SET_MODE for a named mode: base mode 'custom mode enabled', then the custom mode
    (PX4: main mode, sub mode; ArduPilot: the mode number)."""
    custom = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
    if autopilot == "px4":
        if name not in PX4_MODES:
            raise ValueError(f"unknown PX4 mode '{name}'")
        main, sub = PX4_MODES[name]
        return float(custom), float(main), float(sub)
    if autopilot == "ardupilot":
        if name not in ARDUCOPTER_MODES:
            raise ValueError(f"unknown ArduCopter mode '{name}'")
        return float(custom), float(ARDUCOPTER_MODES[name]), 0.0
    raise ValueError(f"unknown autopilot '{autopilot}' (known: {', '.join(AUTOPILOTS)})")


def in_air(landed_state: int | None, height_m: float | None, landed_height_m: float) -> bool | None:
    """EXTENDED_SYS_STATE.landed_state when the vehicle reports it; else height above the arming point; None when
    neither is known."""
    if landed_state in (mavlink.MAV_LANDED_STATE_IN_AIR, mavlink.MAV_LANDED_STATE_TAKEOFF,
                        mavlink.MAV_LANDED_STATE_LANDING):
        return True
    if landed_state == mavlink.MAV_LANDED_STATE_ON_GROUND:
        return False
    if height_m is None:
        return None
    return height_m > landed_height_m


# ----------------------------------------------------------------------------------------------- telemetry
@dataclass(frozen=True)
class Telemetry:
    """The latest values from the vehicle, in MAVLink's frames (NED world, FRD body); None = not received yet."""
    autopilot: str | None = None
    armed: bool = False
    custom_mode: int | None = None
    mode: str = ""
    system_status: int | None = None
    landed_state: int | None = None
    position_ned: np.ndarray | None = None
    velocity_ned: np.ndarray | None = None
    q_ned_frd: np.ndarray | None = None
    rates_frd: np.ndarray | None = None
    specific_force_frd: np.ndarray | None = None
    battery_fraction: float = math.nan
    voltage_v: float = math.nan
    current_a: float = math.nan
    heartbeat_time: float | None = None          # monotonic times of arrival
    message_time: float | None = None
    position_time: float | None = None

    @property
    def yaw_ned(self) -> float | None:
        if self.q_ned_frd is None:
            return None
        return yaw_from_quat(self.q_ned_frd)


@dataclass
class _Counters:
    messages: int = 0
    problems: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class MavlinkVehicle:
    """One MAVLink vehicle. Callbacks run in the receiver thread: keep them short.

    ``target_system`` 0 locks on to the first system whose autopilot sends a HEARTBEAT."""

    def __init__(self, url: str, *, baud: int = 57600, source_system: int = 255, source_component: int = 191,
                 target_system: int = 0, target_component: int = 1,
                 on_position: Callable[[Telemetry], None] | None = None,
                 on_attitude: Callable[[Telemetry], None] | None = None,
                 on_problem: Callable[[str, str], None] = lambda kind, detail: None,
                 on_text: Callable[[int, str], None] = lambda severity, text: None,
                 on_ack: Callable[[int, int], None] = lambda command, result: None):
        self.url = url
        self.target_system = int(target_system)
        self.target_component = int(target_component)
        self.on_position, self.on_attitude = on_position, on_attitude
        self.on_problem, self.on_text, self.on_ack = on_problem, on_text, on_ack
        self.connection = mavutil.mavlink_connection(url, baud=baud, source_system=source_system,
                                                     source_component=source_component, autoreconnect=True)
        self._telemetry = Telemetry()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self.counters = _Counters()
        self._boot = time.monotonic()
        self._running = True
        self._thread = threading.Thread(target=self._receive, name="mavlink-rx", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------------ telemetry
    @property
    def telemetry(self) -> Telemetry:
        with self._lock:
            return self._telemetry

    def _update(self, **changes) -> Telemetry:
        with self._lock:
            self._telemetry = replace(self._telemetry, **changes)
            return self._telemetry

    def _receive(self) -> None:
        while self._running:
            try:
                message = self.connection.recv_match(blocking=True, timeout=0.1)
            except Exception as exc:  # noqa: BLE001 - pymavlink raises on corrupt streams and closed ports
                if self._running:
                    self._problem("link", f"receive failed: {type(exc).__name__}: {exc}")
                    time.sleep(0.1)
                continue
            if message is None:
                continue
            try:
                self._dispatch(message)
            except Exception as exc:  # noqa: BLE001 - a message we cannot interpret must not stop the link
                self._problem("decode", f"{message.get_type()}: {type(exc).__name__}: {exc}")

    def _problem(self, kind: str, detail: str) -> None:
        self.counters.problems += 1
        self.on_problem(kind, detail)

    def _dispatch(self, message) -> None:
        kind = message.get_type()
        if kind == "BAD_DATA":
            reason = getattr(message, "reason", "unparseable")
            self._problem("malformed", f"{len(getattr(message, 'data', b''))} bytes: {reason}")
            return
        if kind.startswith("UNKNOWN_"):
            self._problem("unknown", f"message id {kind[8:]} from system {message.get_srcSystem()} "
                                     f"(not in the dialect)")
            return
        system, component = message.get_srcSystem(), message.get_srcComponent()
        if kind == "HEARTBEAT" and self.target_system == 0 and message.autopilot not in NO_TELEMETRY_AUTOPILOTS \
                and message.type != mavlink.MAV_TYPE_GCS:
            self.target_system = system       # lock on to the first autopilot heard
        if system != self.target_system or component != self.target_component:
            return                            # another system or component (a GCS, a camera): not our vehicle
        now = time.monotonic()
        self.counters.messages += 1
        self.counters.by_type[kind] = self.counters.by_type.get(kind, 0) + 1
        handler = getattr(self, f"_on_{kind.lower()}", None)
        if handler is None:
            self._update(message_time=now)
        else:
            handler(message, now)

    def _on_heartbeat(self, m, now: float) -> None:
        autopilot = autopilot_from_heartbeat(m.autopilot) or self._telemetry.autopilot
        mode = mode_name(autopilot, m.custom_mode) if autopilot else f"MODE({m.custom_mode})"
        self._update(autopilot=autopilot, armed=bool(m.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED),
                     custom_mode=int(m.custom_mode), mode=mode, system_status=int(m.system_status),
                     heartbeat_time=now, message_time=now)

    def _on_local_position_ned(self, m, now: float) -> None:
        values = (m.x, m.y, m.z, m.vx, m.vy, m.vz)
        if not all(math.isfinite(v) for v in values):
            self._problem("malformed", f"LOCAL_POSITION_NED with non-finite values {values}")
            return
        telemetry = self._update(position_ned=np.array(values[:3]), velocity_ned=np.array(values[3:]),
                                 position_time=now, message_time=now)
        if self.on_position is not None:
            self.on_position(telemetry)

    def _on_attitude_quaternion(self, m, now: float) -> None:
        q = np.array([m.q1, m.q2, m.q3, m.q4], float)
        rates = np.array([m.rollspeed, m.pitchspeed, m.yawspeed], float)
        if not (np.isfinite(q).all() and np.isfinite(rates).all()) or np.linalg.norm(q) < 0.5:
            self._problem("malformed", f"ATTITUDE_QUATERNION with an invalid quaternion {q.tolist()}")
            return
        telemetry = self._update(q_ned_frd=q / np.linalg.norm(q), rates_frd=rates, message_time=now)
        if self.on_attitude is not None:
            self.on_attitude(telemetry)

    def _on_attitude(self, m, now: float) -> None:
        if self.counters.by_type.get("ATTITUDE_QUATERNION"):
            self._update(message_time=now)       # the quaternion stream is the better source
            return
        angles = (m.roll, m.pitch, m.yaw, m.rollspeed, m.pitchspeed, m.yawspeed)
        if not all(math.isfinite(v) for v in angles):
            self._problem("malformed", f"ATTITUDE with non-finite values {angles}")
            return
        telemetry = self._update(q_ned_frd=quat_from_euler(*angles[:3]), rates_frd=np.array(angles[3:]),
                                 message_time=now)
        if self.on_attitude is not None:
            self.on_attitude(telemetry)

    def _on_highres_imu(self, m, now: float) -> None:
        force = np.array([m.xacc, m.yacc, m.zacc], float)         # m/s², body FRD
        self._update(specific_force_frd=force if np.isfinite(force).all() else None, message_time=now)

    def _on_scaled_imu(self, m, now: float) -> None:
        if self.counters.by_type.get("HIGHRES_IMU"):
            self._update(message_time=now)        # the high-resolution stream is the better source
            return
        force = np.array([m.xacc, m.yacc, m.zacc], float) * (9.80665 / 1000.0)   # mG, body FRD (ArduPilot)
        self._update(specific_force_frd=force, message_time=now)

    def _on_sys_status(self, m, now: float) -> None:
        # UINT16_MAX / -1 mean "not known" (MAVLink common.xml).
        voltage = m.voltage_battery / 1000.0 if m.voltage_battery != 65535 else math.nan
        current = m.current_battery / 100.0 if m.current_battery >= 0 else math.nan
        fraction = m.battery_remaining / 100.0 if 0 <= m.battery_remaining <= 100 else math.nan
        self._update(battery_fraction=fraction, voltage_v=voltage, current_a=current, message_time=now)

    def _on_battery_status(self, m, now: float) -> None:
        if 0 <= m.battery_remaining <= 100:
            self._update(battery_fraction=m.battery_remaining / 100.0, message_time=now)
        else:
            self._update(message_time=now)

    def _on_extended_sys_state(self, m, now: float) -> None:
        self._update(landed_state=int(m.landed_state), message_time=now)

    def _on_command_ack(self, m, now: float) -> None:
        self._update(message_time=now)
        self.on_ack(int(m.command), int(m.result))

    def _on_statustext(self, m, now: float) -> None:
        self._update(message_time=now)
        text = m.text if isinstance(m.text, str) else bytes(m.text).decode("utf-8", "replace")
        self.on_text(int(m.severity), text.rstrip("\x00"))

    def assume(self, **changes) -> None:
        """Record what an accepted command changed before the next HEARTBEAT (1 Hz) confirms it."""
        self._update(**changes)

    # -------------------------------------------------------------------------------------------- sending
    def _send(self, send: Callable[[], None]) -> None:
        with self._send_lock:          # pymavlink's packer (sequence numbers) is not thread-safe
            try:
                send()
            except OSError as exc:
                self._problem("send", f"sending failed: {exc}")

    def time_boot_ms(self) -> int:
        return int((time.monotonic() - self._boot) * 1000) & 0xFFFFFFFF

    def send_heartbeat(self) -> None:
        self._send(lambda: self.connection.mav.heartbeat_send(
            mavlink.MAV_TYPE_ONBOARD_CONTROLLER, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, mavlink.MAV_STATE_ACTIVE))

    def send_velocity_ned(self, velocity_ned, yaw_rate_ned: float) -> None:
        """Velocity set-point (m/s, north/east/down) and yaw rate (rad/s, clockwise +) in MAV_FRAME_LOCAL_NED."""
        vn, ve, vd = (float(v) for v in velocity_ned)
        self._send(lambda: self.connection.mav.set_position_target_local_ned_send(
            self.time_boot_ms(), self.target_system, self.target_component, mavlink.MAV_FRAME_LOCAL_NED,
            VELOCITY_TYPE_MASK, 0.0, 0.0, 0.0, vn, ve, vd, 0.0, 0.0, 0.0, 0.0, float(yaw_rate_ned)))

    def command_long(self, command: int, *params: float) -> None:
        values = [float(p) for p in params] + [0.0] * (7 - len(params))
        self._send(lambda: self.connection.mav.command_long_send(self.target_system, self.target_component, command,
                                                                 0, *values))

    def set_mode(self, autopilot: str, name: str) -> None:
        self.command_long(mavlink.MAV_CMD_DO_SET_MODE, *set_mode_params(autopilot, name))

    def arm(self) -> None:
        self.command_long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1.0)

    def disarm(self, force: bool = False) -> None:
        self.command_long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0.0, float(FORCE_DISARM_MAGIC) if force else 0.0)

    def land(self) -> None:
        self.command_long(mavlink.MAV_CMD_NAV_LAND, 0, 0, 0, math.nan, math.nan, math.nan, math.nan)

    def takeoff(self, height_m: float) -> None:
        """MAV_CMD_NAV_TAKEOFF; param7 is the altitude (ArduCopter: above home)."""
        self.command_long(mavlink.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, math.nan, math.nan, math.nan, float(height_m))

    def request_message_rate(self, message_name: str, rate_hz: float) -> None:
        message_id = getattr(mavlink, f"MAVLINK_MSG_ID_{message_name}")
        self.command_long(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, message_id, 1e6 / rate_hz)

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2.0)
        self.connection.close()
