"""Two processes exchange custom messages and a service call over real DDS."""
from geometry_msgs.msg import Point

from mmchat_ros.msg import Gesture
from mmchat_ros.srv import SubmitCommand
from tests.helpers.processes import python_cmd


def test_custom_message_and_service_between_processes(spawn, ros):
    echo = spawn(python_cmd("tests.helpers.echo_node", "--ros-args", "-p", "prefix:=seen-"), name="echo")
    echo.wait_for_line("echo node ready", timeout=20)

    received = ros.collect(Gesture, "gesture_out")
    pub = ros.node.create_publisher(Gesture, "gesture_in", 10)
    ros.wait_for_subscribers(pub)
    ros.wait_for(lambda: ros.node.count_publishers("gesture_out") >= 1, 10, "echo's publisher")

    sent = Gesture(name="thumbs_up", confidence=0.93, handedness="right", num_hands=1,
                   landmarks=[Point(x=0.1 * i, y=0.5, z=-0.01 * i) for i in range(21)])
    pub.publish(sent)
    got = ros.wait_for_message(received, lambda m: m.name == "seen-thumbs_up", timeout=10, what="echoed gesture")
    assert abs(got.confidence - 0.93) < 1e-6
    assert got.handedness == "right"
    assert len(got.landmarks) == 21 and abs(got.landmarks[20].x - 2.0) < 1e-9

    reply = ros.call(SubmitCommand, "submit_command", SubmitCommand.Request(text="take off"))
    assert reply.accepted is True
    assert reply.reply == "seen-TAKE OFF"
    assert reply.plan_id == "plan-8"
    empty = ros.call(SubmitCommand, "submit_command", SubmitCommand.Request(text="  "))
    assert empty.accepted is False
