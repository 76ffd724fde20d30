"""The gesture and teleop nodes as real processes over DDS, fed camera frames of real hands (tests/helpers/hands.py):
gesture messages, debug images, bad frames; gestures turned into velocity commands, a take-off call, a follow
request, and the dead-man rule when the hand goes or the camera stops; the idle rate without a hand, and its live
parameters."""
from __future__ import annotations

import time

import pytest
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from mmchat_ros.core import topics
from mmchat_ros.msg import Gesture
from mmchat_ros.nodes.common import COMMAND_QOS, stamp_to_seconds, topic_qos
from tests.helpers import hands as photos
from tests.helpers.flight import ros_args
from tests.helpers.processes import python_cmd

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not photos.photos_available(), reason="Debian's opencv-doc photos not installed")]


def start_gesture(spawn, **params):
    node = spawn(python_cmd("mmchat_ros.nodes.gesture", *ros_args({"hold_frames": 3, **params})), name="gesture")
    node.wait_for_line("gesture recogniser ready", timeout=60)
    return node


def latest(received, predicate=lambda m: True):
    for _, msg in reversed(list(received)):
        if predicate(msg):
            return msg
    return None


def test_gesture_node_recognises_real_hands_and_reports_bad_frames(spawn, ros):
    gestures = ros.collect(Gesture, "/gesture", COMMAND_QOS)
    debug = ros.collect(Image, "/gesture/debug_image", "sensor")
    node = start_gesture(spawn)
    player = photos.FramePlayer(ros, fps=15.0)
    try:
        ros.wait_for_subscribers(player.publisher, timeout=20)
        player.show(photos.shot("thumbs_up"))
        thumbs = ros.wait_for_message(gestures, lambda m: m.name == "thumbs_up" and m.stable, 20,
                                      "a stable thumbs_up")
        assert not thumbs.is_dynamic and thumbs.num_hands == 1 and thumbs.handedness in ("left", "right")
        assert thumbs.confidence > 0.6 and len(thumbs.landmarks) == 21
        assert all(0.0 <= p.x <= 1.0 and 0.0 <= p.y <= 1.0 for p in thumbs.landmarks)
        assert stamp_to_seconds(thumbs.header.stamp) in player.sent          # the frame's capture stamp
        assert thumbs.header.frame_id == "camera_optical"
        frame = ros.wait_for_message(debug, lambda m: True, 10, "a debug image")
        assert (frame.width, frame.height, frame.encoding) == (640, 480, "rgb8")
        assert stamp_to_seconds(frame.header.stamp) in player.sent

        player.show(photos.empty_frame())
        empty = ros.wait_for_message(gestures, lambda m: m.num_hands == 0 and m.name == "none", 10, "no hand")
        assert not empty.stable and not empty.landmarks

        player.send_raw_once(Image(height=480, width=640, encoding="yuv422", step=1280, data=bytes(480 * 1280)))
        node.wait_for_line("ignored a camera frame: cannot convert 'yuv422' images to RGB", timeout=10)

        player.show(photos.shot("thumb_left"))      # the user's left: the thumb points to the image's right
        ros.wait_for_message(gestures, lambda m: m.name == "thumb_left" and m.stable, 20, "a stable thumb_left")
        assert node.alive()
        node.wait_for_line("gesture thumb_left", timeout=10)     # the log line may trail the message
    finally:
        player.stop()


def set_gesture_parameter(ros, name, value):
    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    return ros.call(SetParameters, "/gesture/set_parameters", request).results[0]


def messages_within(received, seconds: float) -> int:
    """How many messages arrive in the next ``seconds``."""
    start = time.monotonic()
    time.sleep(seconds)
    return sum(1 for t, _ in list(received) if t >= start)


def test_without_a_hand_the_node_looks_at_idle_rate_hz_frames_until_one_shows(spawn, ros):
    gestures = ros.collect(Gesture, "/gesture", COMMAND_QOS)
    node = start_gesture(spawn, idle_rate_hz=2.0, idle_after_s=0.5, stats_period_s=2.0)
    player = photos.FramePlayer(ros, fps=15.0)
    try:
        ros.wait_for_subscribers(player.publisher, timeout=20)
        player.show(photos.empty_frame())
        ros.wait_for(lambda: gestures, 20, "gesture messages")
        # idle_after_s without a hand: messages come at the idle rate's spacing (0.5 s), not the camera's (67 ms)
        ros.wait_for(lambda: len(gestures) >= 2 and gestures[-1][0] - gestures[-2][0] >= 0.3, 10, "the idle rate")
        assert messages_within(gestures, 3.0) <= 8                     # 2 frames/s looked at, of 15
        node.wait_for_line(r"skipped while idle", timeout=10)

        player.show(photos.shot("thumbs_up"))
        ros.wait_for_message(gestures, lambda m: m.name == "thumbs_up" and m.stable, 20, "a stable thumbs_up")
        assert messages_within(gestures, 2.0) >= 15                    # every frame again

        refused = set_gesture_parameter(ros, "idle_rate_hz", 50.0)
        assert not refused.successful and "out of range" in refused.reason      # the descriptor's 0..30
        refused = set_gesture_parameter(ros, "max_num_hands", 2)
        assert not refused.successful and "read at start-up only" in refused.reason
        assert set_gesture_parameter(ros, "idle_rate_hz", 0.0).successful
        shown = len(gestures)
        player.show(photos.empty_frame())
        ros.wait_for(lambda: any(m.name == "none" for _, m in gestures[shown:]), 10, "the hand gone")
        # 2 s from the hand's going, past idle_after_s (0.5 s): with the idle rate still on it would be ~10
        assert messages_within(gestures, 2.0) >= 15                    # live: no idle rate any more
        assert node.alive()
    finally:
        player.stop()


def test_gestures_drive_teleop_commands_actions_and_the_dead_man(spawn, ros):
    takeoff_calls = []

    def on_takeoff(_request, response):
        takeoff_calls.append(time.monotonic())
        response.success, response.message = True, "taking off (test double)"
        return response
    ros.node.create_service(Trigger, "/takeoff", on_takeoff)
    commands = ros.collect(TwistStamped, "/cmd_vel/teleop", "sensor")
    follow = ros.collect(Bool, topics.FOLLOW_ENABLE.name, topic_qos(topics.FOLLOW_ENABLE))
    gesture = start_gesture(spawn)
    teleop = spawn(python_cmd("mmchat_ros.nodes.teleop", *ros_args({"require_flying": False})), name="teleop")
    teleop.wait_for_line("teleop ready", timeout=30)
    teleop.wait_for_line("service /takeoff available", timeout=30)     # discovery takes seconds on a busy host
    player = photos.FramePlayer(ros, fps=15.0)
    try:
        ros.wait_for_subscribers(player.publisher, timeout=20)
        # Thumbs up, held for two seconds: one take-off call.
        player.show(photos.shot("thumbs_up"))
        ros.wait_for(lambda: takeoff_calls, 20, "a take-off call")
        time.sleep(2.0)
        assert len(takeoff_calls) == 1
        teleop.wait_for_line("takeoff: taking off", timeout=5)

        # Pointing up: climb at the mapping's 0.4 m/s, in the heading frame, stamped with the frame's capture.
        player.show(photos.shot("pointing_up"))
        climb = ros.wait_for_message(commands, lambda m: m.twist.linear.z > 0.3, 15, "a climb command")
        assert climb.header.frame_id == "base_link" and climb.twist.linear.z == pytest.approx(0.4)
        assert stamp_to_seconds(climb.header.stamp) in player.sent

        # The hand goes (frames without it): the last command bridges a moment, then zero, then silence.
        player.show(photos.empty_frame())
        gone = time.monotonic()
        ros.wait_for_message(commands, lambda m: m.twist.linear.z == 0.0, 5, "zero velocity (dead-man)")
        time.sleep(1.5)
        count = len(commands)
        time.sleep(1.0)
        assert len(commands) == count, "teleop must release control after the dead-man stop"
        after_gone = [m for t, m in list(commands) if t > gone]
        first_zero = next(i for i, m in enumerate(after_gone) if m.twist.linear.z == 0.0)
        assert all(m.twist.linear.z == pytest.approx(0.4) for m in after_gone[:first_zero])
        assert all(m.twist.linear.z == 0.0 for m in after_gone[first_zero:])

        # Victory: a follow-mode request for the follow-me behaviour.
        player.show(photos.shot("victory"))
        ros.wait_for(lambda: follow and follow[-1][1].data, 20, "follow mode on")

        # Thumb left: yaw; then the camera stops altogether: the timer's dead-man stops the vehicle.
        player.show(photos.shot("thumb_left"))
        ros.wait_for_message(commands, lambda m: m.twist.angular.z > 0.4, 20, "a yaw command")
        player.show(None)
        ros.wait_for_message(commands, lambda m: m.twist.angular.z == 0.0 and m.twist.linear.z == 0.0, 5,
                             "zero velocity after the camera stopped")

        # Fist: land, but nothing serves /land here: the request waits, then is dropped with the reason.
        player.show(photos.shot("fist"))
        teleop.wait_for_line("land requested", timeout=20)
        teleop.wait_for_line(r"land dropped: service /land not available after 2 s", timeout=10)
        assert gesture.alive() and teleop.alive()
    finally:
        player.stop()
