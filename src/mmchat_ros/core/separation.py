"""Minimum separation between vehicles: is a plan's path clear of every other vehicle?

Paths are polylines in the shared world frame (each vehicle's odom frame, the simulators started at their
start_position): the vehicle's position now, then each point it will fly to in order. Another vehicle is its
position, or its own plan's path when it flies one; the check takes that whole path as occupied (it does not know when
each vehicle will be where), so it may refuse two plans that would pass the same point at different times, never
the other way round. Vehicles already closer than the minimum (two parked side by side) may fly any plan that brings
them no closer than they are. ``plan_path`` turns a plan's steps into that polyline the way the flight controller
flies them (take-off straight up, moves in straight lines); a FOLLOW step ends the path where following begins (where
it leads is not known when the plan is checked).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mmchat_ros.core.flight.plan import PlanConfig, PlanVehicle
from mmchat_ros.core.geometry import heading_to_world
from mmchat_ros.core.plan_vocabulary import ActionType, PlanStep

Point = tuple[float, float, float]

_TOLERANCE_M = 1e-3   # "no closer than now", up to rounding


def separation_problem(vehicle: str, path: Sequence[Point], others: Mapping[str, Sequence[Point]],
                       min_distance_m: float) -> str | None:
    """Why ``vehicle`` flying ``path`` (its position now first) would come closer than ``min_distance_m`` to one
    of ``others`` (name → its position now, then its planned points), or None when the path keeps clear."""
    if not path:
        raise ValueError("a path starts at the vehicle's position now")
    for other, other_path in sorted(others.items()):
        if not other_path:
            raise ValueError(f"no position for '{other}'")
        closest = polyline_distance(path, other_path)
        now = math.dist(path[0], other_path[0])
        if closest < min(min_distance_m, now - _TOLERANCE_M):
            return (f"{vehicle}'s plan would come within {closest:.1f} m of {other} (minimum separation "
                    f"{min_distance_m:g} m)")
    return None


def plan_path(steps: Sequence[PlanStep], vehicle: PlanVehicle, home: np.ndarray | None,
              takeoff_height_m: float = PlanConfig.takeoff_height_m) -> list[Point]:
    """The vehicle's position now, then each point ``steps`` fly it to; ``home``: its take-off point (None when
    unknown: a vehicle on the ground takes off from where it stands)."""
    position = np.asarray(vehicle.position, float).copy()
    yaw = float(vehicle.yaw_rad)
    if home is None or vehicle.on_ground:
        home = position.copy()
    path = [_point(position)]
    for step in steps:
        kind = ActionType(int(step.type))
        if kind is ActionType.FOLLOW:
            break
        if kind is ActionType.TAKEOFF:
            position = np.array([position[0], position[1], home[2] + (step.z if step.z > 0.0 else takeoff_height_m)])
        elif kind is ActionType.LAND:
            position = np.array([position[0], position[1], home[2]])
        elif kind is ActionType.MOVE_BY:
            position = position + heading_to_world((step.x, step.y, step.z), yaw)
        elif kind is ActionType.GOTO:
            position = np.array([step.x, step.y, step.z], float)
        elif kind is ActionType.RETURN_HOME:
            position = np.array([home[0], home[1], position[2]])
        elif kind is ActionType.ROTATE:
            yaw += math.radians(step.yaw_deg)
        if _point(position) != path[-1]:
            path.append(_point(position))
    return path


def _point(position: np.ndarray) -> Point:
    return (float(position[0]), float(position[1]), float(position[2]))


def polyline_distance(a: Sequence[Point], b: Sequence[Point]) -> float:
    """The smallest distance between two polylines (a single point is a polyline too)."""
    return min(segment_distance(p, q, r, s) for p, q in _segments(a) for r, s in _segments(b))


def _segments(points: Sequence[Point]) -> list[tuple[Point, Point]]:
    return list(zip(points, points[1:])) or [(points[0], points[0])]


def segment_distance(p1: Point, q1: Point, p2: Point, q2: Point) -> float:
    """The smallest distance between segments p1-q1 and p2-q2 (either may be a point): the closest points of the
    two lines, each clamped to its segment (Ericson, Real-Time Collision Detection, 5.1.9)."""
    d1, d2, r = _sub(q1, p1), _sub(q2, p2), _sub(p1, p2)
    a, e, f = _dot(d1, d1), _dot(d2, d2), _dot(d2, r)
    if a == 0.0 and e == 0.0:
        return math.dist(p1, p2)
    if a == 0.0:
        s, t = 0.0, _clamp(f / e)
    else:
        c = _dot(d1, r)
        if e == 0.0:
            s, t = _clamp(-c / a), 0.0
        else:
            b = _dot(d1, d2)
            denominator = a * e - b * b
            s = _clamp((b * f - c * e) / denominator) if denominator > 0.0 else 0.0   # parallel: any s will do
            t = (b * s + f) / e
            if t < 0.0:
                s, t = _clamp(-c / a), 0.0
            elif t > 1.0:
                s, t = _clamp((b - c) / a), 1.0
    closest1 = tuple(p + s * d for p, d in zip(p1, d1))
    closest2 = tuple(p + t * d for p, d in zip(p2, d2))
    return math.dist(closest1, closest2)


def _sub(u: Point, v: Point) -> Point:
    return (u[0] - v[0], u[1] - v[1], u[2] - v[2])


def _dot(u: Point, v: Point) -> float:
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))
