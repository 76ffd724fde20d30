"""'Describe the scene' with a vision model: the real `ollama` client (backends/llm.py OllamaVision) against a
local server speaking Ollama's API (tests/helpers/ollama_server.py), alone and inside the real planner node, fed a
real photograph on /camera/image_raw and detections on /detections over DDS."""
import socket
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import String

from mmchat_ros.backends.llm import OllamaVision
from mmchat_ros.core.planner import LlmUnavailable
from mmchat_ros.msg import Detection, DetectionArray
from mmchat_ros.nodes.common import COMMAND_QOS, SENSOR_QOS
from mmchat_ros.nodes.image_conversion import numpy_to_image
from mmchat_ros.srv import SubmitCommand
from tests.helpers.flight import ros_args
from tests.helpers.ollama_server import FakeOllama
from tests.helpers.processes import python_cmd

PHOTO = Path("/usr/share/doc/opencv-doc/examples/data/basketball1.png")     # Debian's opencv-doc: real people


def photo_rgb() -> np.ndarray:
    bgr = cv2.imread(str(PHOTO))
    assert bgr is not None, f"{PHOTO} missing (Debian package opencv-doc)"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decoded(jpeg: bytes) -> np.ndarray:
    assert jpeg[:3] == b"\xff\xd8\xff", "not a JPEG"
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, "the JPEG does not decode"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def assert_same_picture(jpeg: bytes, rgb: np.ndarray):
    got = decoded(jpeg)
    assert got.shape == rgb.shape, (got.shape, rgb.shape)
    difference = np.abs(got.astype(np.int16) - rgb.astype(np.int16)).mean()
    assert difference < 4.0, f"mean absolute difference {difference:.1f} grey levels: not this frame"
    # Channel order kept (a swapped R/B would still be 'close' on grey areas): compare the channel means too.
    assert np.allclose(got.reshape(-1, 3).mean(0), rgb.reshape(-1, 3).mean(0), atol=2.0)


def test_ollama_vision_sends_the_frame_as_a_jpeg_in_images_and_returns_the_description():
    rgb = photo_rgb()
    with FakeOllama("moondream") as server:
        server.vision_answer = "Two basketball players on a court."
        vision = OllamaVision(server.url, "moondream", timeout_s=5)
        assert vision.describe(rgb, "describe the scene") == "Two basketball players on a court."
        request = server.requests[-1]
        assert request["model"] == "moondream" and request["stream"] is False
        message = request["messages"][-1]
        assert message["role"] == "user" and "describe the scene" in message["content"]
        assert "format" not in request or not request["format"]          # free text, not the plan schema
        assert len(server.images) == 1
        assert_same_picture(server.images[0], rgb)
        # A large frame is scaled down (longer side 672 px) before it goes over the wire.
        big = cv2.resize(rgb, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_LINEAR)
        vision.describe(big)
        assert max(decoded(server.images[-1]).shape[:2]) == 672


def test_ollama_vision_unreachable_or_model_missing_is_llm_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(LlmUnavailable, match="Ollama at"):
        OllamaVision(f"http://127.0.0.1:{port}", "moondream", timeout_s=2).describe(photo_rgb())
    with FakeOllama("llava") as server:
        with pytest.raises(LlmUnavailable, match="not found"):
            OllamaVision(server.url, "moondream", timeout_s=5).describe(photo_rgb())


def start_camera_feed(ros):
    """Publishes the photo on /camera/image_raw and two tracked people on /detections at 5 Hz (sensor QoS), as
    the camera and tracker nodes would. Returns the photo and the timer (cancel it to stop)."""
    rgb = photo_rgb()
    height, width = rgb.shape[:2]
    image_pub = ros.node.create_publisher(Image, "/camera/image_raw", SENSOR_QOS)
    detections_pub = ros.node.create_publisher(DetectionArray, "/detections", SENSOR_QOS)
    frame = numpy_to_image(rgb, "rgb8")
    people = DetectionArray(image_width=width, image_height=height, detections=[
        Detection(class_name="person", track_id=1, center_x=0.15 * width, center_y=0.5 * height,
                  width=0.1 * width, height=0.6 * height),
        Detection(class_name="person", track_id=2, center_x=0.85 * width, center_y=0.5 * height,
                  width=0.05 * width, height=0.1 * height)])

    def publish():
        stamp = ros.node.get_clock().now().to_msg()
        frame.header.stamp = people.header.stamp = stamp
        image_pub.publish(frame)
        detections_pub.publish(people)
    timer = ros.node.create_timer(0.2, publish)
    ros.wait_for_subscribers(image_pub, timeout=30)
    ros.wait_for_subscribers(detections_pub, timeout=30)
    return rgb, timer


def ask(ros, text: str, timeout: float = 20.0):
    return ros.call(SubmitCommand, "/submit_command", SubmitCommand.Request(text=text), timeout=timeout)


def test_describe_the_scene_sends_the_newest_frame_to_the_vision_model_and_speaks_its_answer(spawn, ros):
    with FakeOllama("moondream") as server:
        server.vision_answer = "Two **basketball players** on an indoor court.\nOne holds the ball."
        planner = spawn(python_cmd("mmchat_ros.nodes.planner", *ros_args(
            {"llm_backend": "none", "require_authorisation": False, "vision_backend": "ollama",
             "vision_model": "moondream", "ollama_host": server.url, "vision_timeout_s": 1.5})), name="planner")
        planner.wait_for_line("planner ready", timeout=60)
        assert "vision ollama moondream" in planner.output
        said = ros.collect(String, "/tts/say", COMMAND_QOS)
        assert ask(ros, "what do you see?").reply == \
            "I have no recent camera detections, so I can't tell what's around me."
        assert ask(ros, "describe the scene").reply == "Let me have a look."
        ros.wait_for_message(said, lambda m: m.data.startswith("I couldn't get a description from the vision model "
                                                               "(no recent camera frame)"), what="no frame yet")
        assert server.images == []
        rgb, feed = start_camera_feed(ros)          # the camera and the tracker start after the planner

        # "What do you see" is the tracker's view, once its detections arrive: no frame goes to the vision model.
        replies = []
        ros.wait_for(lambda: replies.append(ask(ros, "what do you see?")) or replies[-1].reply.startswith("I see"),
                     20, "an answer from the detections")
        response = replies[-1]
        assert not response.accepted and response.plan_id == ""
        assert response.reply == "I see two people: one on the left, close, and one on the right, far away.", \
            response.reply
        assert server.images == []

        # "Describe the scene": the newest frame goes to the vision model; its answer is spoken, tidied.
        t0 = time.monotonic()
        response = ask(ros, "describe the scene")
        assert not response.accepted and response.reply == "Let me have a look."
        answer = ros.wait_for_message(said, lambda m: "court" in m.data, timeout=10, what="the vision answer")
        assert answer.data == "Two basketball players on an indoor court. One holds the ball."
        assert len(server.images) == 1
        assert_same_picture(server.images[0], rgb)
        assert any(m.data == "Let me have a look." for t, m in said if t >= t0)
        planner.wait_for_line(r"vision answered in \d+ ms", timeout=5)

        # A vision model slower than vision_timeout_s: the planner says so and describes the detections; the
        # executor is not blocked meanwhile (another question is answered at once).
        server.vision_delay_s = 4.0
        t1 = time.monotonic()
        response = ask(ros, "describe the scene")
        assert response.reply == "Let me have a look."
        battery = ask(ros, "how much battery is left", timeout=5)
        assert battery.reply == "I don't know my battery level yet.", battery.reply
        fallback = ros.wait_for_message(said, lambda m: "no answer within" in m.data, timeout=10,
                                        what=lambda: f"the fallback; said {[m.data for _, m in said]}\n"
                                                     f"--- planner ---\n{planner.output[-3000:]}")
        waited = time.monotonic() - t1
        assert fallback.data == ("I couldn't get a description from the vision model (no answer within 1.5 "
                                 "seconds). I see two people: one on the left, close, and one on the right, "
                                 "far away.")
        assert 1.4 < waited < 4.0, f"the fallback came {waited:.1f} s after the question"
        assert len(server.images) == 2
        feed.cancel()
