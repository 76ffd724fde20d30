"""Conversions between ROS messages and the core's numpy types, shared by every node (no logic of its own)."""
from __future__ import annotations

import numpy as np


def quat_wxyz_from_msg(q) -> np.ndarray:
    return np.array([q.w, q.x, q.y, q.z], dtype=float)


def quat_msg_from_wxyz(q, msg) -> None:
    msg.w, msg.x, msg.y, msg.z = (float(v) for v in q)


def vector_from_msg(v) -> np.ndarray:
    return np.array([v.x, v.y, v.z], dtype=float)


def vector_to_msg(values, msg) -> None:
    msg.x, msg.y, msg.z = (float(v) for v in values)


def rotation_matrix_wxyz(q: np.ndarray) -> np.ndarray:
    """Body→world rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])
