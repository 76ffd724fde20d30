"""Our nodes make publishers and subscriptions without rclpy's default event handlers (nodes/qos_watch.py) and still
warn about a peer that can never talk to them: a real teleop process, peers on its topics from this test."""
from __future__ import annotations

from geometry_msgs.msg import TwistStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, String

from mmchat_ros.core import topics
from mmchat_ros.msg import FlightState, Gesture
from mmchat_ros.nodes.common import COMMAND_QOS, QOS_PROFILES, SENSOR_QOS, STATE_QOS
from mmchat_ros.nodes.qos_watch import FIRST_CHECK_S, PERIOD_S
from mmchat_ros.tools.ros_client import RosClient
from tests.helpers.processes import python_cmd

SETPOINT_QOS = QOS_PROFILES[topics.SETPOINT]


def test_a_peer_with_qos_or_type_that_cannot_match_is_reported_once_and_a_matching_one_never(spawn, ros,
                                                                                            domain_id):
    teleop = spawn(python_cmd("mmchat_ros.nodes.teleop"), name="teleop")
    teleop.wait_for_line("teleop ready", timeout=60)
    ros.node.create_publisher(Gesture, "/gesture", SENSOR_QOS)        # best effort; teleop asks for reliable
    matching = ros.node.create_publisher(FlightState, "/flight/state", STATE_QOS)
    ros.collect(TwistStamped, "/cmd_vel/teleop", SETPOINT_QOS)     # a matching peer of a publisher of teleop's
    other = RosClient(domain_id, "other_client")     # a participant has one type per topic
    try:
        other.node.create_publisher(String, "/gesture", COMMAND_QOS)
        ros.wait_for_subscribers(matching, timeout=20)
        check_reports(teleop, ros)
    finally:
        other.close()


def check_reports(teleop, ros) -> None:
    qos = teleop.wait_for_line(r"test_client publishes '/gesture' with QoS that cannot match \((.*)\): no messages "
                               r"will pass", timeout=FIRST_CHECK_S + 4 * PERIOD_S)
    assert qos.group(1).lower() == "best effort publisher and reliable subscription", qos.group(0)
    teleop.wait_for_line(r"other_client publishes '/gesture' as std_msgs/msg/String \(this node's is "
                         r"mmchat_ros/msg/Gesture\)", timeout=FIRST_CHECK_S + 4 * PERIOD_S)
    # A peer that can't match, made now, is reported by a later check: one that saw the peers above again.
    ros.collect(Bool, "/follow/enable", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                                   durability=DurabilityPolicy.TRANSIENT_LOCAL))
    teleop.wait_for_line(r"test_client subscribes to '/follow/enable' with QoS that cannot match", timeout=4 * PERIOD_S)
    assert teleop.output.count("publishes '/gesture'") == 2, teleop.output
    assert "'/flight/state'" not in teleop.output and "'/cmd_vel/teleop'" not in teleop.output, teleop.output
