"""Rotations, in one place: quaternions, rotation matrices, yaw and Euler angles, the heading frame, angle wrapping.

Conventions (REP 103): frames are right-handed; quaternions are (w, x, y, z) numpy arrays and rotate body vectors
into the world frame (``v_world = R(q) @ v_body``); Euler angles are Z-Y-X (yaw, then pitch, then roll); yaw is
the heading of the body x axis, counter-clockwise about world z. The *heading frame* is level and turned with the
vehicle's yaw (x forward, y left, z up). Nothing here depends on which way z points, so the same functions serve
z-down (NED/FRD) frames: vehicle_frames.py builds the conversions between the two on top of them.

Pure numpy and math, no ROS: ROS message ↔ array conversions live in nodes/ros_conversions.py.

The ``*_tuple`` functions do the same on plain floats (any sequences in, tuples out) and the array functions
wrap them: numpy spends about a microsecond on each operation with a 3- or 4-element array, and the 250 Hz
control step (core/flight/control.py) does hundreds of them.
"""
from __future__ import annotations

import math

import numpy as np


# ------------------------------------------------------------------------------------------------ quaternions
def norm(v) -> float:
    """Euclidean length of a short vector: ~7x faster than np.linalg.norm on 3 or 4 elements, which the
    odometry and IMU callbacks call several times per message at 250 Hz."""
    return math.hypot(*np.asarray(v, float).ravel().tolist())


def quat_multiply_tuple(a, b) -> tuple[float, float, float, float]:
    """Hamilton product a ⊗ b: the rotation b, then a."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b: the rotation b, then a."""
    return np.array(quat_multiply_tuple(a, b))


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """The inverse rotation of a unit quaternion."""
    return np.array([q[0], -q[1], -q[2], -q[3]])


def quat_normalize_tuple(q) -> tuple[float, float, float, float]:
    """q scaled to unit length; ValueError for a zero or non-finite quaternion (it names no rotation)."""
    w, x, y, z = q
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    if not math.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"quaternion {[float(v) for v in q]} cannot be normalised")
    return w / norm, x / norm, y / norm, z / norm


def quat_normalize(q) -> np.ndarray:
    """q scaled to unit length; ValueError for a zero or non-finite quaternion (it names no rotation)."""
    return np.array(quat_normalize_tuple(np.asarray(q, float).reshape(4)))


def quat_canonical(q: np.ndarray) -> np.ndarray:
    """The same rotation with w >= 0, i.e. the shortest way round."""
    return -q if q[0] < 0.0 else q


def quat_between_tuple(u, v) -> tuple[float, float, float, float] | None:
    """Shortest rotation taking unit vector u onto unit vector v; None when they are (nearly) opposite."""
    dot = u[0] * v[0] + u[1] * v[1] + u[2] * v[2]
    if dot < -1.0 + 1e-6:
        return None
    ax, ay, az = cross3_tuple(u, v)
    w = 1.0 + dot
    norm = math.sqrt(w * w + ax * ax + ay * ay + az * az)
    return w / norm, ax / norm, ay / norm, az / norm


def quat_between(u: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    """Shortest rotation taking unit vector u onto unit vector v; None when they are (nearly) opposite."""
    q = quat_between_tuple(u, v)
    return None if q is None else np.array(q)


def cross3_tuple(a, b) -> tuple[float, float, float]:
    """a × b for 3-vectors."""
    return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]


def cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a × b for 3-vectors (np.cross is an order of magnitude slower on tiny arrays)."""
    return np.array(cross3_tuple(a, b))


# ------------------------------------------------------------------------------------------- rotation matrices
def quat_to_rotation_rows(q) -> tuple[tuple[float, float, float], ...]:
    """The rows of quat_to_rotation_matrix(q), as tuples."""
    w, x, y, z = q
    return ((1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
            (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
            (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)))


def quat_to_rotation_matrix(q: np.ndarray) -> np.ndarray:
    """3×3 matrix R with v_world = R @ v_body for a unit body→world quaternion."""
    return np.array(quat_to_rotation_rows(q))


def rotation_rows_to_quat_tuple(rot) -> tuple[float, float, float, float]:
    """Inverse of quat_to_rotation_rows, with w >= 0 (Shepperd's method, numerically safe for every rotation)."""
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = rot
    trace = m00 + m11 + m22
    if trace > 0.0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = (0.25 * s, (m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s)
    elif m00 > m11 and m00 > m22:
        s = 2.0 * math.sqrt(1.0 + m00 - m11 - m22)
        q = ((m21 - m12) / s, 0.25 * s, (m01 + m10) / s, (m02 + m20) / s)
    elif m11 > m22:
        s = 2.0 * math.sqrt(1.0 + m11 - m00 - m22)
        q = ((m02 - m20) / s, (m01 + m10) / s, 0.25 * s, (m12 + m21) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + m22 - m00 - m11)
        q = ((m10 - m01) / s, (m02 + m20) / s, (m12 + m21) / s, 0.25 * s)
    w, x, y, z = quat_normalize_tuple(q)
    return (-w, -x, -y, -z) if w < 0.0 else (w, x, y, z)


def rotation_matrix_to_quat(rot: np.ndarray) -> np.ndarray:
    """Inverse of quat_to_rotation_matrix, with w >= 0 (Shepperd's method, numerically safe for every rotation)."""
    return np.array(rotation_rows_to_quat_tuple(rot))


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
