"""End to end in simulation: real hands in the camera fly the simulated drone.

Frames of real hand photos (tests/helpers/hands.py: OpenCV's open-hand photos with fingers folded into each
gesture) are published as the onboard camera's topic; the real chain camera (relay) → gesture (MediaPipe +
classifier) → teleop (config/gestures.yaml, the default mapping) → flight_controller → MuJoCo sim runs as
separate processes, and the test asserts on /odom: thumbs up takes off, pointing up climbs, an open palm holds,
thumb left turns the drone left, a fist lands it.
"""
from __future__ import annotations

import math
import time

import pytest

from tests.helpers import hands as photos
from tests.helpers.flight import FlightClient, ros_args, start_stack, yaw_of
from tests.helpers.processes import python_cmd

pytestmark = [pytest.mark.slow, pytest.mark.sim,
              pytest.mark.skipif(not photos.photos_available(), reason="Debian's opencv-doc photos not installed")]
CAMERA_TOPIC = "/sim/camera/image_raw"


def heights(flight, since):
    return [m.pose.pose.position.z for m in flight.odom_since(since)]


def unwrapped_yaw_change(flight, since):
    yaws = [yaw_of(m) for m in flight.odom_since(since)]
    return sum(math.remainder(b - a, math.tau) for a, b in zip(yaws, yaws[1:]))


def test_hand_gestures_take_off_climb_hold_turn_and_land_the_simulated_drone(spawn, ros, ros_env, tmp_path):
    stack = start_stack(ros_env, tmp_path, fc_params={"hover_land_timeout_s": 120.0})
    player = None
    try:
        camera = spawn(python_cmd("mmchat_ros.nodes.camera", *ros_args({
            "source": "topic", "input_topic": CAMERA_TOPIC, "rate_hz": 15.0, "width": 640, "height": 480})),
            name="camera")
        gesture = spawn(python_cmd("mmchat_ros.nodes.gesture", *ros_args({"hold_frames": 4})), name="gesture")
        teleop = spawn(python_cmd("mmchat_ros.nodes.teleop"), name="teleop")
        camera.wait_for_line("camera ready", timeout=30)
        gesture.wait_for_line("gesture recogniser ready", timeout=60)
        teleop.wait_for_line("teleop ready", timeout=30)
        for service in ("/takeoff", "/land"):                    # discovery takes seconds on a busy host
            teleop.wait_for_line(f"service {service} available", timeout=30)
        flight = FlightClient(ros)
        assert flight.mode() == "LANDED"
        player = photos.FramePlayer(ros, CAMERA_TOPIC, fps=15.0)
        ros.wait_for_subscribers(player.publisher, timeout=20)

        # Thumbs up → take off; then the hand goes and the drone settles at the take-off height.
        start = time.monotonic()
        player.show(photos.shot("thumbs_up"))
        ros.wait_for(lambda: flight.mode() not in ("LANDED", ""), 30, "the take-off to start")
        teleop.wait_for_line("takeoff: accepted", timeout=5)
        player.show(photos.empty_frame())
        flight.wait_mode("HOVER", timeout=40)
        flight.wait_altitude(1.5, 0.15, timeout=20)
        assert max(heights(flight, start)) > 1.3

        # Pointing up → climb at the mapping's 0.4 m/s.
        before_climb = flight.position()[2]
        climb_start = time.monotonic()
        player.show(photos.shot("pointing_up"))
        ros.wait_for(lambda: flight.state().active_source == "teleop", 10, "teleop in control")
        ros.wait_for(lambda: flight.position()[2] > before_climb + 0.8, 15, "a climb of 0.8 m")

        # Open palm → hover where it is.
        player.show(photos.shot("open_palm"))
        ros.wait_for(lambda: abs(flight.odom[-1][1].twist.twist.linear.z) < 0.05, 10, "the climb to stop")
        hold_start = time.monotonic()
        time.sleep(2.0)
        held = heights(flight, hold_start)
        assert max(held) - min(held) < 0.1, (min(held), max(held))
        climbed = min(held) - before_climb
        assert climbed > 0.8, climbed
        assert flight.state().active_source == "teleop"       # the visible hand keeps control, at zero velocity

        # Thumb left (the user's left) → turn left: counter-clockwise, yaw increasing, at the same height.
        turn_start = time.monotonic()
        player.show(photos.shot("thumb_left"))
        # Past 50 deg before the palm: the yaw hold settles back a little once the turn stops (44.93 deg left of 45
        # in a full run, the palm shown the moment 45 was passed).
        ros.wait_for(lambda: unwrapped_yaw_change(flight, turn_start) > math.radians(50), 15, "a 50 deg turn left")
        player.show(photos.shot("open_palm"))
        time.sleep(1.0)
        turned = unwrapped_yaw_change(flight, turn_start)
        assert math.radians(45) < turned < math.radians(180), math.degrees(turned)
        assert max(abs(z - min(held)) for z in heights(flight, turn_start)) < 0.15

        # Fist → land.
        player.show(photos.shot("fist"))
        flight.wait_mode("LANDING", timeout=15)
        player.show(photos.empty_frame())
        flight.wait_mode("LANDED", timeout=60)
        time.sleep(0.5)
        assert flight.position()[2] < 0.15
        assert flight.state().armed is False
        whole_flight = heights(flight, start)
        assert max(whole_flight) > 1.5 + 0.8
        for process in (camera, gesture, teleop, *stack):
            assert process.alive(), f"{process.name} died"
    finally:
        if player is not None:
            player.stop()
        for process in stack:
            process.stop()
