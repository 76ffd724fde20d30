"""Thin rclpy nodes: parameters in, core/backend calls, topics/services out.

Importing any node module applies the loopback DDS environment first (core/rosenv.py): DDS reads those variables
when rclpy initialises, so they are set here, before a node module imports rclpy."""
from mmchat_ros.core.rosenv import apply_to_current_process

apply_to_current_process()
