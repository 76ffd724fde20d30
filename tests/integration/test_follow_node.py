"""The follow node as a real process over DDS: the test plays the tracker (/detections), the planner
(/follow/target, /planner/plan), the gesture teleop (/follow/enable) and the flight controller (/flight/state), and
reads /cmd_vel/follow and /tts/say."""
from __future__ import annotations

import threading
import time

import pytest
from geometry_msgs.msg import TwistStamped
from std_msgs.msg import Bool, String

from mmchat_ros.msg import ActionPlan, Detection, DetectionArray, FlightState, PlanAction
from mmchat_ros.nodes.common import COMMAND_QOS, SENSOR_QOS, STATE_QOS
from tests.helpers.domains import unused_domain_id
from tests.helpers.flight import ros_args
from tests.helpers.processes import python_cmd

pytestmark = pytest.mark.slow

QUIET_S = 0.3       # no follow command for this long: the node has stopped commanding


@pytest.fixture
def domain_id():
    """A domain nobody else on this machine uses: another run's detections, commands or odometry must not leak in."""
    return unused_domain_id()


class FakeTracker:
    """Publishes one DetectionArray at 10 Hz holding whatever people ``show`` set (pixel boxes in 320x240)."""

    def __init__(self, ros):
        self.ros = ros
        self.pub = ros.node.create_publisher(DetectionArray, "/detections", SENSOR_QOS)
        self.people: list[Detection] = []
        self.image_size = (320, 240)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def show(self, *people: tuple[int, float, float, float], image_size=(320, 240)) -> None:
        """people: (track_id, centre x, centre y, height) in pixels."""
        self.image_size = image_size
        self.people = [Detection(class_id=0, class_name="person", score=0.9, center_x=cx, center_y=cy,
                                 width=h / 2, height=h, track_id=tid) for tid, cx, cy, h in people]

    def _run(self):
        while not self._stop.wait(0.1):
            msg = DetectionArray(image_width=self.image_size[0], image_height=self.image_size[1],
                                 detections=list(self.people))
            msg.header.stamp = self.ros.node.get_clock().now().to_msg()
            self.pub.publish(msg)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)


def recent(received, since):
    return [m for t, m in list(received) if t >= since]


def wait_until_quiet(ros, commands, why: str) -> None:
    """Until no follow command has come for QUIET_S: the node got what stops it and anything it sent before has
    arrived (it commands at 20 Hz while following)."""
    ros.wait_for(lambda: not recent(commands, time.monotonic() - QUIET_S), 10, f"the follow commands to stop {why}")


def test_follow_steers_hovers_when_the_target_is_out_of_view_and_says_it_lost_it(spawn, ros):
    node = spawn(python_cmd("mmchat_ros.nodes.follow", *ros_args(
        {"hold_timeout_s": 0.4, "lost_timeout_s": 1.5, "smoothing_time_s": 0.0})), name="follow")
    node.wait_for_line("follow ready", timeout=30)
    commands = ros.collect(TwistStamped, "/cmd_vel/follow", "sensor")
    speech = ros.collect(String, "/tts/say", COMMAND_QOS)
    target_pub = ros.node.create_publisher(Detection, "/follow/target", COMMAND_QOS)
    tracker = FakeTracker(ros)
    try:
        ros.wait_for_subscribers(target_pub)
        ros.wait_for_subscribers(tracker.pub)
        tracker.show((4, 250.0, 120.0, 60.0), (9, 100.0, 120.0, 40.0))    # right of centre, far: the largest
        time.sleep(1.0)                                                 # a negative check: nothing may come
        assert not commands, "an idle follow node must publish nothing"

        target_pub.publish(Detection(class_name="person", track_id=-1))
        node.wait_for_line(r"acquired person 4", timeout=10)
        t0 = time.monotonic()
        time.sleep(1.0)                                                 # a measurement window: the command rate
        steering = recent(commands, t0)
        assert len(steering) >= 12, f"expected ~20 commands a second, got {len(steering)}"
        last = steering[-1]
        assert last.header.frame_id == "base_link"
        assert last.twist.angular.z < -0.1, "target right of centre: turn right (negative yaw rate)"
        assert last.twist.linear.x > 0.3, "target small: fly towards it"
        assert abs(last.twist.linear.y) < 1e-9

        tracker.show()                                                  # out of view
        t1 = time.monotonic()
        ros.wait_for(lambda: any(m.data == "I lost the target." for _, m in speech), 5, "the lost message")
        lost_at = next(t for t, m in speech if m.data == "I lost the target.")
        assert 1.2 < lost_at - t1 < 2.5, lost_at - t1
        during = [m for t, m in commands if t1 + 0.6 < t < lost_at - 0.05]
        assert during and all(m.twist.linear.x == 0 and m.twist.angular.z == 0 for m in during), \
            "while the target is briefly gone the command is a hover"
        time.sleep(0.6)                                                 # a negative check: nothing may come
        assert not [t for t, _ in commands if t > lost_at + 0.2], "after losing the target the node goes quiet"
        assert sum(m.data == "I lost the target." for _, m in speech) == 1
        assert node.alive()
    finally:
        tracker.close()


def test_enable_stop_new_plans_landing_and_bad_input(spawn, ros):
    node = spawn(python_cmd("mmchat_ros.nodes.follow", *ros_args({"lost_timeout_s": 5.0})), name="follow")
    node.wait_for_line("follow ready", timeout=30)
    commands = ros.collect(TwistStamped, "/cmd_vel/follow", "sensor")
    enable_pub = ros.node.create_publisher(Bool, "/follow/enable", COMMAND_QOS)
    target_pub = ros.node.create_publisher(Detection, "/follow/target", COMMAND_QOS)
    plan_pub = ros.node.create_publisher(ActionPlan, "/planner/plan", COMMAND_QOS)
    state_pub = ros.node.create_publisher(FlightState, "/flight/state", STATE_QOS)
    tracker = FakeTracker(ros)
    try:
        for pub in (enable_pub, target_pub, plan_pub, state_pub, tracker.pub):
            ros.wait_for_subscribers(pub)
        state_pub.publish(FlightState(mode="HOVER"))
        tracker.show((2, 160.0, 120.0, 120.0))

        # Gesture teleop's enable starts following the largest person; false stops it.
        enable_pub.publish(Bool(data=True))
        node.wait_for_line(r"acquired person 2", timeout=10)
        ros.wait_for(lambda: commands, 5, "follow commands")
        enable_pub.publish(Bool(data=False))
        node.wait_for_line(r"stopped following .*disabled on /follow/enable", timeout=5)
        wait_until_quiet(ros, commands, "after the disable")
        quiet_since = time.monotonic()
        time.sleep(0.7)                                                 # a negative check: nothing may come
        assert not recent(commands, quiet_since)

        # A plan without FOLLOW replaces following; one with FOLLOW does not.
        target_pub.publish(Detection(class_name="person", track_id=2))
        node.wait_for_line(r"following person 2", timeout=5)
        plan_pub.publish(ActionPlan(id="a", utterance="follow person 2", actions=[PlanAction(type=PlanAction.FOLLOW)]))
        plan_pub.publish(ActionPlan(id="b", utterance="land", actions=[PlanAction(type=PlanAction.LAND)]))
        node.wait_for_line(r"stopped following person 2: a new command replaced it \('land'\)", timeout=5)
        assert "('follow person 2')" not in node.output

        # Malformed detections are logged and ignored; the node keeps working.
        target_pub.publish(Detection(class_name="person", track_id=-1))
        node.wait_for_line(r"following the largest person", timeout=5)
        tracker.show((2, 160.0, 120.0, 120.0), image_size=(0, 0))
        node.wait_for_line(r"ignored detections: detections without an image size", timeout=5)
        tracker.show((2, 160.0, 120.0, 120.0))
        node.wait_for_line(r"acquired person 2", timeout=5)

        # No commands while taking off; landing ends the follow.
        state_pub.publish(FlightState(mode="TAKING_OFF"))
        wait_until_quiet(ros, commands, "while the vehicle is TAKING_OFF")
        t0 = time.monotonic()
        time.sleep(0.5)                                                 # a negative check: nothing may come
        assert not recent(commands, t0)
        state_pub.publish(FlightState(mode="LANDING"))
        node.wait_for_line(r"stopped following .*the vehicle is LANDING", timeout=5)
        assert node.alive()
    finally:
        tracker.close()
