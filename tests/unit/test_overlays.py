"""Overlay geometry (detection boxes, hand skeletons), overlay freshness, and setpoint-vs-state plot samples."""
import math

from geometry_msgs.msg import Point, Pose

from mmchat_ros.core.gestures import HAND_CONNECTIONS
from mmchat_ros.core.overlays import (UNTRACKED_COLOUR, LatestByStamp, build_overlay, detection_boxes,
                                      hand_skeleton, pose_sample, rgb_hex, setpoint_vs_state, track_colour)
from mmchat_ros.msg import Detection, DetectionArray, Gesture


def test_boxes_are_scaled_from_the_detectors_image_to_the_drawn_frame():
    detections = DetectionArray(image_width=640, image_height=480, detections=[
        Detection(class_name="person", score=0.8, center_x=320.0, center_y=240.0, width=100.0, height=200.0,
                  track_id=3),
        Detection(class_name="person", score=0.4, center_x=10.0, center_y=10.0, width=4.0, height=4.0, track_id=-1),
        Detection(class_name="bad", center_x=float("nan"), width=1.0, height=1.0)])
    overlay = build_overlay(320, 240, detections)
    assert len(overlay.boxes) == 2, "the non-finite box is left out"
    tracked, untracked = overlay.boxes
    assert tracked.corners == ((135.0, 70.0), (185.0, 70.0), (185.0, 170.0), (135.0, 170.0))
    assert tracked.label == "#3 person 0.80" and untracked.label == "person 0.40"
    assert untracked.colour == UNTRACKED_COLOUR and tracked.colour == track_colour(3) != track_colour(4)


def test_hand_skeleton_is_in_pixels_and_only_for_a_whole_finite_hand():
    landmarks = [Point(x=i / 20, y=0.5, z=0.0) for i in range(21)]
    skeleton = hand_skeleton(landmarks, 320, 240, "open_palm")
    assert skeleton.points[20] == (320.0, 120.0) and skeleton.segments == HAND_CONNECTIONS
    assert hand_skeleton(landmarks[:20], 320, 240) is None
    assert hand_skeleton([*landmarks[:20], Point(x=math.inf, y=0.0)], 320, 240) is None


def test_overlay_of_a_gesture_has_its_caption_and_none_without_hands():
    gesture = Gesture(name="fist", confidence=0.9, stable=True, num_hands=1,
                      landmarks=[Point(x=0.5, y=0.5) for _ in range(21)])
    overlay = build_overlay(320, 240, gesture=gesture)
    assert overlay.caption == "fist 0.90" and len(overlay.hands) == 1
    assert build_overlay(320, 240, gesture=Gesture(name="none", num_hands=0)).hands == ()
    data = overlay.as_dict()
    assert data["hands"][0]["colour"].startswith("#") and data["width"] == 320
    assert rgb_hex((1.0, 0.0, 0.5)) == "#ff0080"


def test_inference_outputs_are_drawn_only_near_their_frame():
    latest = LatestByStamp(max_age_s=0.5)
    assert latest.fresh_for(10.0) is None
    latest.update("detections", 10.0)
    assert latest.fresh_for(10.3) == "detections"
    assert latest.fresh_for(11.0) is None


def test_setpoint_vs_state_errors_wrap_yaw():
    state = {"x": 1.0, "y": 0.0, "z": 1.4, "yaw_deg": 170.0}
    sample = setpoint_vs_state(state, {"x": 2.0, "y": 0.5, "z": 1.5, "yaw_deg": -170.0}, 0.1)
    assert sample["error"]["x"] == 1.0 and abs(sample["error"]["z"] - 0.1) < 1e-9
    assert abs(sample["error"]["yaw_deg"] - 20.0) < 1e-9
    assert setpoint_vs_state(state, None)["error"] is None


def test_pose_sample_reads_heading_from_the_quaternion():
    pose = Pose()
    pose.position.z = 1.5
    pose.orientation.z, pose.orientation.w = math.sin(math.pi / 4), math.cos(math.pi / 4)
    sample = pose_sample(pose)
    assert sample["z"] == 1.5 and abs(sample["yaw_deg"] - 90.0) < 1e-9
    assert detection_boxes([]) == []
