"""Rotations, in one place: quaternions, rotation matrices, yaw and Euler angles, the heading frame, angle wrapping.

Conventions (REP 103): frames are right-handed; quaternions are (w, x, y, z) numpy arrays and rotate body vectors
into the world frame (``v_world = R(q) @ v_body``); Euler angles are Z-Y-X (yaw, then pitch, then roll); yaw is
the heading of the body x axis, counter-clockwise about world z. The *heading frame* is level and turned with the
vehicle's yaw (x forward, y left, z up). Nothing here depends on which way z points, so the same functions serve
z-down (NED/FRD) frames: vehicle_frames.py builds the conversions between the two on top of them.

Pure numpy and math, no ROS: ROS message ↔ array conversions live in nodes/ros_conversions.py.
"""
from __future__ import annotations

import math

import numpy as np


# ------------------------------------------------------------------------------------------------ quaternions
def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b: the rotation b, then a."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ])


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """The inverse rotation of a unit quaternion."""
    return np.array([q[0], -q[1], -q[2], -q[3]])


def quat_normalize(q) -> np.ndarray:
    """q scaled to unit length; ValueError for a zero or non-finite quaternion (it names no rotation)."""
    q = np.asarray(q, float).reshape(4)
    norm = math.sqrt(float(q[0] ** 2 + q[1] ** 2 + q[2] ** 2 + q[3] ** 2))
    if not math.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"quaternion {q.tolist()} cannot be normalised")
    return q / norm


def quat_canonical(q: np.ndarray) -> np.ndarray:
    """The same rotation with w >= 0, i.e. the shortest way round."""
    return -q if q[0] < 0.0 else q


def quat_between(u: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    """Shortest rotation taking unit vector u onto unit vector v; None when they are (nearly) opposite."""
    dot = float(u @ v)
    if dot < -1.0 + 1e-6:
        return None
    axis = cross3(u, v)
    q = np.array([1.0 + dot, axis[0], axis[1], axis[2]])
    return q / math.sqrt(float(q @ q))


def cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a × b for 3-vectors (np.cross is an order of magnitude slower on tiny arrays)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


# ------------------------------------------------------------------------------------------- rotation matrices
def quat_to_rotation_matrix(q: np.ndarray) -> np.ndarray:
    """3×3 matrix R with v_world = R @ v_body for a unit body→world quaternion."""
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def rotation_matrix_to_quat(rot: np.ndarray) -> np.ndarray:
    """Inverse of quat_to_rotation_matrix, with w >= 0 (Shepperd's method, numerically safe for every rotation)."""
    m = rot
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0.0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    return quat_canonical(quat_normalize(np.array(q)))


def body_to_world(q, vector_body) -> np.ndarray:
    """A body-frame vector (e.g. an odometry twist, REP 105) in the world frame; q need not be unit length."""
    return quat_to_rotation_matrix(quat_normalize(q)) @ np.asarray(vector_body, float)


def world_to_body(q, vector_world) -> np.ndarray:
    """A world-frame vector in the body frame (inverse of body_to_world)."""
    return quat_to_rotation_matrix(quat_normalize(q)).T @ np.asarray(vector_world, float)


# ------------------------------------------------------------------------------------------- angles
def quat_from_yaw(yaw_rad: float) -> np.ndarray:
    """A level attitude with heading yaw_rad."""
    return np.array([math.cos(yaw_rad / 2.0), 0.0, 0.0, math.sin(yaw_rad / 2.0)])


def quat_from_euler(roll_rad: float, pitch_rad: float, yaw_rad: float) -> np.ndarray:
    """Z-Y-X (yaw, then pitch, then roll) Euler angles → body→world quaternion."""
    cr, sr = math.cos(roll_rad / 2), math.sin(roll_rad / 2)
    cp, sp = math.cos(pitch_rad / 2), math.sin(pitch_rad / 2)
    cy, sy = math.cos(yaw_rad / 2), math.sin(yaw_rad / 2)
    return np.array([
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    ])


def euler_from_quat(q) -> tuple[float, float, float]:
    """Inverse of quat_from_euler: (roll, pitch, yaw) in radians, pitch within [-π/2, π/2]."""
    w, x, y, z = q
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    return roll, pitch, yaw_from_quat(q)


def yaw_from_quat(q) -> float:
    """Heading of the body x axis in the world x-y plane (Z-Y-X yaw), radians in (-π, π]. Any sequence (w, x, y, z)."""
    w, x, y, z = q
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def tilt_from_quat(q: np.ndarray) -> float:
    """Angle between body z and world z, radians."""
    w, x, y, z = q
    cos_tilt = 1.0 - 2.0 * (x * x + y * y)
    return math.acos(min(1.0, max(-1.0, cos_tilt)))


def wrap_angle(angle: float, full_turn: float = 2.0 * math.pi) -> float:
    """Angle wrapped to [-half a turn, half a turn): radians by default, degrees with full_turn=360."""
    half_turn = full_turn / 2.0
    return (angle + half_turn) % full_turn - half_turn


# ------------------------------------------------------------------------------------------- heading frame
def heading_to_world(vector, yaw_rad: float) -> np.ndarray:
    """A heading-frame vector (x forward, y left[, z up]: level, turned by yaw_rad) in the world frame: x and y
    turned by yaw_rad about z, z kept. Takes 2- or 3-vectors."""
    v = np.array(vector, dtype=float)
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    v[0], v[1] = c * v[0] - s * v[1], s * v[0] + c * v[1]
    return v


def world_to_heading(vector, yaw_rad: float) -> np.ndarray:
    """Inverse of heading_to_world."""
    return heading_to_world(vector, -yaw_rad)
