"""foxglove_bridge node: the live graph in Foxglove (camera with overlays, 3-D pose, setpoint vs state plots).

Also flight and auth state, and a log of what was heard, planned and said.

Serves a Foxglove WebSocket server (foxglove-sdk) on loopback by default (parameters host, port; connect Foxglove
to ws://HOST:PORT) and re-publishes:
  /camera/image/compressed   foxglove.CompressedImage (JPEG/PNG; or /camera/image foxglove.RawImage with
                             image_format 'raw') from /camera/image_raw, at most max_image_rate_hz
  /camera/annotations        foxglove.ImageAnnotations for each image sent (same timestamp): /detections boxes with
                             track ids and the /gesture hand skeleton and name
  /tf                        foxglove.FrameTransforms odom -> base_link from /odom, at most max_pose_rate_hz
  /drone/pose                foxglove.PoseInFrame from /odom (the 3-D panel draws it)
  /plot/setpoint_vs_state    JSON: state (odometry pose and velocity), the /flight/setpoint in force and their error
  /plot/velocity_command     JSON: each velocity command on /cmd_vel/<source> (command_sources)
  /flight/state, /auth/state JSON copies of the state topics (sent again every second: late clients see them)
  /log                       foxglove.Log: transcripts, plans, replies (/tts/say)
Images are encoded only while a client subscribes to the image channel; with subscribe_on_demand (the default)
/camera/image_raw and /odom are not even subscribed while no client watches a channel made from them, so a bridge
nobody looks at costs almost nothing.
"""
from __future__ import annotations

import json
import math
import sys
import threading
import time

import foxglove
from foxglove import channels as fg_channels
from foxglove import messages as fg
from geometry_msgs.msg import PoseStamped, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String

from mmchat_ros.core import topics
from mmchat_ros.core.overlays import (SETPOINT_VS_STATE_SCHEMA, LatestByStamp, Overlay, build_overlay,
                                      pose_sample, setpoint_vs_state)
from mmchat_ros.core.panel import auth_summary, flight_summary, json_safe, plan_text
from mmchat_ros.msg import ActionPlan, AuthState, DetectionArray, FlightState, Gesture, Transcript
from mmchat_ros.nodes.base import MmchatNode
from mmchat_ros.nodes.common import Param, run_node, stamp_to_seconds, topic_subscription
from mmchat_ros.nodes.image_conversion import ImageConversionError, encode_image, to_rgb

IMAGE_FORMATS = ("jpeg", "png", "raw")
STATE_REPEAT_S = 1.0
WATCH_CHECK_S = 0.25     # how soon a ROS topic is subscribed after a client starts watching a channel made from it
PARAMS = {
    "host": Param("127.0.0.1", "address the Foxglove WebSocket server listens on (loopback: this machine only)"),
    "port": Param(8765, "TCP port of the Foxglove WebSocket server (0: any free port, logged at start-up)"),
    "server_name": Param("mmchat_ros", "server name shown in Foxglove"),
    "image_format": Param("jpeg", "camera images as 'jpeg' or 'png' (foxglove.CompressedImage) or 'raw' "
                                  "(foxglove.RawImage, rgb8: large)"),
    "jpeg_quality": Param(80, "JPEG quality, 1..100"),
    "max_image_rate_hz": Param(10.0, "camera images (and their annotations) sent per second at most"),
    "max_pose_rate_hz": Param(30.0, "odometry-derived messages (tf, pose, setpoint vs state) per second at most"),
    "overlay_max_age_s": Param(0.5, "annotate an image with detections / landmarks whose stamp is at most this "
                                    "far from the image's, s"),
    "odom_frame": Param("odom", "parent frame of the drone's transform when /odom gives none"),
    "base_frame": Param("base_link", "the drone's frame when /odom gives no child_frame_id"),
    "command_sources": Param(["operator", "plan", "teleop", "follow"],
                             "velocity command sources plotted from /cmd_vel/<source>"),
    "subscribe_on_demand": Param(True, "subscribe to /camera/image_raw and /odom only while a client watches a "
                                       "channel made from them (false: always subscribed)"),
}


def fg_time(stamp) -> fg.Timestamp:
    return fg.Timestamp(sec=int(stamp.sec), nsec=int(stamp.nanosec))


def fg_color(rgb, alpha: float = 1.0) -> fg.Color:
    return fg.Color(r=float(rgb[0]), g=float(rgb[1]), b=float(rgb[2]), a=alpha)


def image_annotations(overlay: Overlay, stamp) -> fg.ImageAnnotations:
    """The overlay as foxglove ImageAnnotations: a line loop and a label per box, line segments and points per
    hand, the gesture caption in the corner."""
    timestamp = fg_time(stamp)
    points, texts = [], []
    for box in overlay.boxes:
        colour = fg_color(box.colour)
        points.append(fg.PointsAnnotation(timestamp=timestamp, type=fg.PointsAnnotationType.LineLoop,
                                          points=[fg.Point2(x=x, y=y) for x, y in box.corners],
                                          outline_color=colour, thickness=2.0))
        x, y = box.corners[0]
        texts.append(fg.TextAnnotation(timestamp=timestamp, position=fg.Point2(x=x, y=max(12.0, y - 3.0)),
                                       text=box.label, font_size=12.0, text_color=fg_color((1, 1, 1)),
                                       background_color=colour))
    for hand in overlay.hands:
        segment_points = [fg.Point2(x=hand.points[i][0], y=hand.points[i][1])
                          for a, b in hand.segments for i in (a, b)]
        points.append(fg.PointsAnnotation(timestamp=timestamp, type=fg.PointsAnnotationType.LineList,
                                          points=segment_points, outline_color=fg_color(hand.colour),
                                          thickness=2.0))
        points.append(fg.PointsAnnotation(timestamp=timestamp, type=fg.PointsAnnotationType.Points,
                                          points=[fg.Point2(x=x, y=y) for x, y in hand.points],
                                          outline_color=fg_color((0.9, 0.16, 0.16)), thickness=4.0))
    if overlay.caption:
        texts.append(fg.TextAnnotation(timestamp=timestamp, position=fg.Point2(x=6.0, y=18.0),
                                       text=f"gesture: {overlay.caption}", font_size=14.0,
                                       text_color=fg_color((1, 1, 1)), background_color=fg_color((0, 0, 0), 0.6)))
    return fg.ImageAnnotations(timestamp=timestamp, points=points, texts=texts)


class SubscriptionCounter:
    """foxglove ServerListener: how many clients watch each channel, so costly channels (images) are only
    produced while watched."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def on_subscribe(self, client, channel) -> None:
        with self.lock:
            self.counts[channel.topic] = self.counts.get(channel.topic, 0) + 1

    def on_unsubscribe(self, client, channel) -> None:
        with self.lock:
            self.counts[channel.topic] = max(0, self.counts.get(channel.topic, 0) - 1)

    def watched(self, topic: str) -> bool:
        with self.lock:
            return self.counts.get(topic, 0) > 0


class OnDemandSubscription:
    """A ROS subscription that exists only while a Foxglove client watches one of ``channels``. Created and
    destroyed from an executor timer, never from the server's thread."""

    def __init__(self, node: Node, topic: topics.Topic, msg_type, callback, channels: tuple[str, ...]):
        self.node, self.topic, self.msg_type, self.callback = node, topic, msg_type, callback
        self.channels = channels
        self.subscription = None

    def update(self, wanted: bool) -> None:
        if wanted and self.subscription is None:
            self.subscription = topic_subscription(self.node, self.topic, self.msg_type, self.callback)
        elif not wanted and self.subscription is not None:
            self.node.destroy_subscription(self.subscription)
            self.subscription = None


class FoxgloveBridgeNode(MmchatNode):
    def __init__(self):
        super().__init__("foxglove_bridge", PARAMS)
        if self.p.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format '{self.p.image_format}' is not one of {', '.join(IMAGE_FORMATS)}")
        if not 1 <= self.p.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality={self.p.jpeg_quality} is outside 1..100")
        self.listener = SubscriptionCounter()
        self.server = foxglove.start_server(name=self.p.server_name, host=self.p.host, port=self.p.port,
                                            server_listener=self.listener)
        raw = self.p.image_format == "raw"
        self.image_topic = "/camera/image" if raw else "/camera/image/compressed"
        self.image_channel = (fg_channels.RawImageChannel if raw else fg_channels.CompressedImageChannel)(
            self.image_topic)
        self.annotations_channel = fg_channels.ImageAnnotationsChannel("/camera/annotations")
        self.tf_channel = fg_channels.FrameTransformsChannel("/tf")
        self.pose_channel = fg_channels.PoseInFrameChannel("/drone/pose")
        plot_schema = foxglove.Schema(name="mmchat.SetpointVsState", encoding="jsonschema",
                                      data=json.dumps(SETPOINT_VS_STATE_SCHEMA).encode())
        self.plot_channel = foxglove.Channel("/plot/setpoint_vs_state", message_encoding="json", schema=plot_schema)
        self.command_channel = foxglove.Channel("/plot/velocity_command", message_encoding="json")
        self.flight_channel = foxglove.Channel("/flight/state", message_encoding="json")
        self.auth_channel = foxglove.Channel("/auth/state", message_encoding="json")
        self.log_channel = fg_channels.LogChannel("/log")

        self.detections = LatestByStamp(self.p.overlay_max_age_s)
        self.gesture = LatestByStamp(self.p.overlay_max_age_s)
        self.setpoint: tuple[dict, float] | None = None      # (pose sample, monotonic time received)
        self.last_image = 0.0
        self.last_pose = 0.0
        self.images_sent = 0
        self.latest_state: dict[str, tuple] = {}
        self.create_timer(STATE_REPEAT_S / 2, self.repeat_state)
        self.on_demand = [
            OnDemandSubscription(self, topics.CAMERA_IMAGE, Image, self.on_image, (self.image_topic,)),
            OnDemandSubscription(self, topics.ODOM, Odometry, self.on_odom,
                                 ("/tf", "/drone/pose", "/plot/setpoint_vs_state"))]
        if self.p.subscribe_on_demand:
            self.create_timer(WATCH_CHECK_S, self.update_subscriptions)
        else:
            for subscription in self.on_demand:
                subscription.update(True)
        self.subscribe_to(topics.DETECTIONS, DetectionArray, self.on_detections)
        self.subscribe_to(topics.GESTURE, Gesture, self.on_gesture)
        self.subscribe_to(topics.FLIGHT_SETPOINT, PoseStamped, self.on_setpoint)
        self.subscribe_to(topics.FLIGHT_STATE, FlightState, self.on_flight_state)
        self.subscribe_to(topics.AUTH_STATE, AuthState, self.on_auth)
        self.subscribe_to(topics.TRANSCRIPT, Transcript, self.on_transcript)
        self.subscribe_to(topics.PLAN, ActionPlan, self.on_plan)
        self.subscribe_to(topics.SAY, String, self.on_say)
        for source in self.p.command_sources:
            self.subscribe_to(topics.velocity_command(source), TwistStamped,
                              lambda msg, s=source: self.on_velocity_command(s, msg))
        self.get_logger().info(f"foxglove server on ws://{self.p.host}:{self.server.port} ('{self.p.server_name}'): "
                               f"connect Foxglove to it")

    def update_subscriptions(self) -> None:
        for subscription in self.on_demand:
            subscription.update(any(self.listener.watched(channel) for channel in subscription.channels))

    # ------------------------------------------------------------------------------------------------ camera
    def on_image(self, msg: Image) -> None:
        now = time.monotonic()
        if now - self.last_image < 1.0 / self.p.max_image_rate_hz or not self.listener.watched(self.image_topic):
            return
        try:
            width, height = self.publish_image(msg)
        except ImageConversionError as exc:
            self.get_logger().error(f"cannot show a camera frame: {exc}", throttle_duration_sec=5.0)
            return
        self.last_image = now
        self.images_sent += 1
        stamp_s = stamp_to_seconds(msg.header.stamp)
        overlay = build_overlay(width, height, self.detections.fresh_for(stamp_s), self.gesture.fresh_for(stamp_s))
        self.annotations_channel.log(image_annotations(overlay, msg.header.stamp))

    def publish_image(self, msg: Image) -> tuple[int, int]:
        if self.p.image_format == "raw":
            rgb = to_rgb(msg)
            self.image_channel.log(fg.RawImage(timestamp=fg_time(msg.header.stamp), frame_id=msg.header.frame_id,
                                               width=rgb.shape[1], height=rgb.shape[0], encoding="rgb8",
                                               step=rgb.shape[1] * 3, data=rgb.tobytes()))
            return rgb.shape[1], rgb.shape[0]
        data, width, height = encode_image(msg, self.p.image_format, self.p.jpeg_quality)
        self.image_channel.log(fg.CompressedImage(timestamp=fg_time(msg.header.stamp), frame_id=msg.header.frame_id,
                                                  data=data, format=self.p.image_format))
        return width, height

    def on_detections(self, msg: DetectionArray) -> None:
        self.detections.update(msg, stamp_to_seconds(msg.header.stamp))

    def on_gesture(self, msg: Gesture) -> None:
        self.gesture.update(msg, stamp_to_seconds(msg.header.stamp))

    # -------------------------------------------------------------------------------------- pose and plots
    def on_odom(self, msg: Odometry) -> None:
        now = time.monotonic()
        if now - self.last_pose < 1.0 / self.p.max_pose_rate_hz:
            return
        self.last_pose = now
        pose, timestamp = msg.pose.pose, fg_time(msg.header.stamp)
        parent = msg.header.frame_id or self.p.odom_frame
        child = msg.child_frame_id or self.p.base_frame
        p, q = pose.position, pose.orientation
        self.tf_channel.log(fg.FrameTransforms(transforms=[fg.FrameTransform(
            timestamp=timestamp, parent_frame_id=parent, child_frame_id=child,
            translation=fg.Vector3(x=p.x, y=p.y, z=p.z), rotation=fg.Quaternion(x=q.x, y=q.y, z=q.z, w=q.w))]))
        self.pose_channel.log(fg.PoseInFrame(timestamp=timestamp, frame_id=parent, pose=fg.Pose(
            position=fg.Vector3(x=p.x, y=p.y, z=p.z), orientation=fg.Quaternion(x=q.x, y=q.y, z=q.z, w=q.w))))
        v = msg.twist.twist.linear     # body frame (REP 105)
        state = {**pose_sample(pose), "vx_body": v.x, "vy_body": v.y, "vz_body": v.z,
                 "yaw_rate_deg_s": math.degrees(msg.twist.twist.angular.z)}
        setpoint, age = (self.setpoint[0], now - self.setpoint[1]) if self.setpoint else (None, None)
        self.plot_channel.log(json_safe({"timestamp": {"sec": timestamp.sec, "nsec": timestamp.nsec},
                                         **setpoint_vs_state(state, setpoint, age)}))

    def on_setpoint(self, msg: PoseStamped) -> None:
        self.setpoint = (pose_sample(msg.pose), time.monotonic())

    def on_velocity_command(self, source: str, msg: TwistStamped) -> None:
        lin, ang = msg.twist.linear, msg.twist.angular
        self.command_channel.log(json_safe({
            "timestamp": {"sec": msg.header.stamp.sec, "nsec": msg.header.stamp.nanosec}, "source": source,
            "frame": msg.header.frame_id, "vx": lin.x, "vy": lin.y, "vz": lin.z,
            "yaw_rate_deg_s": math.degrees(ang.z)}))

    # ------------------------------------------------------------------------------------------ state, log
    def on_flight_state(self, msg: FlightState) -> None:
        self.log_state(self.flight_channel, {"timestamp": {"sec": msg.header.stamp.sec,
                                                           "nsec": msg.header.stamp.nanosec}, **flight_summary(msg)})

    def on_auth(self, msg: AuthState) -> None:
        self.log_state(self.auth_channel, {"timestamp": {"sec": msg.header.stamp.sec,
                                                         "nsec": msg.header.stamp.nanosec}, **auth_summary(msg)})

    def log_state(self, channel, data: dict) -> None:
        self.latest_state[channel.topic] = (channel, json_safe(data), time.monotonic())
        channel.log(self.latest_state[channel.topic][1])

    def repeat_state(self) -> None:
        """Foxglove keeps no last value for clients that connect later: state topics (transient local in ROS)
        are sent again every STATE_REPEAT_S while they do not change."""
        now = time.monotonic()
        for topic, (channel, data, sent) in list(self.latest_state.items()):
            if now - sent >= STATE_REPEAT_S:
                self.latest_state[topic] = (channel, data, now)
                channel.log(data)

    def log(self, name: str, text: str, stamp=None) -> None:
        timestamp = fg_time(stamp) if stamp is not None and (stamp.sec or stamp.nanosec) else \
            fg.Timestamp(sec=int(time.time()), nsec=int(time.time_ns() % 1_000_000_000))
        self.log_channel.log(fg.Log(timestamp=timestamp, level=fg.LogLevel.Info, message=text, name=name))

    def on_transcript(self, msg: Transcript) -> None:
        self.log("heard", f"\"{msg.text}\" ({msg.confidence:.2f})", msg.header.stamp)

    def on_plan(self, msg: ActionPlan) -> None:
        self.log("planner", plan_text(msg), msg.header.stamp)

    def on_say(self, msg: String) -> None:
        self.log("reply", msg.data)

    def close(self) -> None:
        self.server.stop()


def main(args=None) -> int:
    return run_node(FoxgloveBridgeNode, args)


if __name__ == "__main__":
    sys.exit(main())
