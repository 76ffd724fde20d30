"""The flight controller driving a vehicle that has its own inner loops (Gazebo, PX4, Tello): it sends heading-
frame velocity set-points on /cmd_vel/vehicle and motor enable on /vehicle/enable. The test plays the vehicle:
it publishes the odometry such a vehicle would report."""
import math
import threading
import time

import pytest
from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import Odometry
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from mmchat_ros.msg import FlightState
from mmchat_ros.nodes.common import STATE_QOS
from tests.helpers.flight import ros_args
from tests.helpers.processes import python_cmd


class ScriptedVehicle:
    """Odometry at 100 Hz from a pose the test sets (heading 90 degrees: body x points along world y)."""

    def __init__(self, ros, yaw=math.pi / 2):
        self.pub = ros.node.create_publisher(Odometry, "/odom", 10)
        self.z = 0.0
        self.yaw = yaw
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        msg = Odometry()
        msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
        while self.running:
            msg.pose.pose.position.z = self.z
            msg.pose.pose.orientation.w = math.cos(self.yaw / 2)
            msg.pose.pose.orientation.z = math.sin(self.yaw / 2)
            self.pub.publish(msg)
            time.sleep(0.01)


@pytest.mark.slow
def test_velocity_interface_sends_heading_frame_setpoints_and_enable(spawn, ros):
    fc = spawn(python_cmd("mmchat_ros.nodes.flight_controller", *ros_args(
        {"vehicle_interface": "velocity", "require_authorisation": False})), name="flight_controller")
    fc.wait_for_line("flight controller ready", timeout=30)
    setpoints = ros.collect(Twist, "/cmd_vel/vehicle", "sensor")
    enables = ros.collect(Bool, "/vehicle/enable", STATE_QOS)
    states = ros.collect(FlightState, "/flight/state", STATE_QOS)
    vehicle = ScriptedVehicle(ros)
    try:
        ros.wait_for(lambda: setpoints and states, 20, "velocity set-points and flight state")
        assert all(abs(m.linear.x) + abs(m.linear.z) == 0.0 for _, m in setpoints), "zero while on the ground"
        # It arms once the scripted odometry has reached it: asked again until then.
        ros.wait_for(lambda: ros.call(Trigger, "/takeoff", Trigger.Request()).success, 20,
                     "the take-off to be accepted (the controller has the odometry)", poll=0.5)
        ros.wait_for(lambda: enables and enables[-1][1].data, 5, "motor enable")
        ros.wait_for(lambda: setpoints[-1][1].linear.z > 0.3, 10, "a climb set-point")
        vehicle.z = 1.5                                   # the vehicle reports it reached the take-off height
        ros.wait_for(lambda: states[-1][1].mode == "HOVER", 15, "HOVER")
        # World +x at heading 90 degrees is the vehicle's right: heading-frame y = -1.
        pub = ros.node.create_publisher(TwistStamped, "/cmd_vel/operator", 10)
        ros.wait_for_subscribers(pub)
        command = TwistStamped()
        command.header.frame_id = "odom"
        command.twist.linear.x = 1.0
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            command.header.stamp = ros.node.get_clock().now().to_msg()
            pub.publish(command)
            time.sleep(0.05)                              # an operator's 20 Hz stream
        last = setpoints[-1][1]
        assert last.linear.y < -0.8 and abs(last.linear.x) < 0.2, (last.linear.x, last.linear.y)
        assert ros.call(Trigger, "/land", Trigger.Request()).success
        ros.wait_for(lambda: setpoints[-1][1].linear.z < -0.1, 10, "a descent set-point")
        vehicle.z = 0.0                                   # touchdown
        ros.wait_for(lambda: states[-1][1].mode == "LANDED", 15, "LANDED")
        ros.wait_for(lambda: not enables[-1][1].data, 5, "motors disabled after landing")
    finally:
        vehicle.running = False
        vehicle.thread.join(2)
