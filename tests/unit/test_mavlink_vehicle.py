"""MAVLink protocol knowledge (modes, set-point mask, landed state) and the MavlinkVehicle link against a pymavlink
peer on loopback (real MAVLink 2 bytes, no ROS)."""
import math
import socket
import time

import numpy as np
import pytest

from mmchat_ros.backends.mavlink_vehicle import (ARDUCOPTER_MODES, PX4_MODES, VELOCITY_TYPE_MASK, MavlinkVehicle,
                                                 autopilot_from_heartbeat, in_air, mavlink, mavutil, mode_name,
                                                 set_mode_params)


def test_px4_modes_round_trip_through_custom_mode():
    for name in PX4_MODES:
        _, main, sub = set_mode_params("px4", name)
        assert mode_name("px4", int(main) << 16 | int(sub) << 24) == name
    assert set_mode_params("px4", "OFFBOARD") == (1.0, 6.0, 0.0)
    assert set_mode_params("px4", "AUTO.LAND") == (1.0, 4.0, 6.0)
    assert mode_name("px4", 9 << 16) == "MODE(9.0)"


def test_ardupilot_modes():
    assert set_mode_params("ardupilot", "GUIDED") == (1.0, 4.0, 0.0)
    assert mode_name("ardupilot", ARDUCOPTER_MODES["LAND"]) == "LAND"
    assert mode_name("ardupilot", 99) == "MODE(99)"
    with pytest.raises(ValueError, match="unknown ArduCopter mode"):
        set_mode_params("ardupilot", "OFFBOARD")
    with pytest.raises(ValueError, match="unknown autopilot"):
        mode_name("betaflight", 0)


def test_velocity_type_mask_uses_velocity_and_yaw_rate_only():
    used = (mavlink.POSITION_TARGET_TYPEMASK_VX_IGNORE | mavlink.POSITION_TARGET_TYPEMASK_VY_IGNORE
            | mavlink.POSITION_TARGET_TYPEMASK_VZ_IGNORE | mavlink.POSITION_TARGET_TYPEMASK_YAW_RATE_IGNORE)
    assert VELOCITY_TYPE_MASK & used == 0
    assert VELOCITY_TYPE_MASK == 0b0000_0101_1100_0111          # 1479: position, acceleration and yaw ignored


def test_in_air_prefers_the_vehicles_landed_state():
    assert in_air(mavlink.MAV_LANDED_STATE_IN_AIR, 0.0, 0.3) is True
    assert in_air(mavlink.MAV_LANDED_STATE_LANDING, 0.0, 0.3) is True
    assert in_air(mavlink.MAV_LANDED_STATE_ON_GROUND, 5.0, 0.3) is False
    assert in_air(mavlink.MAV_LANDED_STATE_UNDEFINED, 1.0, 0.3) is True
    assert in_air(None, 0.1, 0.3) is False
    assert in_air(None, None, 0.3) is None


def test_autopilot_identification():
    assert autopilot_from_heartbeat(mavlink.MAV_AUTOPILOT_PX4) == "px4"
    assert autopilot_from_heartbeat(mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA) == "ardupilot"
    assert autopilot_from_heartbeat(mavlink.MAV_AUTOPILOT_INVALID) is None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def link():
    port = free_port()
    problems, positions = [], []
    vehicle = MavlinkVehicle(f"udpin:127.0.0.1:{port}", on_problem=lambda kind, detail: problems.append((kind, detail)),
                             on_position=positions.append)
    peer = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=1, source_component=1)
    yield vehicle, peer, port, problems, positions
    vehicle.close()
    peer.close()


def wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    raise TimeoutError("condition not met")


def test_link_decodes_telemetry_reports_garbage_and_ignores_other_systems(link):
    vehicle, peer, port, problems, positions = link
    gcs = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=255, source_component=190)
    gcs.mav.heartbeat_send(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0)   # not a vehicle
    peer.mav.heartbeat_send(mavlink.MAV_TYPE_QUADROTOR, mavlink.MAV_AUTOPILOT_PX4,
                            mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mavlink.MAV_MODE_FLAG_SAFETY_ARMED,
                            6 << 16, mavlink.MAV_STATE_ACTIVE)
    wait(lambda: vehicle.telemetry.mode == "OFFBOARD")
    assert vehicle.target_system == 1 and vehicle.telemetry.armed and vehicle.telemetry.autopilot == "px4"
    peer.mav.attitude_quaternion_send(1, 1.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.3)
    peer.mav.local_position_ned_send(2, 1.0, 2.0, -3.0, 0.5, 0.0, -0.1)
    peer.mav.sys_status_send(0, 0, 0, 0, 16200, 1250, 76, 0, 0, 0, 0, 0, 0)
    wait(lambda: positions and not math.isnan(vehicle.telemetry.battery_fraction))
    t = vehicle.telemetry
    np.testing.assert_allclose(t.position_ned, [1, 2, -3])
    np.testing.assert_allclose(t.rates_frd, [0.1, 0.2, 0.3], rtol=1e-6)
    assert (t.battery_fraction, t.voltage_v, t.current_a) == pytest.approx((0.76, 16.2, 12.5))
    assert t.yaw_ned == pytest.approx(0.0)
    gcs.mav.local_position_ned_send(3, 9.0, 9.0, 9.0, 0, 0, 0)            # from another system: ignored
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
        junk.sendto(b"not mavlink " * 4, ("127.0.0.1", port))
    wait(lambda: any(kind == "malformed" for kind, _ in problems))
    # Loopback datagrams reach the link's one socket in the order sent: once the vehicle's next position is in,
    # the other system's (sent before it) has been read too.
    peer.mav.local_position_ned_send(4, 1.0, 2.0, -3.0, 0.5, 0.0, -0.1)
    wait(lambda: len(positions) == 2)
    assert all(np.allclose(p.position_ned, [1, 2, -3]) for p in positions)
    gcs.close()


def test_setpoints_and_commands_go_out_as_mavlink(link):
    vehicle, peer, port, problems, _ = link
    peer.mav.heartbeat_send(mavlink.MAV_TYPE_QUADROTOR, mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA, 1, 4, 3)
    wait(lambda: vehicle.target_system == 1)
    vehicle.send_velocity_ned((1.0, -2.0, 0.5), -0.25)
    vehicle.set_mode("ardupilot", "GUIDED")
    vehicle.disarm(force=True)
    received = {}
    deadline = time.monotonic() + 5
    while len(received) < 2 and time.monotonic() < deadline:
        m = peer.recv_match(blocking=True, timeout=0.2)
        if m is not None and m.get_type() in ("SET_POSITION_TARGET_LOCAL_NED", "COMMAND_LONG"):
            received.setdefault(m.get_type(), []).append(m)
    setpoint = received["SET_POSITION_TARGET_LOCAL_NED"][0]
    assert setpoint.coordinate_frame == mavlink.MAV_FRAME_LOCAL_NED and setpoint.type_mask == VELOCITY_TYPE_MASK
    assert (setpoint.vx, setpoint.vy, setpoint.vz, setpoint.yaw_rate) == pytest.approx((1.0, -2.0, 0.5, -0.25))
    assert (setpoint.target_system, setpoint.target_component) == (1, 1)
    deadline = time.monotonic() + 2
    while len(received["COMMAND_LONG"]) < 2 and time.monotonic() < deadline:
        m = peer.recv_match(type="COMMAND_LONG", blocking=True, timeout=0.2)
        if m is not None:
            received["COMMAND_LONG"].append(m)
    mode, kill = received["COMMAND_LONG"][:2]
    assert (mode.command, mode.param1, mode.param2) == (mavlink.MAV_CMD_DO_SET_MODE, 1.0, 4.0)
    assert (kill.command, kill.param1, kill.param2) == (mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0.0, 21196.0)
    assert not problems


def test_imu_from_highres_or_scaled_imu(link):
    vehicle, peer, port, problems, _ = link
    peer.mav.heartbeat_send(mavlink.MAV_TYPE_QUADROTOR, mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA, 1, 4, 3)
    wait(lambda: vehicle.target_system == 1)
    peer.mav.scaled_imu_send(1, 10, -20, -1000, 0, 0, 0, 0, 0, 0)                 # mG, FRD (ArduPilot)
    wait(lambda: vehicle.telemetry.specific_force_frd is not None)
    np.testing.assert_allclose(vehicle.telemetry.specific_force_frd, [0.0981, -0.1961, -9.80665], atol=1e-4)
    peer.mav.highres_imu_send(2, 0.0, 0.0, -9.7, 0, 0, 0, 0, 0, 0, 1013.0, 0, 0, 20.0, 0x7)
    wait(lambda: vehicle.telemetry.specific_force_frd[2] == pytest.approx(-9.7))
    peer.mav.scaled_imu_send(3, 0, 0, -500, 0, 0, 0, 0, 0, 0)                     # ignored once HIGHRES arrives
    wait(lambda: vehicle.counters.by_type.get("SCALED_IMU") == 2)
    assert vehicle.telemetry.specific_force_frd[2] == pytest.approx(-9.7) and not problems
