"""A ground node's names for one of several vehicles: the vehicle's topics, services and actions lie under its
namespace (/drone1/flight/state, /drone1/land, /drone1/execute_plan); '' is the one vehicle of the root namespace.
Names stay relative, so the ground node's own namespace and remappings still apply."""
from __future__ import annotations

from dataclasses import replace

from mmchat_ros.core.topics import Topic


def in_vehicle(vehicle: str, name: str) -> str:
    """A relative ROS name inside a vehicle's namespace ('' = the root)."""
    return f"{vehicle}/{name}" if vehicle else name


def for_vehicle(vehicle: str, topic: Topic) -> Topic:
    """A topic of the graph's table, in a vehicle's namespace."""
    return replace(topic, name="/" + in_vehicle(vehicle, topic.relative_name))
