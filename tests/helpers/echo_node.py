"""A small real node for harness tests: echoes Gesture messages back and serves SubmitCommand."""
from __future__ import annotations

import sys

from mmchat_ros.nodes.common import COMMAND_QOS, Param, Params, run_node
from rclpy.node import Node

from mmchat_ros.msg import Gesture
from mmchat_ros.srv import SubmitCommand


class EchoNode(Node):
    def __init__(self):
        super().__init__("echo")
        self.params = Params(self, {"prefix": Param("echo:", "text put before echoed names")})
        self.pub = self.create_publisher(Gesture, "gesture_out", COMMAND_QOS)
        self.create_subscription(Gesture, "gesture_in", self.on_gesture, COMMAND_QOS)
        self.create_service(SubmitCommand, "submit_command", self.on_submit)
        self.get_logger().info("echo node ready")

    def on_gesture(self, msg: Gesture):
        msg.name = self.params.prefix + msg.name
        self.pub.publish(msg)

    def on_submit(self, request, response):
        response.accepted = bool(request.text.strip())
        response.reply = f"{self.params.prefix}{request.text.upper()}"
        response.plan_id = f"plan-{len(request.text)}"
        return response


def main():
    return run_node(EchoNode)


if __name__ == "__main__":
    sys.exit(main())
