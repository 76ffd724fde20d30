"""Thin rclpy nodes: parameters in, core/backend calls, topics/services out."""
