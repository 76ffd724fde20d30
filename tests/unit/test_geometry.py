"""Rotations (core/geometry.py): known rotations in REP 103's sense, round trips, yaw wrapping, frame changes."""
import math

import numpy as np
import pytest

from mmchat_ros.core.geometry import (body_to_world, cross3, euler_from_quat, heading_to_world, quat_between,
                                      quat_canonical, quat_conjugate, quat_from_euler, quat_from_yaw, quat_multiply,
                                      quat_normalize, quat_to_rotation_matrix, rotation_matrix_to_quat,
                                      tilt_from_quat, world_to_body, world_to_heading, wrap_angle, yaw_from_quat)

RNG = np.random.default_rng(11)
DEG = math.pi / 180
X, Y, Z = np.eye(3)


def random_angles(n=20):
    """(roll, pitch, yaw) away from gimbal lock, where Euler angles are unique."""
    return [(RNG.uniform(-1.2, 1.2), RNG.uniform(-1.2, 1.2), RNG.uniform(-3.1, 3.1)) for _ in range(n)]


def same_rotation(a, b) -> bool:
    return abs(abs(float(np.dot(a, b))) - 1.0) < 1e-9       # q and -q are the same rotation


# ------------------------------------------------------------------------------------------- known rotations
def test_positive_yaw_turns_body_x_towards_world_y():
    np.testing.assert_allclose(quat_to_rotation_matrix(quat_from_yaw(math.pi / 2)) @ X, Y, atol=1e-12)


def test_euler_angles_keep_their_physical_sense():
    # Roll + lifts body y (the left side goes up), pitch + lowers the nose (REP 103, z up).
    assert (quat_to_rotation_matrix(quat_from_euler(10 * DEG, 0.0, 0.0)) @ Y)[2] > 0.15
    assert (quat_to_rotation_matrix(quat_from_euler(0.0, 10 * DEG, 0.0)) @ X)[2] < -0.15
    assert same_rotation(quat_from_euler(0.0, 0.0, 0.7), quat_from_yaw(0.7))


def test_tilt_is_the_angle_of_body_z_from_world_z():
    assert tilt_from_quat(quat_from_yaw(2.0)) == pytest.approx(0.0, abs=1e-9)
    assert tilt_from_quat(quat_from_euler(0.3, 0.0, 1.0)) == pytest.approx(0.3)
    assert tilt_from_quat(quat_from_euler(0.0, -0.4, -2.0)) == pytest.approx(0.4)


# ----------------------------------------------------------------------------------------------- round trips
def test_rotation_matrix_round_trip_is_orthonormal_and_canonical():
    for angles in random_angles():
        q = quat_from_euler(*angles)
        rot = quat_to_rotation_matrix(q)
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rot) == pytest.approx(1.0)
        back = rotation_matrix_to_quat(rot)
        assert back[0] >= 0.0 and same_rotation(back, q)
    # Every branch of Shepperd's method: half turns about each axis (trace -1).
    for axis in (X, Y, Z):
        q = np.array([0.0, *axis])
        np.testing.assert_allclose(rotation_matrix_to_quat(quat_to_rotation_matrix(q)), q, atol=1e-12)


def test_euler_round_trip():
    for angles in random_angles():
        np.testing.assert_allclose(euler_from_quat(quat_from_euler(*angles)), angles, atol=1e-9)
        assert yaw_from_quat(quat_from_euler(*angles)) == pytest.approx(angles[2], abs=1e-9)


def test_product_composes_rotations_and_the_conjugate_undoes_them():
    for a, b in zip(random_angles(5), random_angles(5)):
        qa, qb = quat_from_euler(*a), quat_from_euler(*b)
        np.testing.assert_allclose(quat_to_rotation_matrix(quat_multiply(qa, qb)),
                                   quat_to_rotation_matrix(qa) @ quat_to_rotation_matrix(qb), atol=1e-12)
        np.testing.assert_allclose(quat_multiply(qa, quat_conjugate(qa)), [1, 0, 0, 0], atol=1e-12)


def test_normalize_and_canonical():
    np.testing.assert_allclose(quat_normalize([2.0, 0.0, 0.0, 0.0]), [1, 0, 0, 0])
    for bad in ([0, 0, 0, 0], [math.nan, 0, 0, 1]):
        with pytest.raises(ValueError, match="cannot be normalised"):
            quat_normalize(bad)
    np.testing.assert_allclose(quat_canonical(np.array([-0.6, 0.0, 0.0, 0.8])), [0.6, 0.0, 0.0, -0.8])


def test_quat_between_turns_one_direction_onto_the_other():
    u = np.array([0.0, 0.0, 1.0])
    v = np.array([1.0, 1.0, 1.0]) / math.sqrt(3.0)
    np.testing.assert_allclose(quat_to_rotation_matrix(quat_between(u, v)) @ u, v, atol=1e-12)
    assert quat_between(u, -u) is None
    np.testing.assert_allclose(cross3(X, Y), Z)


# ----------------------------------------------------------------------------------------------- yaw wrapping
def test_wrap_angle_lands_in_half_a_turn_either_side():
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert wrap_angle(-3 * math.pi / 2) == pytest.approx(math.pi / 2)
    assert wrap_angle(math.pi) == pytest.approx(-math.pi)             # [-π, π): +π maps to -π
    assert wrap_angle(0.25) == 0.25
    assert wrap_angle(350.0, 360.0) == pytest.approx(-10.0)
    assert yaw_from_quat(quat_from_yaw(3 * math.pi / 2)) == pytest.approx(-math.pi / 2)


# ------------------------------------------------------------------------------------------------ frames
def test_body_twist_to_world_and_back():
    q = quat_from_yaw(math.pi / 2)              # nose along world +y
    np.testing.assert_allclose(body_to_world(q, [2, 0, 0]), [0, 2, 0], atol=1e-12)
    np.testing.assert_allclose(world_to_body(q, [1, 0, 0]), [0, -1, 0], atol=1e-12)      # REP 105 twist
    np.testing.assert_allclose(body_to_world(2.0 * q, [2, 0, 0]), [0, 2, 0], atol=1e-12)  # any length of q
    for angles in random_angles(5):
        q, v = quat_from_euler(*angles), RNG.normal(size=3)
        np.testing.assert_allclose(world_to_body(q, body_to_world(q, v)), v, atol=1e-12)


def test_heading_frame_is_level_and_turned_with_the_yaw():
    np.testing.assert_allclose(heading_to_world((1.0, 0.0, 0.5), math.pi / 2), [0, 1, 0.5], atol=1e-12)
    np.testing.assert_allclose(heading_to_world((0.0, 1.0), math.pi / 2), [-1, 0], atol=1e-12)    # left = -x
    for _, _, yaw in random_angles(5):
        v = RNG.normal(size=3)
        np.testing.assert_allclose(world_to_heading(heading_to_world(v, yaw), yaw), v, atol=1e-12)
        # The heading frame ignores roll and pitch: it is the body frame of the level attitude.
        np.testing.assert_allclose(heading_to_world(v, yaw), body_to_world(quat_from_yaw(yaw), v), atol=1e-12)
