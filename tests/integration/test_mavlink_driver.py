"""The mavlink_driver node flying a MAVLink vehicle emulator on loopback: the driver's real pymavlink code talks real
MAVLink 2 to tests/helpers/mavlink_emulator.py (PX4 offboard or ArduCopter guided semantics), whose airframe is
our MuJoCo quadrotor. The real flight controller (vehicle_interface 'velocity') flies it through the driver."""
import math
import socket
import time

import numpy as np
import pytest
from sensor_msgs.msg import BatteryState, Imu

from tests.helpers.flight import ros_args
from tests.helpers.lifecycle import change_state, get_state
from tests.helpers.mavlink_emulator import MavlinkVehicleEmulator
from tests.helpers.processes import python_cmd
from tests.helpers.vehicle_flight import VehicleStack, flight_controller_cmd, free_udp_port, wait_at_rest

START_YAW_DEG = 60.0      # ENU: the vehicle's nose points 60 degrees left of east (NED heading 30 degrees)


@pytest.fixture
def mavlink_stack(spawn, ros, request):
    """Emulator + mavlink_driver + flight_controller; yields (emulator, driver process, stack)."""
    options = dict(getattr(request, "param", {}))
    port = free_udp_port()
    emulator = MavlinkVehicleEmulator(port, start_yaw_deg=START_YAW_DEG, **options).start()
    try:
        driver = spawn(python_cmd("mmchat_ros.nodes.mavlink_driver", *ros_args({
            "connection_url": f"udpin:127.0.0.1:{port}"})), name="mavlink_driver")
        fc = spawn(flight_controller_cmd("mavlink"), name="flight_controller")
        driver.wait_for_line("link up", timeout=60)
        fc.wait_for_line("flight controller ready", timeout=60)
        stack = VehicleStack(ros)
        stack.port = port
        yield emulator, driver, stack
    finally:
        emulator.stop()
        print("emulator events:", *emulator.events[-40:], sep="\n  ")
    assert not emulator.vehicle.errors, emulator.vehicle.errors


@pytest.mark.slow
@pytest.mark.parametrize("mavlink_stack", [{"autopilot": "px4"}], indirect=True)
def test_px4_offboard_takeoff_fly_land(mavlink_stack, ros):
    emulator, driver, stack = mavlink_stack
    imus = ros.collect(Imu, "/imu", "sensor")
    batteries = ros.collect(BatteryState, "/battery", "sensor")
    stack.take_off()
    driver.wait_for_line("requesting OFFBOARD", timeout=1)
    assert any("mode OFFBOARD" in e for e in emulator.events) and any("armed" in e for e in emulator.events)
    ros.wait_for(lambda: abs(stack.position()[2] - 1.5) < 0.12, 20, "odometry at the take-off height")
    assert abs(emulator.truth().position[2] - 1.5) < 0.15
    assert abs(stack.yaw() - math.radians(START_YAW_DEG)) < 0.05, "odometry heading (ENU) != the vehicle's"
    # In the air the driver refuses to stop streaming set-points (the vehicle would be left to its failsafe).
    assert not change_state(ros, "mavlink_driver", "deactivate")
    driver.wait_for_line("deactivate refused: the vehicle is armed or in the air", timeout=5)
    assert get_state(ros, "mavlink_driver") == "active"

    # Forward (the vehicle's nose) at 0.6 m/s for 3 s: the simulator must move along its 60-degree heading.
    start, start_odom = emulator.truth().position[:2].copy(), np.array(stack.position()[:2])
    stack.fly("base_link", 3.0, vx=0.6)
    wait_at_rest(ros, emulator)
    moved = emulator.truth().position[:2] - start
    direction = math.degrees(math.atan2(moved[1], moved[0]))
    assert np.linalg.norm(moved) > 1.0, f"moved only {moved}"
    assert abs(direction - START_YAW_DEG) < 10.0, f"moved towards {direction:.0f} deg, nose at {START_YAW_DEG}"
    odom_moved = np.array(stack.position()[:2]) - start_odom
    assert np.linalg.norm(odom_moved - moved) < 0.1, f"odometry {odom_moved} vs truth {moved}"
    # World frame: 0.5 m/s north (ENU +y) for 2 s, with a counter-clockwise turn.
    start = emulator.truth().position[:2].copy()
    yaw0 = emulator.truth().yaw
    stack.fly("odom", 2.0, vy=0.5, yaw_rate=0.3)
    wait_at_rest(ros, emulator)
    moved = emulator.truth().position[:2] - start
    assert moved[1] > 0.6 and abs(moved[0]) < 0.25, f"north command moved the vehicle by {moved}"
    assert 0.3 < emulator.truth().yaw - yaw0 < 0.9, "the yaw rate sign (ENU counter-clockwise → NED) is wrong"

    stack.land()
    ros.wait_for(lambda: not emulator.armed, 15, "the vehicle disarmed after landing")
    assert emulator.truth().position[2] < 0.05
    # Disarmed on the ground it may stop, and start again.
    assert change_state(ros, "mavlink_driver", "deactivate") and get_state(ros, "mavlink_driver") == "inactive"
    assert change_state(ros, "mavlink_driver", "activate")
    assert emulator.received.get("SET_POSITION_TARGET_LOCAL_NED", 0) > 200
    # IMU: orientation ENU, specific force +g up at rest (HIGHRES_IMU FRD → FLU).
    ros.wait_for(lambda: imus, 5, "/imu")
    imu = imus[-1][1]
    assert abs(imu.linear_acceleration.z - 9.81) < 0.3 and imu.linear_acceleration_covariance[0] >= 0
    assert batteries and 0.0 < batteries[-1][1].percentage <= 1.0 and batteries[-1][1].voltage > 10.0


@pytest.mark.slow
@pytest.mark.parametrize("mavlink_stack", [{"autopilot": "px4", "offboard_loss_action": "hold"}], indirect=True)
def test_px4_garbage_ignored_link_loss_failsafe_then_land(mavlink_stack, ros):
    emulator, driver, stack = mavlink_stack
    stack.take_off()

    # Garbage and messages the dialect does not know, on the driver's port: logged, ignored.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
        junk.sendto(b"this is not MAVLink at all " * 3, ("127.0.0.1", stack.port))
        # A well-framed MAVLink 2 packet with message id 0x0ABCDE = 703710 (in no dialect).
        junk.sendto(b"\xfd\x09\x00\x00\x07\x01\x01\xde\xbc\x0a" + b"\x00" * 9 + b"\x12\x34", ("127.0.0.1", stack.port))
    driver.wait_for_line(r"ignored malformed MAVLink data: \d+ bytes", timeout=5)
    driver.wait_for_line(r"ignored a MAVLink message the dialect does not know: message id 703710", timeout=5)
    t0 = time.monotonic()
    ros.wait_for(lambda: stack.odometry_count_since(t0) > 10, 10, "odometry to keep flowing after the garbage")
    assert stack.mode() == "HOVER"

    # The link drops both ways: the vehicle's own failsafe (PX4 offboard loss → hold here) and ours (land).
    emulator.link_up = False
    driver.wait_for_line("link lost", timeout=5)
    stack.wait_mode("LANDING", 5)
    ros.wait_for(lambda: emulator.mode == "AUTO.LOITER", 5, "PX4's offboard-loss failsafe")
    time.sleep(0.3)     # grace for a packet already on its way when the link was declared lost; then none may come
    dropped = emulator.dropped
    stack.wait_mode("LANDED", 30)          # the controller's open-loop descent ran its course
    assert emulator.dropped == dropped, "the driver kept sending to a lost vehicle"
    assert emulator.armed and emulator.truth().position[2] > 1.0, "held in the air by its failsafe"

    emulator.link_up = True
    driver.wait_for_line("link restored", timeout=10)
    driver.wait_for_line("disables the vehicle in the air: landing", timeout=10)
    ros.wait_for(lambda: emulator.mode == "AUTO.LAND", 5, "AUTO.LAND after the link came back")
    ros.wait_for(lambda: not emulator.armed, 30, "landed and disarmed")
    assert emulator.truth().position[2] < 0.05
    after_failsafe = emulator.events[next(i for i, e in enumerate(emulator.events) if "Failsafe" in e):]
    assert not any("mode OFFBOARD" in e for e in after_failsafe), "the driver took the vehicle back"
    assert driver.alive()


@pytest.mark.slow
@pytest.mark.parametrize("mavlink_stack", [{"autopilot": "ardupilot"}], indirect=True)
def test_ardupilot_guided_takeoff_fly_land(mavlink_stack, ros):
    emulator, driver, stack = mavlink_stack
    stack.take_off()
    driver.wait_for_line("take-off command to 1.0 m", timeout=1)
    assert emulator.mode == "GUIDED"
    assert emulator.rates.get("LOCAL_POSITION_NED") == pytest.approx(30.0), "telemetry was never requested"
    start = emulator.truth().position[:2].copy()
    stack.fly("odom", 2.5, vx=0.6)           # east
    wait_at_rest(ros, emulator)
    moved = emulator.truth().position[:2] - start
    assert moved[0] > 0.8 and abs(moved[1]) < 0.25, f"east command moved the vehicle by {moved}"
    stack.land()
    ros.wait_for(lambda: not emulator.armed, 15, "disarmed on the ground")
    assert emulator.truth().position[2] < 0.05
    assert emulator.received.get("HEARTBEAT", 0) >= 5

