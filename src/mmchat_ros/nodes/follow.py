"""follow node: follow-me: keep a tracked target centred and at a set apparent size.

Starts on /follow/target (mmchat_ros/msg/Detection: class_name and track_id; track_id -1 = the largest object of
that class; the planner publishes it for "follow the person on the left") or on std_msgs/Bool true on
/follow/enable (the largest default_class; the gesture teleop's follow request). Stops on Bool false on
/follow/enable, on a new plan without a FOLLOW step on /planner/plan (a newer command replaces following), and when
the flight controller lands or stops (/flight/state).

While following it publishes geometry_msgs/TwistStamped on /cmd_vel/follow at rate_hz (frame base_link: linear.x
forward, linear.y left, linear.z up, angular.z yaw rate), computed from /detections (mmchat_ros/msg/DetectionArray):
steering while the target is in view, zero (hover) while it is briefly out of view. When it has been gone for
lost_timeout_s the node says lost_message on /tts/say (std_msgs/String) and stops publishing: the flight
controller's mux times the follow source out and hovers. Idle, it publishes nothing.
"""
from __future__ import annotations

import math
import sys

from geometry_msgs.msg import TwistStamped
from std_msgs.msg import Bool, String

from mmchat_ros.core import topics
from mmchat_ros.core.detections import TrackedObject
from mmchat_ros.core.follow import (EventKind, FollowConfig, FollowController, FollowEvent, FollowRequest,
                                    vehicle_gate)
from mmchat_ros.msg import ActionPlan, Detection, DetectionArray, FlightState, PlanAction
from mmchat_ros.nodes.base import MmchatNode
from mmchat_ros.nodes.common import Param, run_node
from mmchat_ros.nodes.ros_conversions import tracked_object_from_msg

PARAMS = {
    "rate_hz": Param(20.0, "rate of /cmd_vel/follow while following, Hz (must beat the mux timeout, 0.5 s)"),
    "default_class": Param("person", "class followed on /follow/enable true, and when /follow/target names none"),
    "target_height": Param(0.5, "apparent size to keep: target box height / image height (larger = closer)",
                           value_range=(0.05, 1.0), live=True),
    "desired_center_x": Param(0.5, "where the target's box centre is kept, fraction of the image width",
                              value_range=(0.0, 1.0), live=True),
    "desired_center_y": Param(0.5, "where the target's box centre is kept, fraction of the image height (0 = top)",
                              value_range=(0.0, 1.0), live=True),
    "yaw_gain": Param(1.5, "turn rate per image width of horizontal offset, rad/s",
                      value_range=(0.0, 10.0), live=True),
    "forward_gain": Param(1.0, "forward speed per unit of relative distance error (target_height/height - 1), m/s",
                          value_range=(0.0, 10.0), live=True),
    "vertical_gain": Param(1.0, "climb rate per image height of vertical offset, m/s; 0 = keep altitude",
                           value_range=(0.0, 10.0), live=True),
    "max_forward_mps": Param(1.0, "forward speed limit, m/s", value_range=(0.0, 5.0), live=True),
    "max_backward_mps": Param(0.5, "backward speed limit, m/s", value_range=(0.0, 5.0), live=True),
    "max_vertical_mps": Param(0.4, "climb/descent speed limit, m/s", value_range=(0.0, 3.0), live=True),
    "max_yaw_rate_deg_s": Param(45.0, "turn rate limit, deg/s", value_range=(0.0, 180.0), live=True),
    "center_deadband": Param(0.03, "centring offsets smaller than this image fraction are ignored"),
    "size_deadband": Param(0.05, "relative distance errors smaller than this are ignored"),
    "smoothing_time_s": Param(0.2, "time constant of the target box filter (detections jitter), s; 0 = none"),
    "hold_timeout_s": Param(0.6, "target out of view this long → hover commands, s"),
    "lost_timeout_s": Param(3.0, "target out of view this long → say lost_message and stop following, s"),
    "reacquire_distance": Param(0.15, "a new track id of the same class appearing within this image fraction of "
                                      "where the followed one vanished is taken as the same object"),
    "min_score": Param(0.0, "detections below this score are ignored, 0..1", value_range=(0.0, 1.0), live=True),
    "lost_message": Param("I lost the target.", "said on /tts/say when the target is lost"),
    "frame_id": Param("base_link", "frame of the velocity commands (heading frame: x forward, y left, z up)"),
}


def boxes_from_msg(msg: DetectionArray) -> list[TrackedObject]:
    """Tracked detections (track_id >= 0) of one frame, normalised to its image size."""
    if msg.image_width == 0 or msg.image_height == 0:
        raise ValueError(f"detections without an image size ({msg.image_width}x{msg.image_height})")
    out = []
    for d in msg.detections:
        values = (d.center_x, d.center_y, d.width, d.height, d.score)
        if d.track_id < 0 or not all(math.isfinite(v) for v in values) or d.width <= 0 or d.height <= 0:
            continue
        out.append(tracked_object_from_msg(d).normalised(msg.image_width, msg.image_height))
    return out


def follow_config(p: dict) -> FollowConfig:
    return FollowConfig(
        target_height=p["target_height"], desired_center_x=p["desired_center_x"],
        desired_center_y=p["desired_center_y"], yaw_gain=p["yaw_gain"], forward_gain=p["forward_gain"],
        vertical_gain=p["vertical_gain"], max_forward_mps=p["max_forward_mps"],
        max_backward_mps=p["max_backward_mps"], max_vertical_mps=p["max_vertical_mps"],
        max_yaw_rate=math.radians(p["max_yaw_rate_deg_s"]), center_deadband=p["center_deadband"],
        size_deadband=p["size_deadband"], smoothing_time_s=p["smoothing_time_s"],
        hold_timeout_s=p["hold_timeout_s"], lost_timeout_s=p["lost_timeout_s"],
        reacquire_distance=p["reacquire_distance"], min_score=p["min_score"])


class FollowNode(MmchatNode):
    def __init__(self):
        super().__init__("follow", PARAMS, on_change=self.on_parameters)
        p = self.p
        if not p.rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {p.rate_hz}")
        self.controller = FollowController(follow_config(p.as_dict()))
        self.may_publish = True
        self.cmd_pub = self.publish_to(topics.velocity_command("follow"), TwistStamped)
        self.say_pub = self.publish_to(topics.SAY, String)
        self.subscribe_to(topics.DETECTIONS, DetectionArray, self.on_detections)
        self.subscribe_to(topics.FOLLOW_TARGET, Detection, self.on_target)
        self.subscribe_to(topics.FOLLOW_ENABLE, Bool, self.on_enable)
        self.subscribe_to(topics.PLAN, ActionPlan, self.on_plan)
        self.subscribe_to(topics.FLIGHT_STATE, FlightState, self.on_flight_state)
        self.create_timer(1.0 / p.rate_hz, self.tick)
        self.get_logger().info(f"follow ready: keeps the target at {p.target_height:.2f} of the image height, "
                               f"commands on {self.cmd_pub.topic_name} at {p.rate_hz:.0f} Hz while following")

    def on_parameters(self, values: dict) -> str | None:
        """Gains, limits and where the target is kept apply from the next detection on."""
        try:
            config = follow_config(values)
        except ValueError as exc:
            return str(exc)
        self.controller.config = config
        return None

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def report(self, event: FollowEvent | None) -> None:
        if event is None:
            return
        if event.kind is EventKind.LOST:
            self.get_logger().warn(event.message)
            self.say_pub.publish(String(data=self.p.lost_message))
        else:
            self.get_logger().info(event.message)

    # --------------------------------------------------------------------------------------------- requests
    def on_target(self, msg: Detection) -> None:
        request = FollowRequest(msg.class_name.strip() or self.p.default_class, int(msg.track_id))
        self.report(self.controller.start(request, self.now()))

    def on_enable(self, msg: Bool) -> None:
        if msg.data:
            if not self.controller.active:
                self.report(self.controller.start(FollowRequest(self.p.default_class), self.now()))
        else:
            self.report(self.controller.stop("disabled on /follow/enable"))

    def on_plan(self, msg: ActionPlan) -> None:
        if not any(a.type == PlanAction.FOLLOW for a in msg.actions):
            self.report(self.controller.stop(f"a new command replaced it ('{msg.utterance}')"))

    def on_flight_state(self, msg: FlightState) -> None:
        self.may_publish, must_stop = vehicle_gate(msg.mode)
        if must_stop:
            self.report(self.controller.stop(f"the vehicle is {msg.mode}"))

    # ------------------------------------------------------------------------------------------- detections
    def on_detections(self, msg: DetectionArray) -> None:
        if not self.controller.active:
            return
        try:
            boxes = boxes_from_msg(msg)
        except ValueError as exc:
            self.get_logger().error(f"ignored detections: {exc}", throttle_duration_sec=5.0)
            return
        for event in self.controller.observe(boxes, self.now()):
            self.report(event)

    def tick(self) -> None:
        out = self.controller.update(self.now())
        for event in out.events:
            self.report(event)
        if out.command is None or not self.may_publish:
            return
        msg = TwistStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.p.frame_id
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (out.command.forward, out.command.left,
                                                                      out.command.up)
        msg.twist.angular.z = out.command.yaw_rate
        self.cmd_pub.publish(msg)


def main(args=None):
    return run_node(FollowNode, args)


if __name__ == "__main__":
    sys.exit(main())
