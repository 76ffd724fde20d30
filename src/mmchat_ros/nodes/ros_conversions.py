"""Conversions between ROS messages and the core's types, shared by every node (no logic of its own: the
rotation maths is core/geometry.py's)."""
from __future__ import annotations

import numpy as np

from mmchat_ros.core.detections import TrackedObject


def quat_wxyz_from_msg(q) -> np.ndarray:
    return np.array([q.w, q.x, q.y, q.z], dtype=float)


def quat_msg_from_wxyz(q, msg) -> None:
    msg.w, msg.x, msg.y, msg.z = (float(v) for v in q)


def vector_from_msg(v) -> np.ndarray:
    return np.array([v.x, v.y, v.z], dtype=float)


def vector_to_msg(values, msg) -> None:
    msg.x, msg.y, msg.z = (float(v) for v in values)


def tracked_object_from_msg(detection) -> TrackedObject:
    """One mmchat_ros/msg/Detection, in pixels as the tracker publishes it."""
    return TrackedObject(detection.track_id, detection.class_name, detection.center_x, detection.center_y,
                         detection.width, detection.height, detection.score)
