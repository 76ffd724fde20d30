"""Embedded MuJoCo quadrotor simulator: physics, motors, drag, battery, camera, world files, speed."""
from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")

from mmchat_ros.backends.sim import (BatteryModel, QuadrotorSim, WorldSpecError, gl_backend,  # noqa: E402
                                     load_world, world_from_dict)
from mmchat_ros.core.airframe import GRAVITY, load_airframe  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SIM_SRC = REPO / "src" / "mmchat_ros" / "backends" / "sim"


@pytest.fixture(scope="module")
def x500():
    return load_airframe("x500")


@pytest.fixture(scope="module")
def sim(x500):
    s = QuadrotorSim(x500)
    yield s
    s.close()


def hover_each(af):
    return np.full(af.num_motors, af.hover_thrust_n / af.num_motors)


# ------------------------------------------------------------------------------------------------ physics

def test_rests_on_ground_without_drift_or_jitter(sim):
    sim.reset()
    s0 = sim.state()
    assert s0.on_ground and not s0.armed
    assert abs(s0.position[2] - sim.rest_height_m) < 5e-3
    # the accelerometer reads the ground's reaction: +g along body z
    np.testing.assert_allclose(s0.specific_force_body, [0, 0, GRAVITY], atol=0.05)
    positions = []
    for _ in range(200):                                  # 2 s at a 100 Hz control rate
        sim.step(0.01)
        st = sim.state()
        assert st.on_ground
        positions.append(st.position)
    positions = np.array(positions)
    assert np.all(np.ptp(positions, axis=0) < 1e-3), np.ptp(positions, axis=0)
    assert np.linalg.norm(positions[-1, :2] - s0.position[:2]) < 1e-3
    np.testing.assert_allclose(sim.state().linear_velocity_world, 0, atol=1e-3)


def test_hover_thrust_from_airframe_holds_altitude(sim, x500):
    h = hover_each(x500)
    # airborne start with the motors already at hover thrust
    sim.reset((0.0, 0.0, 3.0), motor_thrusts_n=h)
    z0 = sim.state().position[2]
    sim.step(1.0)
    st = sim.state()
    assert not st.on_ground and st.armed
    assert abs(st.position[2] - z0) < 1e-3
    assert abs(st.linear_velocity_world[2]) < 1e-3
    np.testing.assert_allclose(st.specific_force_body, [0, 0, GRAVITY], atol=0.02)   # thrust/m = g
    # motors commanded from rest: once the first-order lag has settled the vertical acceleration is small
    sim.reset((0.0, 0.0, 5.0))
    sim.set_motor_commands(h, armed=True)
    sim.step(10 * x500.motor_time_constant_s)
    np.testing.assert_allclose(sim.state().motor_thrusts_n, h, rtol=1e-3)
    v0 = sim.state().linear_velocity_world[2]
    sim.step(0.2)
    az = (sim.state().linear_velocity_world[2] - v0) / 0.2
    assert abs(az) < 0.2, az                  # only the drag of the spin-up sag remains
    assert abs(sim.state().specific_force_body[2] - GRAVITY) < 0.2


def test_motor_layout_matches_allocation_matrix(sim, x500):
    A = x500.allocation_matrix()
    inertia = np.array(x500.inertia_kgm2)
    h = hover_each(x500)
    for i in range(x500.num_motors):
        f = h.copy()
        f[i] += 0.5
        sim.reset((0.0, 0.0, 5.0), motor_thrusts_n=f)
        sim.step(0.04)
        w = sim.state().angular_velocity_body
        predicted = (A @ f)[1:] / inertia * 0.04          # angular velocity after 40 ms from rest
        for axis in range(3):
            assert np.sign(w[axis]) == np.sign(predicted[axis]), (i, axis, w, predicted)
        np.testing.assert_allclose(w, predicted, rtol=0.05)
    # pure roll / pitch / yaw wrenches through the pseudo-inverse produce only that rotation
    pinv = np.linalg.pinv(A)
    for axis, torque in ((1, 0.2), (2, -0.2), (3, 0.05)):
        wrench = np.array([x500.hover_thrust_n, 0.0, 0.0, 0.0])
        wrench[axis] = torque
        f = pinv @ wrench
        assert np.all((f > 0) & (f < x500.motor_max_thrust_n))
        sim.reset((0.0, 0.0, 5.0), motor_thrusts_n=f)
        sim.step(0.05)
        w = sim.state().angular_velocity_body
        expected = np.zeros(3)
        expected[axis - 1] = torque / inertia[axis - 1] * 0.05
        np.testing.assert_allclose(w, expected, rtol=0.03, atol=1e-6)


def test_commands_are_clipped_and_validated(sim, x500):
    sim.reset((0.0, 0.0, 5.0))
    sim.set_motor_commands([100.0, -3.0, 1.0, 2.0], armed=True)
    sim.step(0.5)
    np.testing.assert_allclose(sim.state().motor_thrusts_n, [x500.motor_max_thrust_n, 0.0, 1.0, 2.0], atol=1e-3)
    with pytest.raises(ValueError):
        sim.set_motor_commands([1.0, 1.0, 1.0], armed=True)
    with pytest.raises(ValueError):
        sim.set_motor_commands([1.0, float("nan"), 1.0, 1.0], armed=True)


def test_linear_drag_acts_in_the_body_frame(x500):
    # anisotropic drag, body turned 90 deg: a world-x velocity is a body-(-y) velocity and decays with c_y
    af = dataclasses.replace(x500, drag_coeff_ns_per_m=(0.1, 0.6, 0.35))
    s = QuadrotorSim(af)
    s.reset((0.0, 0.0, 10.0), yaw=math.pi / 2, motor_thrusts_n=hover_each(af))
    s.data.qvel[0:3] = (3.0, 0.0, 0.0)
    mujoco.mj_forward(s.model, s.data)
    speeds = []
    for _ in range(10):
        s.step(0.1)
        speeds.append(s.state().linear_velocity_world[0])
    assert all(b < a for a, b in zip(speeds, speeds[1:]))                  # drag slows the moving body
    assert speeds[-1] == pytest.approx(3.0 * math.exp(-0.6 / af.mass_kg * 1.0), rel=0.01)
    assert abs(s.state().linear_velocity_world[1]) < 1e-3


def test_disarmed_motors_spin_down_with_the_motor_lag(sim, x500):
    h = hover_each(x500)
    sim.reset((0.0, 0.0, 20.0), motor_thrusts_n=h)
    sim.set_motor_commands(h, armed=False)
    sim.step(x500.motor_time_constant_s)
    st = sim.state()
    assert not st.armed
    # first-order lag: thrust = h * exp(-t / tau) (step() rounds to whole 2 ms substeps: use the time reached)
    np.testing.assert_allclose(st.motor_thrusts_n, h * math.exp(-st.time_s / x500.motor_time_constant_s),
                               rtol=1e-3)
    sim.step(6 * x500.motor_time_constant_s)
    assert np.all(sim.state().motor_thrusts_n < 0.01 * h)
    sim.step(0.5)
    assert sim.state().linear_velocity_world[2] < -3.0                     # falling


def test_deterministic_for_a_seed(x500):
    def run(seed):
        s = QuadrotorSim(x500, seed=seed, imu_noise=(0.05, 0.01))
        s.reset((0.0, 0.0, 2.0), motor_thrusts_n=hover_each(x500) * [1.02, 0.99, 1.0, 1.0])
        out = []
        for _ in range(50):
            s.step(0.01)
            st = s.state()
            out.append(np.concatenate([st.position, st.quaternion_wxyz, st.specific_force_body,
                                       st.angular_velocity_body]))
        return np.array(out)
    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(a[:, :7], c[:, :7])                      # noise only touches the IMU


# ------------------------------------------------------------------------------------------------ battery

def test_battery_model(x500):
    spec = x500.battery
    b = BatteryModel(spec, x500.hover_thrust_n)
    assert b.state().percentage == 1.0
    assert b.current_for_thrust(x500.hover_thrust_n) == pytest.approx(spec.hover_current_a)
    assert b.current_for_thrust(2 * x500.hover_thrust_n) == pytest.approx(spec.hover_current_a * 2 ** 1.5)
    st = b.step(60.0, x500.hover_thrust_n)
    assert st.percentage == pytest.approx(1 - spec.hover_current_a * 60 / 3600 / (spec.capacity_mah / 1000))
    # linear open-circuit curve plus a sag proportional to current
    ocv = spec.empty_v + (spec.full_v - spec.empty_v) * st.percentage
    assert st.voltage_v == pytest.approx(ocv - b.internal_resistance_ohm * st.current_a)
    assert b.voltage(current_a=0.0) > st.voltage_v
    hi = BatteryModel(spec, x500.hover_thrust_n)
    hi.step(60.0, 1.5 * x500.hover_thrust_n)
    assert hi.state().percentage < st.percentage                           # more thrust drains faster
    b.step(1e6, x500.hover_thrust_n)
    assert b.state().percentage == 0.0 and b.depleted and b.state().voltage_v >= 0.0
    with pytest.raises(ValueError):
        b.step(-1.0, 1.0)


def test_battery_drains_faster_at_higher_thrust_in_the_sim(x500):
    results = []
    for scale in (1.0, 1.6):
        s = QuadrotorSim(x500)
        s.reset((0.0, 0.0, 50.0), motor_thrusts_n=hover_each(x500) * scale)
        s.step(2.0)
        results.append(s.state().battery)
    assert results[1].percentage < results[0].percentage < 1.0
    assert results[1].current_a > results[0].current_a
    assert results[1].voltage_v < results[0].voltage_v
    assert results[0].current_a == pytest.approx(x500.battery.hover_current_a, rel=1e-3)


# ------------------------------------------------------------------------------------------------ world

def test_default_world_loads_and_targets_walk_their_path(x500):
    world = load_world()
    assert {b.name for b in world.boxes} and world.targets
    s = QuadrotorSim(x500, world)
    start = s.target_positions()
    s.step(2.0)
    moved = s.target_positions()
    for t in world.targets:
        expected = t.position_at(2.0)
        np.testing.assert_allclose(moved[t.name], expected, atol=1e-9)
        if t.path is not None:
            assert np.linalg.norm(moved[t.name] - start[t.name]) == pytest.approx(2.0 * t.path.speed_mps, rel=1e-6)


def test_target_path_loops_and_stops():
    w = world_from_dict({"targets": [
        {"name": "a", "size": [0.1, 0.5, 1.7], "position": [0, 0, 0.85],
         "path": {"waypoints": [[2, 0, 0.85]], "speed_mps": 1.0, "loop": True}},
        {"name": "b", "size": [0.1, 0.5, 1.7], "position": [0, 0, 0.85],
         "path": {"waypoints": [[2, 0, 0.85], [2, 2, 0.85]], "speed_mps": 1.0, "loop": False}},
    ]})
    a, b = w.targets
    np.testing.assert_allclose(a.position_at(1.0), [1, 0, 0.85])
    np.testing.assert_allclose(a.position_at(3.0), [1, 0, 0.85])         # on the way back
    np.testing.assert_allclose(a.position_at(4.5), [0.5, 0, 0.85])       # second lap
    np.testing.assert_allclose(b.position_at(3.0), [2, 1, 0.85])
    np.testing.assert_allclose(b.position_at(100.0), [2, 2, 0.85])       # stops at the last waypoint


@pytest.mark.parametrize("data, key", [
    ({"boxes": [{"name": "a", "size": [1, 1], "position": [0, 0, 0]}]}, "boxes[0].size"),
    ({"boxes": [{"name": "a", "size": [1, 1, 1], "position": [0, 0, 0], "colour": [1, 0, 0, 1]}]}, "colour"),
    ({"boxes": [{"name": "a", "size": [1, 1, 1]}]}, "position"),
    ({"boxes": [{"name": "a", "size": [1, -1, 1], "position": [0, 0, 0]}]}, "boxes[0].size"),
    ({"targets": [{"name": "p", "size": [1, 1, 1], "position": [0, 0, 0], "texture": "nope/missing.png"}]},
     "targets[0].texture"),
    ({"targets": [{"name": "p", "size": [1, 1, 1], "position": [0, 0, 0],
                   "path": {"waypoints": [[1, 1, 1]], "speed_mps": 0}}]}, "path.speed_mps"),
    ({"targets": [{"name": "p", "size": [1, 1, 1], "position": [0, 0, 0], "rgba": [2, 0, 0, 1]}]}, "rgba"),
    ({"boxes": [{"name": "a", "size": [1, 1, 1], "position": [0, 0, 0]}],
      "targets": [{"name": "a", "size": [1, 1, 1], "position": [0, 0, 0]}]}, "duplicate"),
    ({"grund_size": [1, 1]}, "grund_size"),
])
def test_world_errors_name_the_bad_key(data, key):
    with pytest.raises(WorldSpecError, match=key.replace("[", r"\[").replace("]", r"\]")):
        world_from_dict(data)


# ------------------------------------------------------------------------------------------------ camera

def _orange(img):
    r, g, b = (img[..., k].astype(int) for k in range(3))
    return (r > 150) & (g > 40) & (g < 140) & (b < 70)


def _project(sim, point):
    cid = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_CAMERA, "onboard")
    rot, pos = sim.data.cam_xmat[cid].reshape(3, 3), sim.data.cam_xpos[cid]
    c = rot.T @ (np.asarray(point) - pos)          # MuJoCo camera: x right, y up, looking along -z
    fx, fy, cx, cy = sim.camera_intrinsics()
    return cx + fx * c[0] / -c[2], cy + fy * -c[1] / -c[2]


def test_camera_sees_the_target_where_the_intrinsics_say(x500, tmp_path):
    world = world_from_dict({"targets": [{"name": "person", "size": [0.12, 0.6, 1.75],
                                          "position": [4.0, 0.5, 0.875], "rgba": [0.9, 0.35, 0.1, 1.0]}]})
    s = QuadrotorSim(x500, world, camera=True)
    try:
        s.reset((0.0, 0.0, 1.0), motor_thrusts_n=hover_each(x500))
        img = s.render_camera()
        assert img.shape == (x500.camera["height"], x500.camera["width"], 3) and img.dtype == np.uint8
        assert img.std() > 10                                               # not blank
        mask = _orange(img)
        assert mask.sum() > 500
        ys, xs = np.nonzero(mask)
        # the billboard's front face corners project onto the orange region's bounding box
        u0, v0 = _project(s, [4.0 - 0.06, 0.8, 1.75])
        u1, v1 = _project(s, [4.0 - 0.06, 0.2, 0.0])
        assert abs(xs.min() - u0) < 2.5 and abs(ys.min() - v0) < 2.5
        assert abs(xs.max() - u1) < 2.5 and abs(ys.max() - v1) < 2.5
        # turned away, the target is out of view
        s.reset((0.0, 0.0, 1.0), yaw=math.pi, motor_thrusts_n=hover_each(x500))
        assert _orange(s.render_camera()).sum() == 0
        fx, fy, cx, cy = s.camera_intrinsics()
        assert fx == pytest.approx(fy) and fx == pytest.approx(160.0)      # 320 px over a 90 deg horizontal FOV
        print(f"\nGL backend: {gl_backend()}")
    finally:
        s.close()


def test_textured_billboard_shows_its_image_upright(x500, tmp_path):
    cv2 = pytest.importorskip("cv2")
    picture = np.zeros((200, 120, 3), np.uint8)
    picture[:100] = (255, 0, 255)                 # magenta top half (BGR), cyan-ish bottom half
    picture[100:] = (255, 255, 0)
    cv2.imwrite(str(tmp_path / "person.png"), picture)
    (tmp_path / "w.yaml").write_text(
        "targets:\n  - {name: p, size: [0.1, 0.6, 1.0], position: [2.0, 0.0, 1.0], texture: person.png}\n")
    world = load_world(tmp_path / "w.yaml")                        # relative texture path: next to the file
    s = QuadrotorSim(x500, world)
    try:
        s.reset((0.0, 0.0, 1.0), motor_thrusts_n=hover_each(x500))
        img = s.render_camera().astype(int)
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        magenta = (r > 150) & (b > 150) & (g < 80)
        cyan = (g > 150) & (b > 150) & (r < 80)
        assert magenta.sum() > 300 and cyan.sum() > 300
        assert np.nonzero(magenta)[0].mean() < np.nonzero(cyan)[0].mean()   # the top of the picture is on top
    finally:
        s.close()


# ------------------------------------------------------------------------------------------------ speed

def test_sim_time_advances_by_the_steps_and_the_camera_renders_each_step(x500):
    # How fast this runs against the wall clock is bench/control.py's figure (its rtf section), not a unit test's.
    s = QuadrotorSim(x500, load_world(), physics_hz=500)
    s.reset((0.0, 0.0, 2.0), motor_thrusts_n=hover_each(x500))
    for _ in range(1000):
        s.step(1.0 / 250)
    assert s.state().time_s == pytest.approx(4.0)
    frames = []
    for _ in range(2):
        s.step(1 / 30)
        frames.append(s.render_camera())
    s.close()
    assert all(f.shape == (x500.camera["height"], x500.camera["width"], 3) for f in frames) and len(frames) == 2
    assert not np.array_equal(frames[0], np.zeros_like(frames[0]))


# ------------------------------------------------------------------------------------------------ layering

def test_sim_backend_never_imports_rclpy():
    for path in SIM_SRC.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "rclpy" for n in names), f"{path.name} imports rclpy"


# ------------------------------------------------------------------------------------------- model mismatch
def _airborne(af, perturbation, seconds):
    from mmchat_ros.backends.sim.quadrotor import Perturbation
    s = QuadrotorSim(af, perturbation=Perturbation(**perturbation))
    s.reset(position=(0.0, 0.0, 5.0), motor_thrusts_n=hover_each(af))
    states = []
    for _ in range(int(round(seconds / 0.004))):
        s.set_motor_commands(hover_each(af), armed=True)       # the nominal hover thrust, open loop
        s.step(0.004)
        states.append(s.state())
    s.close()
    return states


def test_perturbed_physics_departs_from_the_airframe_file(x500):
    # The file's hover thrust holds the file's vehicle; a heavier one sinks, one with weaker motors too.
    assert abs(_airborne(x500, {}, 0.5)[-1].position[2] - 5.0) < 1e-3
    heavy = _airborne(x500, {"mass_scale": 1.25}, 0.5)[-1]
    assert heavy.position[2] < 5.0 - 0.5 * 0.2 * GRAVITY * 0.5 ** 2 * 0.8
    weak = _airborne(x500, {"max_thrust_scale": 0.3}, 0.5)[-1]          # 2.1 N < the 2.94 N asked per motor
    assert weak.position[2] < 4.9
    # Centre of mass off along +x: the thrust, at the body origin, pitches it nose down (positive pitch rate).
    assert _airborne(x500, {"com_offset_m": (0.01, 0.0, 0.0)}, 0.2)[-1].angular_velocity_body[1] > 0.05
    # Stronger yaw torque makes no yaw at balanced thrusts; wind pushes it downwind.
    assert abs(_airborne(x500, {"yaw_torque_scale": 4.0}, 0.2)[-1].angular_velocity_body[2]) < 1e-6
    windy = _airborne(x500, {"wind_m_s": (3.0, 0.0, 0.0)}, 1.0)[-1]
    assert windy.linear_velocity_world[0] > 0.3 and abs(windy.linear_velocity_world[1]) < 1e-6


def test_odometry_latency_and_imu_bias_are_in_what_the_vehicle_reports(x500):
    biased = _airborne(x500, {"gyro_bias_rad_s": (0.02, -0.01, 0.03), "accel_bias_m_s2": (0.1, 0.0, 0.0)}, 0.1)[-1]
    np.testing.assert_allclose(biased.angular_velocity_body, (0.02, -0.01, 0.03), atol=1e-6)
    assert biased.specific_force_body[0] == pytest.approx(0.1, abs=1e-3)
    # Falling (no thrust): the reported height is the true height 30 ms ago.
    from mmchat_ros.backends.sim.quadrotor import Perturbation
    s = QuadrotorSim(x500, perturbation=Perturbation(odom_latency_s=0.03))
    s.reset(position=(0.0, 0.0, 5.0), motor_thrusts_n=np.zeros(4))
    history = []
    for _ in range(100):
        s.step(0.004)
        history.append((s.data.time, float(s.data.qpos[2])))
    reported = s.state()
    then = max((h for h in history if h[0] <= history[-1][0] - 0.03 + 1e-9), key=lambda h: h[0])[1]   # >= 30 ms old
    assert reported.position[2] == pytest.approx(then, abs=1e-9)
    assert reported.position[2] > float(s.data.qpos[2]) + 0.01
    s.close()
