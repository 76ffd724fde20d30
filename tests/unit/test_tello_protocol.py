"""Tello SDK 2.0 text protocol: commands, replies, state strings, and the state → odometry estimate."""
import math

import numpy as np
import pytest

from mmchat_ros.core.geometry import quat_to_rotation_matrix, yaw_from_quat
from mmchat_ros.core.tello_protocol import (TelloEstimator, TelloProtocolError, TelloState, format_command,
                                            format_rc, format_state, parse_command, parse_response, parse_state)
from mmchat_ros.core.vehicle_frames import TelloRc

# A state string as the SDK 2.0 guide documents it (field order and formats), values of a Tello at rest.
AT_REST = (b"pitch:0;roll:0;yaw:-45;vgx:0;vgy:0;vgz:0;templ:63;temph:65;tof:10;h:0;bat:87;baro:-61.29;time:0;"
           b"agx:-4.00;agy:1.00;agz:-999.00;\r\n")


def state(**changes) -> TelloState:
    values = dict(pitch_deg=0, roll_deg=0, yaw_deg=0, vgx=0, vgy=0, vgz=0, tof_cm=10, h_cm=0, battery_percent=80,
                  agx_mg=0.0, agy_mg=0.0, agz_mg=-1000.0)
    values.update(changes)
    return TelloState(**values)


# ------------------------------------------------------------------------------------------------ state
def test_parse_documented_state_string():
    s = parse_state(AT_REST)
    assert (s.pitch_deg, s.roll_deg, s.yaw_deg, s.vgx, s.tof_cm, s.h_cm, s.battery_percent) == (0, 0, -45, 0, 10, 0, 87)
    assert (s.templ_c, s.temph_c, s.motor_time_s) == (63, 65, 0)
    assert s.baro_m == pytest.approx(-61.29) and s.agz_mg == pytest.approx(-999.0)
    assert s.extras == {}


def test_mission_pad_fields_are_kept_as_extras():
    s = parse_state(b"mid:-2;x:-200;y:-200;z:-200;mpry:0,0,0;" + AT_REST)
    assert s.extras == {"mid": "-2", "x": "-200", "y": "-200", "z": "-200", "mpry": "0,0,0"}
    assert s.yaw_deg == -45


def test_format_state_round_trips():
    original = parse_state(b"mid:-1;mpry:0,0,0;" + AT_REST)
    assert parse_state(format_state(original)) == original
    assert format_state(original).endswith(b";\r\n")


@pytest.mark.parametrize("data, reason", [
    (b"\xff\xfe\x00binary", "not ASCII"),
    (b"pitch:abc;roll:0;yaw:0;vgx:0;vgy:0;vgz:0;tof:0;h:0;bat:1;", "non-numeric value 'abc'"),
    (b"pitch:0;roll:0;yaw:0;", "lacks vgx, vgy, vgz, tof, h, bat"),
    (b"hello", "is not 'key:value'"),
    (AT_REST.replace(b"roll:0", b"roll:0;roll:1"), "appears twice"),
    (AT_REST.replace(b"baro:-61.29", b"baro:nan"), "not finite"),
    (b"pitch:0;" * 400, "too long"),
    (b"pitch:0\x07;", "control characters"),
])
def test_malformed_state_is_refused_with_a_reason(data, reason):
    with pytest.raises(TelloProtocolError, match=reason):
        parse_state(data)


# --------------------------------------------------------------------------------------- commands, replies
def test_commands_format_as_the_sdk_text():
    assert format_command("command") == b"command"
    assert format_command("takeoff") == b"takeoff"
    assert format_rc(TelloRc(-10, 50, 0, 100)) == b"rc -10 50 0 100"


@pytest.mark.parametrize("name, args, reason", [
    ("flip", (), "unknown command: flip"), ("rc", (1, 2, 3), "takes 4 arguments"), ("rc", (0, 0, 0, 101), "-100..100"),
    ("land", (1,), "takes 0 arguments")])
def test_bad_commands_are_refused(name, args, reason):
    with pytest.raises(TelloProtocolError, match=reason):
        format_command(name, *args)


def test_parse_command_round_trips_and_refuses_garbage():
    command = parse_command(format_rc(TelloRc(1, -2, 3, -4)))
    assert (command.name, command.args) == ("rc", (1, -2, 3, -4))
    assert parse_command(b"command\r\n").name == "command"
    for data, reason in ((b"\xff", "not ASCII"), (b"rc 1 2 x 4", "non-integer"), (b"", "empty"),
                         (b"dance", "unknown command")):
        with pytest.raises(TelloProtocolError, match=reason):
            parse_command(data)


def test_replies():
    assert parse_response(b"ok\r\n").ok
    error = parse_response(b"error Motor stop")
    assert not error.ok and error.text == "error Motor stop"
    assert parse_response(b"87\r\n").text == "87"
    for data in (b"", b"\x80\x81"):
        with pytest.raises(TelloProtocolError):
            parse_response(data)


# ---------------------------------------------------------------------------------------------- estimation
def fly(estimator, s, seconds, rate=10.0, t0=0.0):
    estimate = None
    for i in range(int(seconds * rate) + 1):
        estimate = estimator.update(s, t0 + i / rate)
    return estimate


def test_height_from_tof_minus_its_ground_reading_else_h():
    estimator = TelloEstimator()
    assert estimator.update(state(tof_cm=12, h_cm=0), 0.0).height_m == 0.0       # calibrates the ToF's zero
    assert estimator.tof_ground_cm == 12
    assert estimator.update(state(tof_cm=162, h_cm=150), 0.1).height_m == pytest.approx(1.5)
    assert estimator.update(state(tof_cm=6553, h_cm=150), 0.2).height_m == pytest.approx(1.5)   # out of range → h
    assert TelloEstimator(height_source="h").update(state(tof_cm=162, h_cm=140), 0.0).height_m == pytest.approx(1.4)


def test_velocity_units_axes_and_integration():
    estimator = TelloEstimator()                                 # velocity in dm/s, along the yaw-0 axes
    estimate = fly(estimator, state(vgx=5), 2.0)                 # 0.5 m/s forward for 2 s
    np.testing.assert_allclose(estimate.velocity_world, [0.5, 0.0, 0.0])
    assert estimate.position[0] == pytest.approx(1.0, abs=1e-9) and estimate.position[1] == pytest.approx(0.0)
    estimate = fly(estimator, state(vgy=5), 1.0, t0=2.1)          # 0.5 m/s to the (start) right: our -y
    assert estimate.position[1] == pytest.approx(-0.5, abs=0.03)
    estimate = estimator.update(state(vgz=5), 3.3)               # NED z: positive down
    assert estimate.velocity_world[2] == pytest.approx(-0.5)
    assert TelloEstimator(velocity_unit_m_s=0.01).update(state(vgx=50), 0.0).velocity_world[0] == pytest.approx(0.5)


def test_velocity_along_the_heading_when_so_configured():
    estimator = TelloEstimator(velocity_frame="heading")
    estimate = fly(estimator, state(vgx=5, yaw_deg=90), 1.0)     # facing the start's right, flying forward
    assert estimate.position[1] == pytest.approx(-0.5, abs=1e-9) and abs(estimate.position[0]) < 1e-9


def test_no_integration_across_a_gap():
    estimator = TelloEstimator(max_gap_s=0.5)
    estimator.update(state(vgx=10), 0.0)
    assert estimator.update(state(vgx=10), 5.0).position[0] == 0.0
    assert estimator.update(state(vgx=10), 5.1).position[0] == pytest.approx(0.1)


def test_attitude_specific_force_and_battery():
    estimate = TelloEstimator().update(state(yaw_deg=90, pitch_deg=10, battery_percent=55), 0.0)
    assert yaw_from_quat(estimate.quaternion_wxyz) == pytest.approx(-math.pi / 2, abs=0.02)  # clockwise → our -yaw
    forward = quat_to_rotation_matrix(estimate.quaternion_wxyz) @ [1, 0, 0]
    assert forward[2] == pytest.approx(math.sin(math.radians(10)), abs=1e-6)                  # nose up
    np.testing.assert_allclose(estimate.specific_force_body, [0, 0, 9.80665])                 # +g up at rest
    assert estimate.battery_fraction == pytest.approx(0.55)
    assert TelloEstimator().update(state(agx_mg=None), 0.0).specific_force_body is None


def test_estimator_refuses_bad_configuration():
    with pytest.raises(ValueError):
        TelloEstimator(velocity_unit_m_s=0.0)
    with pytest.raises(ValueError):
        TelloEstimator(velocity_frame="body")
    with pytest.raises(ValueError):
        TelloEstimator(height_source="baro")
