"""Embedded quadrotor simulator backend (MuJoCo physics + headless rendering). Never imports rclpy."""
from mmchat_ros.backends.sim.battery import BatteryModel, BatteryState
from mmchat_ros.backends.sim.headless_gl import GLUnavailableError, gl_backend
from mmchat_ros.backends.sim.quadrotor import CameraIntrinsics, QuadrotorSim, QuadrotorState
from mmchat_ros.backends.sim.world import (BoxSpec, PathSpec, TargetSpec, WorldSpec, WorldSpecError,
                                           default_world_file, load_world, world_from_dict)

__all__ = [
    "BatteryModel", "BatteryState", "CameraIntrinsics", "GLUnavailableError", "QuadrotorSim", "QuadrotorState",
    "gl_backend", "BoxSpec", "PathSpec", "TargetSpec", "WorldSpec", "WorldSpecError", "default_world_file",
    "load_world", "world_from_dict",
]
