"""A command source for tests: publishes a constant velocity command at 20 Hz until killed."""
import sys

from geometry_msgs.msg import TwistStamped

from mmchat_ros.nodes.common import COMMAND_QOS, Param, Params, run_node
from rclpy.node import Node


class VelocitySender(Node):
    def __init__(self):
        super().__init__("velocity_sender")
        p = Params(self, {"source": Param("teleop", "mux source"), "vx": Param(0.0, "forward m/s"),
                          "vz": Param(0.0, "up m/s"), "yaw_rate": Param(0.0, "rad/s"),
                          "frame": Param("base_link", "command frame")})
        self.msg = TwistStamped()
        self.msg.header.frame_id = p.frame
        self.msg.twist.linear.x, self.msg.twist.linear.z, self.msg.twist.angular.z = p.vx, p.vz, p.yaw_rate
        self.pub = self.create_publisher(TwistStamped, f"cmd_vel/{p.source}", COMMAND_QOS)
        self.create_timer(0.05, self.tick)
        self.get_logger().info("velocity sender running")

    def tick(self):
        self.msg.header.stamp = self.get_clock().now().to_msg()
        self.pub.publish(self.msg)


def main():
    return run_node(VelocitySender)


if __name__ == "__main__":
    sys.exit(main())
