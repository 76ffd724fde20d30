"""`mmchat view`: the real foxglove_bridge node, fed over DDS, watched by a WebSocket client on loopback speaking
the Foxglove protocol: it advertises the channels, and what comes out decodes (protobuf from the advertised
schemas, JSON) to what went in: the camera frame, its annotations, the drone's transform, setpoint vs state."""
from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading
import time

import cv2
import numpy as np
import pytest
from geometry_msgs.msg import Point, PoseStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Image
from std_msgs.msg import String

from mmchat_ros.core.gestures import HAND_CONNECTIONS
from mmchat_ros.msg import Detection, DetectionArray, FlightState, Gesture
from mmchat_ros.nodes.common import COMMAND_QOS, SENSOR_QOS, STATE_QOS
from mmchat_ros.nodes.image_conversion import numpy_to_image
from tests.helpers.processes import python_cmd

pytestmark = pytest.mark.slow
websockets = pytest.importorskip("websockets")
PHOTO = "/usr/share/doc/opencv-doc/examples/data/messi5.jpg"
EXPECTED = {"/camera/image/compressed": "foxglove.CompressedImage", "/camera/annotations": "foxglove.ImageAnnotations",
            "/tf": "foxglove.FrameTransforms", "/drone/pose": "foxglove.PoseInFrame", "/log": "foxglove.Log",
            "/plot/setpoint_vs_state": "mmchat.SetpointVsState"}
JSON_CHANNELS = ("/plot/setpoint_vs_state", "/plot/velocity_command", "/flight/state", "/auth/state")


def protobuf_class(channel: dict):
    """The message class of a protobuf channel, built from the FileDescriptorSet the server advertised."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"]))
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(channel["schemaName"]))


def camera_frame() -> np.ndarray:
    image = cv2.imread(PHOTO, cv2.IMREAD_COLOR)
    if image is None:
        pytest.skip(f"{PHOTO} missing (Debian package opencv-doc)")
    return cv2.cvtColor(cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


async def watch(port: int, done, timeout: float) -> tuple[dict, dict]:
    """Connect, subscribe to every advertised channel, collect decoded messages until ``done(got)`` (or timeout).
    Returns (channels by topic, decoded messages by topic: lists)."""
    async with websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1", "foxglove.websocket.v1"],
                                  max_size=None) as ws:
        channels: dict[str, dict] = {}
        by_id: dict[int, dict] = {}
        got: dict[str, list] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(got):
            try:
                frame = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            if isinstance(frame, str):
                message = json.loads(frame)
                if message["op"] == "advertise":
                    subscriptions = []
                    for channel in message["channels"]:
                        channels[channel["topic"]] = channel
                        sub_id = len(by_id) + 1
                        by_id[sub_id] = channel
                        subscriptions.append({"id": sub_id, "channelId": channel["id"]})
                    await ws.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))
                continue
            opcode, sub_id, _log_time = struct.unpack_from("<BIQ", frame)
            assert opcode == 1, f"unexpected binary opcode {opcode}"
            channel = by_id[sub_id]
            payload = frame[13:]
            if channel["encoding"] == "json":
                decoded = json.loads(payload)
            else:
                decoded = protobuf_class(channel).FromString(payload)
            got.setdefault(channel["topic"], []).append(decoded)
        return channels, got


def test_view_advertises_the_graph_and_streams_what_it_receives(spawn, ros):
    bridge = spawn(python_cmd("mmchat_ros.nodes.foxglove_bridge", "--ros-args", "-p", "port:=0",
                              "-p", "max_image_rate_hz:=20.0"), name="foxglove_bridge")
    port = int(bridge.wait_for_line(r"foxglove server on ws://127\.0\.0\.1:(\d+)", timeout=60).group(1))

    rgb = camera_frame()
    image_pub = ros.node.create_publisher(Image, "/camera/image_raw", SENSOR_QOS)
    detections_pub = ros.node.create_publisher(DetectionArray, "/detections", SENSOR_QOS)
    gesture_pub = ros.node.create_publisher(Gesture, "/gesture", COMMAND_QOS)
    odom_pub = ros.node.create_publisher(Odometry, "/odom", SENSOR_QOS)
    setpoint_pub = ros.node.create_publisher(PoseStamped, "/flight/setpoint", SENSOR_QOS)
    state_pub = ros.node.create_publisher(FlightState, "/flight/state", STATE_QOS)
    say_pub = ros.node.create_publisher(String, "/tts/say", COMMAND_QOS)
    state_pub.publish(FlightState(mode="HOVER", armed=True, battery_percentage=0.8))
    stop = threading.Event()

    def publish_loop():
        while not stop.is_set():
            stamp = ros.node.get_clock().now().to_msg()
            detections = DetectionArray(image_width=640, image_height=480, detections=[Detection(
                class_name="person", score=0.9, center_x=320.0, center_y=240.0, width=100.0, height=200.0,
                track_id=4)])
            detections.header.stamp = stamp
            gesture = Gesture(name="open_palm", confidence=0.95, stable=True, num_hands=1,
                              landmarks=[Point(x=0.3 + 0.01 * i, y=0.4, z=0.0) for i in range(21)])
            gesture.header.stamp = stamp
            detections_pub.publish(detections)
            gesture_pub.publish(gesture)
            image = numpy_to_image(rgb, "rgb8")
            image.header.stamp, image.header.frame_id = stamp, "camera_optical"
            image_pub.publish(image)
            odom = Odometry()
            odom.header.stamp, odom.header.frame_id, odom.child_frame_id = stamp, "odom", "base_link"
            odom.pose.pose.position.x, odom.pose.pose.position.z = 0.5, 1.4
            odom.pose.pose.orientation.w = 1.0
            odom_pub.publish(odom)
            setpoint = PoseStamped()
            setpoint.header.stamp = stamp
            setpoint.pose.position.x, setpoint.pose.position.z = 0.5, 1.5
            setpoint.pose.orientation.w = 1.0
            setpoint_pub.publish(setpoint)
            say_pub.publish(String(data="Taking off."))
            stop.wait(0.1)
    def carries_box_and_hand(annotation) -> bool:
        return any(len(p.points) == 2 * len(HAND_CONNECTIONS) for p in annotation.points) \
            and any(len(p.points) == 4 for p in annotation.points)

    publisher = threading.Thread(target=publish_loop, daemon=True)
    publisher.start()
    try:
        # Until a frame carries both overlays: detections and gestures come on topics of their own, and a frame can
        # arrive before either, or between them.
        channels, got = asyncio.run(watch(port, lambda got: (
            set(EXPECTED) | {"/flight/state"} <= set(got)
            and any(carries_box_and_hand(a) for a in got["/camera/annotations"])
            and any(p["setpoint"] for p in got["/plot/setpoint_vs_state"])
            and any(log.name == "reply" for log in got["/log"])), timeout=40))
    finally:
        stop.set()
        publisher.join(timeout=5)

    for topic, schema in EXPECTED.items():
        assert topic in channels, f"{topic} not advertised (got {sorted(channels)})"
        assert channels[topic]["schemaName"] == schema
    for topic in JSON_CHANNELS:
        assert channels[topic]["encoding"] == "json"
    missing = set(EXPECTED) - {t for t, msgs in got.items() if msgs}
    assert not missing, f"no messages on {missing}; bridge output:\n{bridge.output}"

    image = got["/camera/image/compressed"][-1]
    assert image.format == "jpeg" and image.frame_id == "camera_optical"
    decoded = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (240, 320, 3)
    assert np.abs(decoded[:, :, ::-1].astype(int) - rgb).mean() < 8, "the JPEG shows the published frame"

    # Annotations are stamped like their image, boxes rescaled from the detector's 640x480 to the 320x240 frame.
    annotations = got["/camera/annotations"]
    image_stamps = {(i.timestamp.seconds, i.timestamp.nanos) for i in got["/camera/image/compressed"]}
    # A frame can arrive between a detections message and the next gesture: the last one carrying both is checked.
    annotated = [a for a in annotations if carries_box_and_hand(a)]
    assert annotated, "detections and landmarks were published before every frame: some frame must carry them"
    last = annotated[-1]
    loops = [p for p in last.points if len(p.points) == 4]
    assert [(pt.x, pt.y) for pt in loops[0].points] == [(135.0, 70.0), (185.0, 70.0), (185.0, 170.0), (135.0, 170.0)]
    skeleton = [p for p in last.points if len(p.points) == 2 * len(HAND_CONNECTIONS)]
    assert skeleton, "the hand skeleton is drawn as one line list"
    assert any(t.text == "gesture: open_palm 0.95" for t in last.texts)
    assert any(t.text == "#4 person 0.90" for t in last.texts)
    assert (last.timestamp.seconds, last.timestamp.nanos) in image_stamps

    transform = got["/tf"][-1].transforms[0]
    assert (transform.parent_frame_id, transform.child_frame_id) == ("odom", "base_link")
    assert (transform.translation.x, transform.translation.z) == (0.5, 1.4)
    assert got["/drone/pose"][-1].pose.position.z == 1.4

    plot = [p for p in got["/plot/setpoint_vs_state"] if p["setpoint"]][-1]
    assert plot["state"]["z"] == 1.4 and plot["setpoint"]["z"] == 1.5
    assert abs(plot["error"]["z"] - 0.1) < 1e-9 and plot["setpoint_age_s"] < 1.0
    assert got["/flight/state"][-1]["mode"] == "HOVER" and got["/flight/state"][-1]["battery"] == pytest.approx(0.8)
    assert any(log.message == "Taking off." and log.name == "reply" for log in got["/log"])


def test_view_logs_bad_frames_and_keeps_running(spawn, ros):
    bridge = spawn(python_cmd("mmchat_ros.nodes.foxglove_bridge", "--ros-args", "-p", "port:=0"),
                   name="foxglove_bridge")
    port = int(bridge.wait_for_line(r"foxglove server on ws://127\.0\.0\.1:(\d+)", timeout=60).group(1))
    image_pub = ros.node.create_publisher(Image, "/camera/image_raw", SENSOR_QOS)
    good = numpy_to_image(np.full((48, 64, 3), 90, np.uint8), "rgb8")
    bad = Image(width=64, height=48, encoding="yuv422", step=128, data=bytes(128 * 48))
    stop = threading.Event()

    def publish_loop():
        while not stop.is_set():
            image_pub.publish(bad)
            stop.wait(0.1)
            image_pub.publish(good)
            stop.wait(0.1)
    publisher = threading.Thread(target=publish_loop, daemon=True)
    publisher.start()
    try:
        _, got = asyncio.run(watch(port, lambda got: len(got.get("/camera/image/compressed", [])) >= 3, timeout=30))
    finally:
        stop.set()
        publisher.join(timeout=5)
    bridge.wait_for_line(r"cannot show a camera frame: cannot convert 'yuv422' images to RGB", timeout=10)
    assert got.get("/camera/image/compressed"), "good frames still flow after bad ones"
    assert bridge.alive()


def test_view_reads_camera_and_odometry_only_while_a_client_watches(spawn, ros):
    """With no client the bridge does not even subscribe to /camera/image_raw and /odom (subscribe_on_demand):
    a bridge nobody looks at costs no image or 250 Hz odometry deserialisation."""
    bridge = spawn(python_cmd("mmchat_ros.nodes.foxglove_bridge", "--ros-args", "-p", "port:=0"),
                   name="foxglove_bridge")
    port = int(bridge.wait_for_line(r"foxglove server on ws://127\.0\.0\.1:(\d+)", timeout=60).group(1))
    image_pub = ros.node.create_publisher(Image, "/camera/image_raw", SENSOR_QOS)
    odom_pub = ros.node.create_publisher(Odometry, "/odom", SENSOR_QOS)
    state_pub = ros.node.create_publisher(FlightState, "/flight/state", STATE_QOS)
    ros.wait_for_subscribers(state_pub, timeout=20)            # the bridge is discovered...
    time.sleep(1.0)                                            # a negative check
    assert (image_pub.get_subscription_count(), odom_pub.get_subscription_count()) == (0, 0)   # ...and reads neither

    stop = threading.Event()
    frame = numpy_to_image(np.full((48, 64, 3), 90, np.uint8), "rgb8")

    def publish_loop():
        while not stop.is_set():
            image_pub.publish(frame)
            odom = Odometry()
            odom.pose.pose.orientation.w = 1.0
            odom_pub.publish(odom)
            stop.wait(0.1)
    publisher = threading.Thread(target=publish_loop, daemon=True)
    publisher.start()
    try:
        _, got = asyncio.run(watch(port, lambda got: {"/camera/image/compressed", "/tf"} <= set(got), timeout=30))
    finally:
        stop.set()
        publisher.join(timeout=5)
    assert {"/camera/image/compressed", "/tf"} <= set(got), f"a watching client gets frames and poses: {sorted(got)}"
    ros.wait_for(lambda: image_pub.get_subscription_count() == 0 and odom_pub.get_subscription_count() == 0, 10,
                 "the bridge to unsubscribe once the client has gone")
