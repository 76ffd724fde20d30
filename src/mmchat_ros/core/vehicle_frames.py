"""Frame conventions between our graph (REP 103/105) and real vehicles (aerospace NED/FRD), and Tello rc scaling.

Our side (REP 103): world frames are z up: ENU (x east, y north) for a geo-referenced local frame such as PX4's,
or a start-heading frame (x = the vehicle's forward at start, y left, z up) for vehicles without a compass (the
Tello); body frame FLU (x forward, y left, z up); yaw counter-clockwise from world x. Odometry twist is in the
body frame (REP 105). The flight controller's vehicle set-point is in the *heading* frame: level, turned with
the vehicle's yaw (x forward, y left, z up) plus a yaw rate about z up.

Vehicle side (MAVLink common, PX4, ArduPilot, DJI): world NED (x north, y east, z down), body FRD (x forward,
y right, z down); yaw clockwise from north; Euler angles Z-Y-X.

Every conversion here is a pure function of plain floats / numpy arrays (no rclpy), built on core/geometry.py's
rotations, and is unit-tested on its own and against the others (tests/unit/test_vehicle_frames.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mmchat_ros.core.geometry import (heading_to_world, quat_from_euler, quat_normalize, quat_to_rotation_matrix,
                                      rotation_matrix_to_quat, wrap_angle)

# Rotations between the axis conventions (each is its own inverse: a reflection-free swap or two sign flips).
# ENU <- NED: x_enu = y_ned (east), y_enu = x_ned (north), z_enu = -z_ned.
R_ENU_NED = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
# NWU <- NED (a z-up frame whose x stays on the NED x axis, e.g. the Tello's start heading): y and z flip.
R_NWU_NED = np.diag([1.0, -1.0, -1.0])
# FLU <- FRD: the same flip of y and z in the body.
R_FLU_FRD = np.diag([1.0, -1.0, -1.0])

# Which z-up world frame a NED vehicle frame becomes: "enu" (x east: geo-referenced, PX4/ArduPilot local frames)
# or "nwu" (x stays the vehicle's x axis: frames anchored to the start heading, the Tello).
WORLD_FROM_NED = {"enu": R_ENU_NED, "nwu": R_NWU_NED}


def _world_rotation(world: str) -> np.ndarray:
    try:
        return WORLD_FROM_NED[world]
    except KeyError:
        raise ValueError(f"unknown z-up world frame '{world}' (known: {', '.join(WORLD_FROM_NED)})") from None


# ----------------------------------------------------------------------------------------------- vectors
def ned_to_enu(v) -> np.ndarray:
    """A world vector (position, velocity, acceleration) from NED to ENU. Its own inverse."""
    return R_ENU_NED @ np.asarray(v, float)


def enu_to_ned(v) -> np.ndarray:
    return R_ENU_NED @ np.asarray(v, float)


def ned_to_world(v, world: str) -> np.ndarray:
    """A NED world vector in our z-up world frame ``world`` ('enu' or 'nwu'). Its own inverse."""
    return _world_rotation(world) @ np.asarray(v, float)


def world_to_ned(v, world: str) -> np.ndarray:
    return _world_rotation(world) @ np.asarray(v, float)


def frd_to_flu(v) -> np.ndarray:
    """A body vector (velocity, angular velocity, specific force) from FRD to FLU. Its own inverse."""
    return R_FLU_FRD @ np.asarray(v, float)


def flu_to_frd(v) -> np.ndarray:
    return R_FLU_FRD @ np.asarray(v, float)


# ---------------------------------------------------------------------------------------------- attitude
def quat_ned_frd_to_world_flu(q_ned_frd, world: str = "enu") -> np.ndarray:
    """Attitude quaternion (w, x, y, z) rotating FRD body vectors into NED → one rotating FLU into ``world``.

    R_world_flu = R_world_ned · R_ned_frd · R_frd_flu (both outer factors are fixed axis permutations)."""
    rot = _world_rotation(world) @ quat_to_rotation_matrix(quat_normalize(q_ned_frd)) @ R_FLU_FRD
    return rotation_matrix_to_quat(rot)


def quat_world_flu_to_ned_frd(q_world_flu, world: str = "enu") -> np.ndarray:
    """Inverse of quat_ned_frd_to_world_flu."""
    rot = _world_rotation(world) @ quat_to_rotation_matrix(quat_normalize(q_world_flu)) @ R_FLU_FRD
    return rotation_matrix_to_quat(rot)


def euler_ned_frd_to_world_flu(roll_rad: float, pitch_rad: float, yaw_rad: float, world: str = "enu") -> np.ndarray:
    """Z-Y-X Euler angles of an FRD body in NED (aerospace: roll right-wing-down +, pitch nose-up +, yaw clockwise
    from north +) → body→world quaternion of the FLU body in ``world``."""
    return quat_ned_frd_to_world_flu(quat_from_euler(roll_rad, pitch_rad, yaw_rad), world)


def yaw_ned_to_world(yaw_ned_rad: float, world: str = "enu") -> float:
    """Heading clockwise from NED x → heading counter-clockwise from the z-up world's x, wrapped to [-π, π)."""
    if world == "enu":
        return wrap_angle(math.pi / 2.0 - yaw_ned_rad)
    _world_rotation(world)
    return wrap_angle(-yaw_ned_rad)


def yaw_rate_world_to_ned(yaw_rate_rad_s: float) -> float:
    """Yaw rate about z up (counter-clockwise +) → about z down (clockwise +): the same turn, sign flipped."""
    return -float(yaw_rate_rad_s)


# ------------------------------------------------------------------------------- heading-frame set-points
def heading_velocity_to_ned(forward: float, left: float, up: float, yaw_ned_rad: float) -> np.ndarray:
    """The flight controller's heading-frame velocity (x forward, y left, z up, level) → NED world velocity, for
    a vehicle whose heading is yaw_ned_rad (clockwise from north): the same vector in the FRD heading frame,
    turned by the heading about z down."""
    return heading_to_world(flu_to_frd([forward, left, up]), yaw_ned_rad)


# ------------------------------------------------------------------------------------------- Tello rc
class TelloRcLimits(NamedTuple):
    """What stick value 100 means on this Tello: horizontal / vertical speed (m/s) and yaw rate (rad/s).

    The SDK does not document it; calibrate on the vehicle (docs/hardware.md, Tello checklist)."""
    speed_xy_m_s: float
    speed_z_m_s: float
    yaw_rate_rad_s: float


@dataclass(frozen=True)
class TelloRc:
    """The four channels of the Tello SDK ``rc a b c d`` command, each an integer in -100..100:
    a = left/right (+ right), b = forward/backward (+ forward), c = up/down (+ up), d = yaw (+ clockwise)."""
    left_right: int
    forward_back: int
    up_down: int
    yaw: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.left_right, self.forward_back, self.up_down, self.yaw)


RC_ZERO = TelloRc(0, 0, 0, 0)


def _stick(value: float, full_scale: float) -> int:
    if not math.isfinite(value):
        raise ValueError(f"non-finite set-point {value!r}")
    return int(max(-100, min(100, round(100.0 * value / full_scale))))


def tello_rc_from_heading_velocity(forward: float, left: float, up: float, yaw_rate_rad_s: float,
                                   limits: TelloRcLimits) -> TelloRc:
    """Heading-frame velocity (m/s; x forward, y left, z up) and yaw rate (rad/s, counter-clockwise +) → rc sticks,
    scaled by what full stick does and clipped to ±100. The Tello's right is our -left, its clockwise yaw our
    negative yaw rate."""
    for name, value in limits._asdict().items():
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"Tello rc limit {name} must be a finite number > 0, got {value!r}")
    return TelloRc(left_right=_stick(-left, limits.speed_xy_m_s), forward_back=_stick(forward, limits.speed_xy_m_s),
                   up_down=_stick(up, limits.speed_z_m_s), yaw=_stick(-yaw_rate_rad_s, limits.yaw_rate_rad_s))


__all__ = ["R_ENU_NED", "R_NWU_NED", "R_FLU_FRD", "ned_to_enu", "enu_to_ned", "ned_to_world", "world_to_ned",
           "frd_to_flu", "flu_to_frd", "quat_ned_frd_to_world_flu", "quat_world_flu_to_ned_frd",
           "euler_ned_frd_to_world_flu", "yaw_ned_to_world", "yaw_rate_world_to_ned", "heading_velocity_to_ned",
           "TelloRcLimits", "TelloRc", "RC_ZERO", "tello_rc_from_heading_velocity"]
