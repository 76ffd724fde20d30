"""A command source for tests: publishes a constant velocity command at 20 Hz until killed.

With ``require_flying:=true`` it speaks only while /flight/state says the vehicle flies (as teleop does), and logs
"velocity sender ready" once its publisher is matched with a subscriber and it has heard the flight state: a test
can start it on the ground, wait for that line, and take off knowing its commands take over the moment the climb
completes (no process start-up or DDS discovery left to race the flight controller's timers)."""
import sys

from geometry_msgs.msg import TwistStamped

from mmchat_ros.msg import FlightState
from mmchat_ros.nodes.common import COMMAND_QOS, STATE_QOS, Param, Params, run_node
from rclpy.node import Node

FLYING_MODES = ("HOVER", "VELOCITY", "POSITION")


class VelocitySender(Node):
    def __init__(self):
        super().__init__("velocity_sender")
        p = Params(self, {"source": Param("teleop", "mux source"), "vx": Param(0.0, "forward m/s"),
                          "vz": Param(0.0, "up m/s"), "yaw_rate": Param(0.0, "rad/s"),
                          "frame": Param("base_link", "command frame"),
                          "require_flying": Param(False, "publish only while /flight/state says the vehicle flies")})
        self.require_flying = bool(p.require_flying)
        self.flight_mode = ""
        self.ready = False
        self.msg = TwistStamped()
        self.msg.header.frame_id = p.frame
        self.msg.twist.linear.x, self.msg.twist.linear.z, self.msg.twist.angular.z = p.vx, p.vz, p.yaw_rate
        self.pub = self.create_publisher(TwistStamped, f"cmd_vel/{p.source}", COMMAND_QOS)
        if self.require_flying:
            self.create_subscription(FlightState, "flight/state", self.on_flight_state, STATE_QOS)
        self.create_timer(0.05, self.tick)
        self.get_logger().info("velocity sender running")

    def on_flight_state(self, msg: FlightState) -> None:
        self.flight_mode = msg.mode

    def tick(self):
        if self.require_flying:
            if not self.ready and self.flight_mode and self.pub.get_subscription_count() > 0:
                self.ready = True
                self.get_logger().info(f"velocity sender ready: {self.pub.topic_name} matched, flight mode "
                                       f"{self.flight_mode}")
            if self.flight_mode not in FLYING_MODES:
                return
        self.msg.header.stamp = self.get_clock().now().to_msg()
        self.pub.publish(self.msg)


def main():
    return run_node(VelocitySender)


if __name__ == "__main__":
    sys.exit(main())
