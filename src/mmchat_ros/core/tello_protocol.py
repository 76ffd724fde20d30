"""The Tello SDK text protocol (SDK 2.0, UDP): command formatting, responses, state strings, and the state → odometry
estimate. Pure: no sockets, no rclpy (the socket side is backends/tello.py).

Protocol summary (Tello SDK 2.0 User Guide, "Architecture" and "Tello State"):
- commands are ASCII text datagrams to the Tello's UDP port 8889, answered from that port to the sender;
  ``command`` enters SDK mode; control commands answer ``ok`` or ``error``/an informational text; ``rc a b c d``
  (each -100..100) is not answered and its stick values persist until the next ``rc``;
- in SDK mode the Tello sends a state string to the client's UDP port 8890, about 10 times a second:
  ``pitch:%d;roll:%d;yaw:%d;vgx:%d;vgy:%d;vgz:%d;templ:%d;temph:%d;tof:%d;h:%d;bat:%d;baro:%.2f;time:%d;
  agx:%.2f;agy:%.2f;agz:%.2f;\\r\\n`` (a Tello EDU with mission pads prefixes ``mid:%d;x:%d;y:%d;z:%d;mpry:%d,%d,%d;``);
- after ``streamon`` the H.264 video arrives on the client's UDP port 11111;
- with no command for 15 s in the air the Tello lands by itself (SDK 3.0 User Guide, "Safety Function").

State field units (SDK 2.0 "Tello State" unless noted): pitch, roll, yaw in degrees; templ/temph in °C; tof in cm
(the ``tof?`` command documents 30..1000 cm; the sensor reads about 10 on the ground and a large value such as
6553 out of range); h in cm, relative to the take-off point; bat in percent; baro in m (``baro?``: "get barometer
value (m)"); time in s (motor-on time); agx/agy/agz in 0.001 g (``acceleration?``: "(0.001g)"). The SDK gives
**no unit for vgx/vgy/vgz**; users measure decimetres per second (a 50 cm/s move reads 5..7: DJITelloPy issue #96),
so the driver's ``velocity_unit_m_s`` defaults to 0.1 and is a parameter. Axis conventions are DJI's aerospace
ones: attitude is Z-Y-X Euler of an FRD body in an NED-like world whose x is the yaw-0 heading (the Tello has no
compass), vgx/vgy along that world's x/y, vgz positive down; agx/agy/agz along body FRD (agz ≈ -1000 at rest).
The axis conventions are among what docs/hardware.md lists as "Not tested on hardware".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mmchat_ros.core.geometry import heading_to_world, wrap_angle
from mmchat_ros.core.vehicle_frames import (TelloRc, euler_ned_frd_to_world_flu, frd_to_flu, ned_to_world)

TELLO_HOST = "192.168.10.1"
COMMAND_PORT = 8889
STATE_PORT = 8890
VIDEO_PORT = 11111
AUTO_LAND_SILENCE_S = 15.0           # SDK 3.0 "Safety Function": no command for 15 s in the air → lands
STANDARD_GRAVITY = 9.80665
MILLI_G = 0.001 * STANDARD_GRAVITY   # agx/agy/agz unit, m/s²

INT_FIELDS = ("mid", "x", "y", "z", "pitch", "roll", "yaw", "vgx", "vgy", "vgz", "templ", "temph", "tof", "h", "bat",
              "time")
FLOAT_FIELDS = ("baro", "agx", "agy", "agz")
REQUIRED_FIELDS = ("pitch", "roll", "yaw", "vgx", "vgy", "vgz", "tof", "h", "bat")
MAX_DATAGRAM = 1518

# Commands this project sends or its emulator answers, with their argument counts.
COMMAND_ARITY = {"command": 0, "takeoff": 0, "land": 0, "emergency": 0, "streamon": 0, "streamoff": 0, "rc": 4,
                 "battery?": 0, "sdk?": 0, "time?": 0}


class TelloProtocolError(ValueError):
    """A datagram that is not valid Tello SDK text: the reason is in the message."""


# ---------------------------------------------------------------------------------------------- commands
@dataclass(frozen=True)
class TelloCommand:
    name: str
    args: tuple[int, ...] = ()

    def text(self) -> str:
        return " ".join([self.name, *(str(a) for a in self.args)])


def format_command(name: str, *args: int) -> bytes:
    """A command datagram; refuses names and argument counts this module does not know."""
    command = TelloCommand(name, tuple(int(a) for a in args))
    _check_command(command)
    return command.text().encode("ascii")


def format_rc(rc: TelloRc) -> bytes:
    return format_command("rc", *rc.as_tuple())


def parse_command(data: bytes) -> TelloCommand:
    """A command datagram as received by a Tello (used by the emulator). Raises TelloProtocolError."""
    text = _decode(data, "command").strip()
    if not text:
        raise TelloProtocolError("empty command")
    name, *raw_args = text.split()
    try:
        args = tuple(int(a) for a in raw_args)
    except ValueError:
        raise TelloProtocolError(f"non-integer argument in {text!r}") from None
    command = TelloCommand(name, args)
    _check_command(command)
    return command


def _check_command(command: TelloCommand) -> None:
    if command.name not in COMMAND_ARITY:
        raise TelloProtocolError(f"unknown command: {command.name}")
    if len(command.args) != COMMAND_ARITY[command.name]:
        raise TelloProtocolError(f"'{command.name}' takes {COMMAND_ARITY[command.name]} arguments, "
                                 f"got {len(command.args)}")
    if command.name == "rc" and any(not -100 <= a <= 100 for a in command.args):
        raise TelloProtocolError(f"rc values must be -100..100, got {command.args}")


# --------------------------------------------------------------------------------------------- responses
@dataclass(frozen=True)
class TelloResponse:
    text: str

    @property
    def ok(self) -> bool:
        return self.text == "ok"


def parse_response(data: bytes) -> TelloResponse:
    """A reply on the command port: 'ok', 'error ...', or a value for a read command. Raises TelloProtocolError."""
    text = _decode(data, "response").strip()
    if not text:
        raise TelloProtocolError("empty response")
    return TelloResponse(text)


# ------------------------------------------------------------------------------------------------ state
@dataclass(frozen=True)
class TelloState:
    """One state string, in the SDK's own units (see the module docstring)."""
    pitch_deg: int
    roll_deg: int
    yaw_deg: int
    vgx: int
    vgy: int
    vgz: int
    tof_cm: int
    h_cm: int
    battery_percent: int
    templ_c: int | None = None
    temph_c: int | None = None
    baro_m: float | None = None
    motor_time_s: int | None = None
    agx_mg: float | None = None
    agy_mg: float | None = None
    agz_mg: float | None = None
    extras: dict[str, str] = field(default_factory=dict)   # mission-pad fields and anything newer firmware adds


_STATE_ATTRIBUTES = {"pitch": "pitch_deg", "roll": "roll_deg", "yaw": "yaw_deg", "vgx": "vgx", "vgy": "vgy",
                     "vgz": "vgz", "tof": "tof_cm", "h": "h_cm", "bat": "battery_percent", "templ": "templ_c",
                     "temph": "temph_c", "baro": "baro_m", "time": "motor_time_s", "agx": "agx_mg", "agy": "agy_mg",
                     "agz": "agz_mg"}


def parse_state(data: bytes) -> TelloState:
    """A state datagram → TelloState. Raises TelloProtocolError naming what is wrong."""
    text = _decode(data, "state").strip()
    values: dict[str, object] = {}
    extras: dict[str, str] = {}
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition(":")
        if not sep or not key:
            raise TelloProtocolError(f"state field {item!r} is not 'key:value'")
        if key in values or key in extras:
            raise TelloProtocolError(f"state field '{key}' appears twice")
        if key in INT_FIELDS or key in FLOAT_FIELDS:
            try:
                number = int(raw) if key in INT_FIELDS else float(raw)
            except ValueError:
                raise TelloProtocolError(f"state field '{key}' has a non-numeric value {raw!r}") from None
            if not math.isfinite(number):
                raise TelloProtocolError(f"state field '{key}' is not finite: {raw!r}")
            values[key] = number
        else:
            extras[key] = raw
    missing = [k for k in REQUIRED_FIELDS if k not in values]
    if missing:
        raise TelloProtocolError(f"state string lacks {', '.join(missing)}")
    for key in ("mid", "x", "y", "z"):
        if key in values:
            extras[key] = str(values.pop(key))
    return TelloState(**{_STATE_ATTRIBUTES[k]: v for k, v in values.items()}, extras=extras)


def format_state(state: TelloState) -> bytes:
    """The state string a Tello sends (SDK 2.0 field order), e.g. for an emulator."""
    parts = [f"{k}:{v}" for k, v in state.extras.items()]
    parts += [f"pitch:{state.pitch_deg}", f"roll:{state.roll_deg}", f"yaw:{state.yaw_deg}", f"vgx:{state.vgx}",
              f"vgy:{state.vgy}", f"vgz:{state.vgz}", f"templ:{_or(state.templ_c, 0)}",
              f"temph:{_or(state.temph_c, 0)}", f"tof:{state.tof_cm}", f"h:{state.h_cm}",
              f"bat:{state.battery_percent}", f"baro:{_or(state.baro_m, 0.0):.2f}",
              f"time:{_or(state.motor_time_s, 0)}", f"agx:{_or(state.agx_mg, 0.0):.2f}",
              f"agy:{_or(state.agy_mg, 0.0):.2f}", f"agz:{_or(state.agz_mg, 0.0):.2f}"]
    return (";".join(parts) + ";\r\n").encode("ascii")


def _or(value, default):
    return default if value is None else value


def _decode(data: bytes, what: str) -> str:
    if len(data) > MAX_DATAGRAM:
        raise TelloProtocolError(f"{what} datagram of {len(data)} bytes is too long")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise TelloProtocolError(f"{what} datagram is not ASCII text ({len(data)} bytes)") from None
    if any(ord(c) < 32 and c not in "\r\n\t" for c in text):
        raise TelloProtocolError(f"{what} datagram has control characters")
    return text


# ------------------------------------------------------------------------------------------- estimation
@dataclass(frozen=True)
class TelloEstimate:
    """Odometry in our frames: the odom frame is the Tello's yaw-0 heading turned z-up (x forward at yaw 0, y left,
    z up, ground at 0); body FLU."""
    position: np.ndarray               # m
    velocity_world: np.ndarray         # m/s
    quaternion_wxyz: np.ndarray        # FLU body → odom
    specific_force_body: np.ndarray | None   # FLU, m/s² (+g on z at rest); None when the state had no agx..agz
    battery_fraction: float            # 0..1
    height_m: float                    # above the take-off surface


HEIGHT_SOURCES = ("tof", "h")
VELOCITY_FRAMES = ("world", "heading")


class TelloEstimator:
    """Tello state strings → position, velocity, attitude. x/y integrate the reported velocity (the Tello reports
    no position); z comes from the downward time-of-flight sensor minus its reading on the ground (1 cm steps), or
    from ``h`` (relative height, coarser) when the ToF reading is out of its range."""

    def __init__(self, velocity_unit_m_s: float = 0.1, velocity_frame: str = "world", height_source: str = "tof",
                 tof_max_valid_cm: int = 1000, max_gap_s: float = 0.5):
        if not (math.isfinite(velocity_unit_m_s) and velocity_unit_m_s > 0):
            raise ValueError(f"velocity_unit_m_s must be > 0, got {velocity_unit_m_s!r}")
        if velocity_frame not in VELOCITY_FRAMES:
            raise ValueError(f"velocity_frame '{velocity_frame}' is not one of {VELOCITY_FRAMES}")
        if height_source not in HEIGHT_SOURCES:
            raise ValueError(f"height_source '{height_source}' is not one of {HEIGHT_SOURCES}")
        self.velocity_unit_m_s = float(velocity_unit_m_s)
        self.velocity_frame = velocity_frame
        self.height_source = height_source
        self.tof_max_valid_cm = int(tof_max_valid_cm)
        self.max_gap_s = float(max_gap_s)
        self.tof_ground_cm: float | None = None
        self._xy = np.zeros(2)
        self._last: tuple[float, np.ndarray] | None = None    # (time, world velocity) of the previous update

    def reset_position(self) -> None:
        self._xy = np.zeros(2)

    def update(self, state: TelloState, now: float) -> TelloEstimate:
        yaw_ned = math.radians(state.yaw_deg)
        v_ned = np.array([state.vgx, state.vgy, state.vgz], float) * self.velocity_unit_m_s
        if self.velocity_frame == "heading":     # along the body's heading instead of the yaw-0 axes
            v_ned = heading_to_world(v_ned, yaw_ned)
        velocity = ned_to_world(v_ned, "nwu")
        if self._last is not None:
            dt = now - self._last[0]
            if 0.0 < dt <= self.max_gap_s:       # after a gap (link loss) nothing is known about the way flown
                self._xy += 0.5 * (self._last[1][:2] + velocity[:2]) * dt
        self._last = (now, velocity)
        height = self._height_m(state)
        quaternion = euler_ned_frd_to_world_flu(math.radians(state.roll_deg), math.radians(state.pitch_deg),
                                                wrap_angle(yaw_ned), "nwu")
        force = None
        if None not in (state.agx_mg, state.agy_mg, state.agz_mg):
            force = frd_to_flu(np.array([state.agx_mg, state.agy_mg, state.agz_mg], float) * MILLI_G)
        return TelloEstimate(position=np.array([self._xy[0], self._xy[1], height]), velocity_world=velocity,
                             quaternion_wxyz=quaternion, specific_force_body=force,
                             battery_fraction=min(1.0, max(0.0, state.battery_percent / 100.0)), height_m=height)

    def _height_m(self, state: TelloState) -> float:
        tof_valid = 0 < state.tof_cm < self.tof_max_valid_cm
        if tof_valid and state.h_cm <= 0 and state.vgz == 0:
            self.tof_ground_cm = float(state.tof_cm)     # resting on the take-off surface: the sensor's zero
        if self.height_source == "tof" and tof_valid and self.tof_ground_cm is not None:
            return max(0.0, (state.tof_cm - self.tof_ground_cm) / 100.0)
        return max(0.0, state.h_cm / 100.0)
