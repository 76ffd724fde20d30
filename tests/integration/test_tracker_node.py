"""The tracker node as a real process over DDS, fed real video frames on /camera/image_raw: the HOG detector with
ultralytics' ByteTrack finds and tracks vtest.avi's pedestrians (regions of interest between whole frames); the
YOLO path loads a locally built yolo11n model and runs; a missing weights file stops the node with a clear error;
bad frames are logged and skipped."""
from __future__ import annotations

import time

import numpy as np
import pytest
from sensor_msgs.msg import Image

from mmchat_ros.msg import DetectionArray
from tests.helpers.domains import unused_domain_id
from tests.helpers.faces import CameraStream
from tests.helpers.flight import ros_args
from tests.helpers.processes import python_cmd
from tests.helpers.yolo import vtest, yolo11n_weights

pytestmark = pytest.mark.slow


@pytest.fixture
def domain_id():
    """A domain nobody else on this machine uses: another run's detections, commands or odometry must not leak in."""
    return unused_domain_id()


def start_tracker(spawn, **params):
    node = spawn(python_cmd("mmchat_ros.nodes.tracker", *ros_args(params)), name="tracker")
    node.wait_for_line("tracker ready", timeout=120)
    return node


def test_hog_tracker_publishes_tracked_people_and_a_debug_image_and_survives_bad_frames(spawn, ros):
    # Regions of interest between whole frames, as the sim graph runs it.
    node = start_tracker(spawn, detector="hog", tracker="bytetrack", frame_rate=5.0, hog_scale=1.1,
                         full_frame_every=3)
    assert "whole frame every 3 frames, else regions" in node.output
    detections = ros.collect(DetectionArray, "/detections", "sensor")
    debug = ros.collect(Image, "/detections/debug_image", "sensor")
    camera = CameraStream(ros, rate_hz=5.0)
    try:
        ros.wait_for_subscribers(camera.publisher)
        camera.show(vtest(8, start=470))       # a short stretch with people walking
        ros.wait_for(lambda: any(d.track_id >= 0 for _, m in detections for d in m.detections), 90,
                     "a tracked person on /detections")
        msg = next(m for _, m in reversed(detections) if any(d.track_id >= 0 for d in m.detections))
        assert (msg.image_width, msg.image_height, msg.header.frame_id) == (768, 576, "camera_optical")
        tracked = [d for d in msg.detections if d.track_id >= 0]
        for d in tracked:
            assert (d.class_id, d.class_name) == (0, "person") and 0.0 < d.score <= 1.0
            assert 0 < d.center_x < 768 and 0 < d.center_y < 576 and 40 < d.height < 400 and d.width < d.height
        image = ros.wait_for_message(debug, timeout=30, what="a debug image")
        assert (image.width, image.height, image.encoding) == (768, 576, "rgb8")

        # A frame the detector cannot use is logged and skipped; the node goes on with the next good one.
        camera.show([np.zeros((48, 64), np.uint16)], encoding="mono16")
        node.wait_for_line(r"ignored a camera frame: cannot convert 'mono16' images to RGB", timeout=30)
        count = len(detections)
        camera.show(vtest(2, start=470))
        ros.wait_for(lambda: len(detections) > count + 2, 60, "detections after the bad frames")
        assert node.alive()
    finally:
        camera.stop()


def test_yolo_tracker_runs_a_local_yolo11n_model(spawn, ros):
    weights = yolo11n_weights()
    # Untrained weights score every box ~1e-4: confidence 0 lets their boxes through, filtered to 'person'.
    node = start_tracker(spawn, detector="yolo", weights=str(weights), image_size=320, confidence=0.0,
                         classes="person", tracker="botsort", frame_rate=5.0)
    assert "yolo (yolo11n.pt, 320 px, cpu)" in node.output and "botsort" in node.output
    detections = ros.collect(DetectionArray, "/detections", "sensor")
    camera = CameraStream(ros, rate_hz=5.0)
    try:
        ros.wait_for_subscribers(camera.publisher)
        camera.show(vtest(3, start=470))
        ros.wait_for(lambda: len(detections) >= 5, 90, "five DetectionArray messages from the YOLO path")
        for _, msg in detections:
            assert (msg.image_width, msg.image_height) == (768, 576)
            assert 0 < len(msg.detections) <= 300
            for d in msg.detections:
                assert d.class_id == 0 and d.class_name == "person"
                assert 0 <= d.center_x <= 768 and 0 <= d.center_y <= 576 and d.width > 0 and d.height > 0
        assert "detection failed" not in node.output
    finally:
        camera.stop()


def test_missing_weights_stop_the_node_with_the_file_named_and_how_to_provide_it(spawn, tmp_path):
    missing = tmp_path / "models" / "yolo11n.pt"
    node = spawn(python_cmd("mmchat_ros.nodes.tracker", *ros_args({"weights": str(missing)})), name="tracker")
    deadline = time.monotonic() + 120
    while node.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not node.alive() and node.proc.returncode != 0
    text = node.output
    assert "WeightsNotFoundError" in text and str(missing) in text, text[-2000:]
    assert "copy yolo11n.pt there" in text and "allow_download:=true" in text
    assert not missing.exists(), "nothing may be downloaded"
