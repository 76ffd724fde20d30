"""The tello_driver node flying a Tello SDK emulator on loopback: the driver's real code speaks the real text
protocol (UDP commands, state strings, H.264 video) to tests/helpers/tello_emulator.py, whose airframe is our
MuJoCo quadrotor. The real flight controller (vehicle_interface 'velocity') flies it through the driver."""
import math
import socket
import time

import numpy as np
import pytest
import yaml
from sensor_msgs.msg import BatteryState, CameraInfo, Image

from mmchat_ros.core.geometry import wrap_angle
from mmchat_ros.core.paths import config_file
from tests.helpers.flight import ros_args
from tests.helpers.lifecycle import change_state, get_state
from tests.helpers.processes import python_cmd
from tests.helpers.tello_emulator import TelloEmulator
from tests.helpers.vehicle_flight import VehicleStack, flight_controller_cmd, free_udp_port, wait_at_rest

START_YAW_DEG = 30.0     # the Tello's yaw-0 axis (our odom x) is 30 degrees from the simulator's x
TAKEOFF_HEIGHT_M = yaml.safe_load(config_file("hardware_tello.yaml").read_text())[
    "flight_controller"]["ros__parameters"]["takeoff_height_m"]


@pytest.fixture
def tello_stack(spawn, ros, request):
    """Emulator + tello_driver + flight_controller; yields (emulator, driver process, fc process, stack)."""
    video = getattr(request, "param", {}).get("video", False)
    state_port, video_port, local_port = free_udp_port(), free_udp_port(), free_udp_port()
    emulator = TelloEmulator(state_port, video_port, start_yaw_deg=START_YAW_DEG, video=video).start()
    try:
        driver = spawn(python_cmd("mmchat_ros.nodes.tello_driver", *ros_args({
            "tello_host": "127.0.0.1", "command_port": emulator.command_port, "state_port": state_port,
            "video_port": video_port, "local_command_port": local_port, "bind_host": "127.0.0.1",
            "video_enabled": video})), name="tello_driver")
        fc = spawn(flight_controller_cmd("tello"), name="flight_controller")
        driver.wait_for_line("link up", timeout=60)
        fc.wait_for_line("flight controller ready", timeout=60)
        stack = VehicleStack(ros)
        stack.ports = {"state": state_port, "video": video_port, "command": local_port}
        yield emulator, driver, fc, stack
    finally:
        emulator.stop()
        print("emulator events:", *emulator.events[-40:], sep="\n  ")
    assert not emulator.vehicle.errors, emulator.vehicle.errors


def truth_xy(emulator) -> np.ndarray:
    return emulator.truth().position[:2].copy()


@pytest.mark.slow
@pytest.mark.parametrize("tello_stack", [{"video": True}], indirect=True)
def test_takeoff_fly_turn_land_with_video(tello_stack, ros):
    emulator, driver, fc, stack = tello_stack
    images = ros.collect(Image, "/camera/image_raw", "sensor")
    infos = ros.collect(CameraInfo, "/camera/camera_info", "sensor")
    batteries = ros.collect(BatteryState, "/battery", "sensor")

    stack.take_off()
    ros.wait_for(lambda: abs(stack.position()[2] - TAKEOFF_HEIGHT_M) < 0.15, 20, "odometry at the take-off height")
    assert abs(emulator.truth().position[2] - TAKEOFF_HEIGHT_M) < 0.2, emulator.truth().position
    assert emulator.commands.count("takeoff") == 1 and "command" in emulator.commands
    driver.wait_for_line("take-off done: rc control", timeout=5)
    # In the air the driver refuses to stop its control loop (the Tello would be left to its failsafe).
    assert not change_state(ros, "tello_driver", "deactivate")
    driver.wait_for_line("deactivate refused: the Tello is in the air", timeout=5)
    assert get_state(ros, "tello_driver") == "active"

    # 0.5 m/s along odom x for 3 s: odom x is the Tello's yaw-0 heading, 30 degrees from the simulator's x.
    start_truth, start_odom = truth_xy(emulator), np.array(stack.position()[:2])
    stack.fly("odom", 3.0, vx=0.5)
    wait_at_rest(ros, emulator)
    moved = truth_xy(emulator) - start_truth
    distance, direction = float(np.linalg.norm(moved)), math.degrees(math.atan2(moved[1], moved[0]))
    assert distance > 0.8, f"the vehicle moved only {distance:.2f} m"
    assert abs(direction - START_YAW_DEG) < 15.0, f"moved towards {direction:.0f} deg, expected {START_YAW_DEG}"
    odom_moved = np.array(stack.position()[:2]) - start_odom
    assert odom_moved[0] > 0.8 and abs(odom_moved[1]) < 0.3, f"odometry (dead reckoning) says {odom_moved}"
    assert abs(np.linalg.norm(odom_moved) - distance) < 0.35, (odom_moved, distance)
    assert any(c.startswith("rc ") and c != "rc 0 0 0 0" for c in emulator.commands)

    # Turn left (counter-clockwise) at 0.4 rad/s for 2.5 s: the Tello's yaw (clockwise) falls, ours rises.
    yaw_truth, yaw_odom = emulator.truth().yaw, stack.yaw()
    stack.fly("base_link", 2.5, yaw_rate=0.4)
    wait_at_rest(ros, emulator)
    turned_truth = wrap_angle(emulator.truth().yaw - yaw_truth)
    turned_odom = wrap_angle(stack.yaw() - yaw_odom)
    assert 0.6 < turned_truth < 1.4, f"turned {turned_truth:.2f} rad"
    assert abs(turned_odom - turned_truth) < 0.1, (turned_odom, turned_truth)

    stack.land()
    ros.wait_for(lambda: emulator.truth().mode == "LANDED", 20, "the emulated Tello's motors off")
    truth = emulator.truth()
    assert truth.position[2] < 0.05 and not truth.motors_on, truth
    assert abs(stack.position()[2]) < 0.1

    # Video: the simulator's camera went through libx264 → UDP → the driver's decoder → camera/image_raw.
    ros.wait_for(lambda: images and infos, 10, "decoded camera images")
    image, info = images[-1][1], infos[-1][1]
    assert (image.width, image.height, image.encoding) == (320, 240, "rgb8")
    assert (info.width, info.height) == (320, 240) and info.k[0] > 0
    pixels = np.frombuffer(image.data, np.uint8).reshape(240, 320, 3)
    assert pixels.std() > 5.0, "a blank frame"
    assert emulator.video_frames_sent > 5 and len(images) > 3
    assert batteries and 0.0 < batteries[-1][1].percentage <= 1.0

    # A corrupt access unit (SPS, PPS and IDR slice the decoder cannot parse) on the video port: FFmpeg reports
    # it, the driver logs and skips it; decoding resumes at the next keyframe, which repeats the parameter sets.
    # (Damage inside a slice is concealed by FFmpeg without an error: nothing to log there.)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
        junk.sendto(b"\x00\x00\x00\x01\x67" + b"\xff" * 40 + b"\x00\x00\x00\x01\x68" + b"\xff" * 8
                    + b"\x00\x00\x00\x01\x65" + b"\xff" * 64, ("127.0.0.1", stack.ports["video"]))
    driver.wait_for_line(r"ignored bad video data: H.264 decoding failed", timeout=5)
    count = len(images)
    ros.wait_for(lambda: len(images) > count + 3, 10, "decoded images after the corrupt data")

    # On the ground the driver may stop: inactive, it publishes nothing; active again, the video is back.
    assert change_state(ros, "tello_driver", "deactivate")
    time.sleep(0.5)     # grace for frames already on their way; then none may come for a second
    count = len(images)
    time.sleep(1.0)
    assert len(images) == count, "an inactive driver publishes nothing"
    assert change_state(ros, "tello_driver", "activate")
    ros.wait_for(lambda: len(images) > count + 3, 10, "decoded images after activate")


@pytest.mark.slow
def test_garbage_is_ignored_and_link_loss_lands(tello_stack, ros):
    emulator, driver, fc, stack = tello_stack
    stack.take_off()

    # Garbage on every port the driver listens to: logged, ignored, odometry keeps flowing.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
        for payload in (b"\xff\xfe\x00binary", b"pitch:abc;roll:0;", b"hello", b"pitch:0;roll:0;yaw:0;"):
            junk.sendto(payload, ("127.0.0.1", stack.ports["state"]))
        junk.sendto(b"ok", ("127.0.0.1", stack.ports["command"]))          # a reply nobody asked for
    driver.wait_for_line(r"ignored a bad state packet: state datagram is not ASCII", timeout=5)
    driver.wait_for_line(r"ignored a bad or unexpected reply: unrequested reply 'ok'", timeout=5)
    t0 = time.monotonic()
    ros.wait_for(lambda: stack.odometry_count_since(t0) >= 5, 10, "odometry to keep flowing after the garbage")
    assert stack.mode() == "HOVER"

    # Out of Wi-Fi range: nothing passes either way.
    emulator.link_up = False
    driver.wait_for_line("link lost", timeout=5)
    time.sleep(0.2)     # grace for an rc command already on its way when the link was declared lost
    dropped_at_detection = emulator.dropped              # rc kept coming until the driver noticed (1 s)
    stack.wait_mode("LANDING", 5)                       # the flight controller: odometry lost → land open loop
    stack.wait_mode("LANDED", 30)                       # ... and gives up on the vehicle once it must be down
    assert emulator.dropped - dropped_at_detection <= 1, "the driver kept talking to a lost Tello (that would defeat " \
                                                   "its own 15 s no-command landing)"
    assert emulator.truth().position[2] > 0.5, "the emulated Tello should still be hovering (sticks at rest)"

    # Back in range: the controller no longer enables the vehicle and the Tello is in the air → land.
    commands_before = len(emulator.commands)
    emulator.link_up = True
    driver.wait_for_line("link restored", timeout=10)
    ros.wait_for(lambda: "land" in emulator.commands[commands_before:], 10, "'land' after the link came back")
    ros.wait_for(lambda: emulator.truth().mode == "LANDED", 30, "the emulated Tello on the ground")
    assert emulator.truth().position[2] < 0.05
    assert driver.alive()
