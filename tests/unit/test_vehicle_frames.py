"""Frame conventions between our graph (ENU/FLU, REP 103) and real vehicles (NED/FRD), and Tello rc scaling."""
import math

import numpy as np
import pytest

from mmchat_ros.core.geometry import heading_to_world, quat_from_euler, quat_to_rotation_matrix, yaw_from_quat
from mmchat_ros.core.vehicle_frames import (TelloRc, TelloRcLimits, enu_to_ned, euler_ned_frd_to_world_flu,
                                            flu_to_frd, frd_to_flu, heading_velocity_to_ned, ned_to_enu,
                                            ned_to_world, quat_ned_frd_to_world_flu, quat_world_flu_to_ned_frd,
                                            tello_rc_from_heading_velocity, world_to_ned, yaw_ned_to_world,
                                            yaw_rate_world_to_ned)

RNG = np.random.default_rng(7)
DEG = math.pi / 180


def random_angles(n=20):
    return [(RNG.uniform(-1.2, 1.2), RNG.uniform(-1.2, 1.2), RNG.uniform(-math.pi, math.pi)) for _ in range(n)]


# -------------------------------------------------------------------------------------------------- vectors
def test_ned_axes_map_to_enu_axes():
    np.testing.assert_allclose(ned_to_enu([1, 0, 0]), [0, 1, 0])    # north is ENU y
    np.testing.assert_allclose(ned_to_enu([0, 1, 0]), [1, 0, 0])    # east is ENU x
    np.testing.assert_allclose(ned_to_enu([0, 0, 1]), [0, 0, -1])   # down is -z
    v = RNG.normal(size=3)
    np.testing.assert_allclose(enu_to_ned(ned_to_enu(v)), v)


def test_nwu_keeps_the_x_axis():
    np.testing.assert_allclose(ned_to_world([1, 2, 3], "nwu"), [1, -2, -3])
    np.testing.assert_allclose(world_to_ned(ned_to_world([1, 2, 3], "nwu"), "nwu"), [1, 2, 3])
    with pytest.raises(ValueError, match="unknown z-up world frame"):
        ned_to_world([1, 2, 3], "sew")


def test_frd_flu_flip_y_and_z():
    np.testing.assert_allclose(frd_to_flu([1, 2, 3]), [1, -2, -3])
    np.testing.assert_allclose(flu_to_frd(frd_to_flu([1, 2, 3])), [1, 2, 3])


# -------------------------------------------------------------------------------------------------- attitude
def test_level_nose_north_is_enu_yaw_90_degrees():
    q = quat_ned_frd_to_world_flu([1, 0, 0, 0], "enu")
    rot = quat_to_rotation_matrix(q)
    np.testing.assert_allclose(rot @ [1, 0, 0], [0, 1, 0], atol=1e-12)    # nose → north = ENU +y
    np.testing.assert_allclose(rot @ [0, 0, 1], [0, 0, 1], atol=1e-12)    # body up stays up
    assert yaw_from_quat(q) == pytest.approx(math.pi / 2)


def test_nose_east_is_identity_in_enu():
    q = euler_ned_frd_to_world_flu(0.0, 0.0, math.pi / 2, "enu")
    np.testing.assert_allclose(abs(q[0]), 1.0, atol=1e-12)


def test_roll_and_pitch_keep_their_physical_sense():
    # Right wing down (NED roll +): the FLU left axis (body +y) points up.
    rot = quat_to_rotation_matrix(euler_ned_frd_to_world_flu(10 * DEG, 0.0, 0.0, "enu"))
    assert (rot @ [0, 1, 0])[2] > 0.15
    # Nose up (NED pitch +): the FLU forward axis points up.
    rot = quat_to_rotation_matrix(euler_ned_frd_to_world_flu(0.0, 10 * DEG, 0.0, "enu"))
    assert (rot @ [1, 0, 0])[2] > 0.15


@pytest.mark.parametrize("world", ["enu", "nwu"])
def test_quaternion_conversion_rotates_vectors_like_the_vector_conversions(world):
    for roll, pitch, yaw in random_angles():
        q_ned = quat_from_euler(roll, pitch, yaw)
        q_world = quat_ned_frd_to_world_flu(q_ned, world)
        v_flu = RNG.normal(size=3)
        expected = ned_to_world(quat_to_rotation_matrix(q_ned) @ flu_to_frd(v_flu), world)
        np.testing.assert_allclose(quat_to_rotation_matrix(q_world) @ v_flu, expected, atol=1e-9)
        back = quat_world_flu_to_ned_frd(q_world, world)
        assert abs(abs(float(back @ q_ned)) - 1.0) < 1e-9       # the same rotation (q and -q)


@pytest.mark.parametrize("world", ["enu", "nwu"])
def test_yaw_conversion_agrees_with_the_quaternion(world):
    for _, _, yaw in random_angles():
        q = euler_ned_frd_to_world_flu(0.0, 0.0, yaw, world)
        difference = math.remainder(yaw_from_quat(q) - yaw_ned_to_world(yaw, world), 2 * math.pi)
        assert difference == pytest.approx(0, abs=1e-9)
    assert yaw_ned_to_world(0.0, "enu") == pytest.approx(math.pi / 2)
    assert yaw_ned_to_world(30 * DEG, "nwu") == pytest.approx(-30 * DEG)


def test_yaw_rate_flips_with_the_z_axis():
    assert yaw_rate_world_to_ned(0.3) == -0.3      # counter-clockwise seen from above = negative about down


# ---------------------------------------------------------------------------------------- heading set-points
def test_heading_velocity_to_ned_for_cardinal_headings():
    np.testing.assert_allclose(heading_velocity_to_ned(1, 0, 0, 0.0), [1, 0, 0], atol=1e-12)        # nose north
    np.testing.assert_allclose(heading_velocity_to_ned(0, 1, 0, 0.0), [0, -1, 0], atol=1e-12)       # left = west
    np.testing.assert_allclose(heading_velocity_to_ned(0, 0, 1, 0.0), [0, 0, -1], atol=1e-12)       # up = -down
    np.testing.assert_allclose(heading_velocity_to_ned(1, 0, 0, math.pi / 2), [0, 1, 0], atol=1e-12)  # nose east
    np.testing.assert_allclose(heading_velocity_to_ned(0, 1, 0, math.pi / 2), [1, 0, 0], atol=1e-12)  # left = north


def test_heading_velocity_paths_agree():
    for _, _, yaw_ned in random_angles():
        f, l, u = RNG.normal(size=3)
        via_ned = ned_to_enu(heading_velocity_to_ned(f, l, u, yaw_ned))
        direct = heading_to_world((f, l, u), yaw_ned_to_world(yaw_ned, "enu"))
        np.testing.assert_allclose(via_ned, direct, atol=1e-9)


# ------------------------------------------------------------------------------------------------ Tello rc
LIMITS = TelloRcLimits(speed_xy_m_s=3.0, speed_z_m_s=1.5, yaw_rate_rad_s=100 * DEG)


def test_rc_channels_scale_and_map_to_the_sdk_order():
    rc = tello_rc_from_heading_velocity(forward=1.5, left=0.3, up=0.75, yaw_rate_rad_s=0.5, limits=LIMITS)
    # a = right (+) so left 0.3 m/s is -10; b = forward; c = up; d = clockwise (+) so a left turn is negative.
    assert rc == TelloRc(left_right=-10, forward_back=50, up_down=50, yaw=-29)
    assert rc.as_tuple() == (-10, 50, 50, -29)
    assert all(isinstance(v, int) for v in rc.as_tuple())


def test_rc_clips_to_full_stick():
    rc = tello_rc_from_heading_velocity(10.0, -10.0, -5.0, -10.0, LIMITS)
    assert rc.as_tuple() == (100, 100, -100, 100)


def test_rc_refuses_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        tello_rc_from_heading_velocity(math.nan, 0, 0, 0, LIMITS)
    with pytest.raises(ValueError, match="speed_xy_m_s"):
        tello_rc_from_heading_velocity(0, 0, 0, 0, TelloRcLimits(0.0, 1.0, 1.0))
