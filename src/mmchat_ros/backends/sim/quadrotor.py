"""Embedded quadrotor simulator on MuJoCo: rigid-body physics, motors, drag, contact, IMU, battery, onboard camera.

This is the backend layer: it never imports rclpy (a ROS node wraps it). Conventions come from
``core/airframe.py`` (REP 103): world x forward, y left, z up; body x forward, y left, z up; motor i sits at
``arm_length * (cos a_i, sin a_i)`` in the body xy plane, pushes along body +z and adds
``yaw_sign_i * torque_coeff_m * thrust_i`` of torque about body +z, so that
``[thrust, tau_x, tau_y, tau_z] = Airframe.allocation_matrix() @ motor_thrusts``.

How the physics is built (all inside MuJoCo, so a substep costs no Python):

- the vehicle is one free-joint body whose ``<inertial>`` is exactly the airframe's mass and diagonal inertia
  (visual/collision geoms carry no mass), centre of mass at the body origin;
- **motors are site actuators**, one per rotor, rather than ``xfrc_applied``: MuJoCo's ``filterexact`` actuator
  dynamics *is* the first-order motor lag (``d act/dt = (ctrl - act) / tau``, integrated exactly), ``ctrlrange``
  clips commands to ``[0, motor_max_thrust_n]``, and the 6-D ``gear = (0, 0, 1, 0, 0, yaw_sign*torque_coeff)``
  applies the thrust along the rotor site's z axis *at the rotor* plus the yaw reaction torque, every substep,
  with no per-substep Python (``xfrc_applied`` would need a Python callback per substep to run the lag and
  re-rotate the forces into the world frame);
- **linear body-frame drag** is three more site actuators at the centre of mass with ``gear`` along body x, y, z
  and an affine bias ``-c_axis * velocity``: a site actuator's velocity is the site's velocity along its gear
  axis in the body frame, so MuJoCo applies ``F_body = -diag(drag_coeff_ns_per_m) v_body`` (and, with the
  ``implicitfast`` integrator, treats that damping implicitly);
- ground contact is MuJoCo's: four small spherical feet under the arms hold the body ``rest_height_m`` above the
  ground, so the vehicle rests on four point contacts and does not jitter;
- the IMU is an accelerometer (specific force: reads +g on z at rest) and a gyro at the centre of mass;
- ``Perturbation`` makes the simulated vehicle differ from its airframe file (mass, inertia, thrust, motor lag,
  drag, yaw torque, centre of mass, IMU bias, odometry latency, wind with gusts): a controller built from the
  file then flies a vehicle it does not know exactly, as on every real drone;
- targets are mocap bodies (person-like billboards) moved along their paths as time advances.

The camera renders offscreen through headless_gl.py (EGL or OSMesa, no display).
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple, Sequence

import mujoco
import numpy as np

from mmchat_ros.backends.sim.battery import BatteryModel, BatteryState
from mmchat_ros.backends.sim.headless_gl import OffscreenRenderer
from mmchat_ros.backends.sim.world import WorldSpec, load_world
from mmchat_ros.core.airframe import GRAVITY, Airframe
from mmchat_ros.core.geometry import quat_from_yaw

__all__ = ["QuadrotorSim", "QuadrotorState", "CameraIntrinsics", "Perturbation"]


# ============================================================================================ state

class CameraIntrinsics(NamedTuple):
    fx: float
    fy: float
    cx: float
    cy: float


@dataclass(frozen=True)
class QuadrotorState:
    time_s: float
    position: np.ndarray               # (3,) world position of the centre of mass (= body origin), m
    quaternion_wxyz: np.ndarray        # (4,) body -> world rotation
    linear_velocity_world: np.ndarray  # (3,) m/s
    angular_velocity_body: np.ndarray  # (3,) rad/s, what the gyro reads (plus noise if enabled)
    specific_force_body: np.ndarray    # (3,) m/s^2, what the accelerometer reads: +g on z at rest
    motor_thrusts_n: np.ndarray        # (n,) actual thrust after the motor lag
    battery: BatteryState
    on_ground: bool                    # touching the ground plane or a static box
    armed: bool
    odom_time_s: float = math.nan      # when position and velocity were measured (time_s without latency)


@dataclass(frozen=True)
class Perturbation:
    """How the simulated vehicle departs from its airframe file. Scales multiply the file's constants."""
    mass_scale: float = 1.0
    inertia_scale: float = 1.0
    max_thrust_scale: float = 1.0
    motor_lag_scale: float = 1.0
    drag_scale: float = 1.0
    yaw_torque_scale: float = 1.0
    com_offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)     # centre of mass from the body origin
    gyro_bias_rad_s: tuple[float, float, float] = (0.0, 0.0, 0.0)
    accel_bias_m_s2: tuple[float, float, float] = (0.0, 0.0, 0.0)
    odom_latency_s: float = 0.0        # position and velocity are this old (attitude and rates are the IMU's)
    wind_m_s: tuple[float, float, float] = (0.0, 0.0, 0.0)         # mean wind, world frame
    gust_m_s: float = 0.0              # gust amplitude (sum of three seeded sinusoids, random directions)
    gust_period_s: float = 4.0         # typical gust period

    def __post_init__(self) -> None:
        for name in ("mass_scale", "inertia_scale", "max_thrust_scale", "motor_lag_scale", "yaw_torque_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"perturbation {name} must be finite and > 0, got {value!r}")
        for name in ("drag_scale", "odom_latency_s", "gust_m_s", "gust_period_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"perturbation {name} must be finite and >= 0, got {value!r}")

    def apply(self, airframe: Airframe) -> Airframe:
        """The airframe the physics actually has."""
        return replace(
            airframe, mass_kg=airframe.mass_kg * self.mass_scale,
            inertia_kgm2=tuple(v * self.inertia_scale for v in airframe.inertia_kgm2),
            motor_max_thrust_n=airframe.motor_max_thrust_n * self.max_thrust_scale,
            motor_time_constant_s=airframe.motor_time_constant_s * self.motor_lag_scale,
            drag_coeff_ns_per_m=tuple(v * self.drag_scale for v in airframe.drag_coeff_ns_per_m),
            torque_coeff_m=airframe.torque_coeff_m * self.yaw_torque_scale)


# ============================================================================================ MJCF

_GROUND, _STATIC, _VEHICLE, _TARGET = "ground", "static", "vehicle", "target"
# Contact filtering (contype/conaffinity bits): static world (1,2), vehicle (2,5), targets (4,0). The vehicle hits
# the world and the targets; targets (mocap, moved kinematically) never collide with the ground or boxes, which
# would only cost solver time.
_CONTACT = {_STATIC: (1, 2), _VEHICLE: (2, 5), _TARGET: (4, 0)}
_VEHICLE_GROUP = 3      # geom group of the vehicle's own geoms: hidden from the onboard camera


def _f(*values: float) -> str:
    return " ".join(f"{v:.9g}" for v in values)


def _png_bytes(image: np.ndarray) -> bytes:
    import cv2
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("could not encode a texture as PNG")
    return buf.tobytes()


def _billboard_texture(texture: Path, max_side: int = 512) -> bytes:
    """The target's picture as PNG bytes (any format OpenCV reads), at most max_side pixels on a side."""
    import cv2
    img = cv2.imread(str(texture), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read target texture image {texture}")
    scale = max_side / max(img.shape[:2])
    if scale < 1.0:
        img = cv2.resize(img, (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    return _png_bytes(img)


def build_mjcf(airframe: Airframe, world: WorldSpec, physics_hz: float,
               camera_pitch_deg: float = 15.0,
               com_offset_m: Sequence[float] = (0.0, 0.0, 0.0)) -> tuple[str, dict[str, bytes], dict]:
    """MJCF text, its in-memory assets and geometry facts for the airframe in the world."""
    L = airframe.arm_length_m
    ixx, iyy, izz = airframe.inertia_kgm2
    cam = airframe.camera or {}
    width, height = int(cam.get("width", 320)), int(cam.get("height", 240))
    hfov = math.radians(float(cam.get("fov_deg", 90.0)))
    fovy = math.degrees(2 * math.atan(math.tan(hfov / 2) * height / width))
    pitch = math.radians(float(cam.get("pitch_deg", camera_pitch_deg)))

    foot_r = 0.06 * L
    leg_h = 0.4 * L
    rest_height = leg_h + foot_r
    rotor_z = 0.06 * L
    ct, cs = _CONTACT[_VEHICLE]
    vis = f'contype="0" conaffinity="0" group="{_VEHICLE_GROUP}"'
    col = f'contype="{ct}" conaffinity="{cs}" group="{_VEHICLE_GROUP}"'

    pos = airframe.motor_positions()
    vehicle: list[str] = [
        '<freejoint name="root"/>',
        f'<inertial pos="{_f(*com_offset_m)}" mass="{airframe.mass_kg:.9g}" diaginertia="{_f(ixx, iyy, izz)}"/>',
        f'<geom name="hull" type="box" size="{_f(0.3 * L, 0.2 * L, 0.08 * L)}" rgba="0.15 0.15 0.18 1" {col}/>',
        f'<geom name="nose" type="box" size="{_f(0.04 * L, 0.12 * L, 0.05 * L)}" pos="{_f(0.3 * L, 0, 0)}" '
        f'rgba="0.9 0.9 0.9 1" {vis}/>',
        f'<site name="imu" pos="0 0 0" size="{0.02 * L:.6g}" group="5"/>',
    ]
    actuators: list[str] = []
    for i, ((x, y), a_deg, ys) in enumerate(zip(pos, airframe.motor_angles_deg, airframe.yaw_signs)):
        front = x > 1e-9
        vehicle += [
            f'<geom name="arm{i}" type="capsule" fromto="0 0 0 {_f(x, y, 0)}" size="{0.04 * L:.6g}" '
            f'rgba="0.2 0.2 0.22 1" {col}/>',
            f'<geom name="motor{i}" type="cylinder" pos="{_f(x, y, rotor_z / 2)}" size="{_f(0.08 * L, rotor_z / 2)}" '
            f'rgba="0.4 0.4 0.4 1" {vis}/>',
            f'<geom name="rotor{i}" type="cylinder" pos="{_f(x, y, rotor_z)}" size="{_f(0.5 * L, 0.004 * L)}" '
            f'rgba="{"0.85 0.2 0.15" if front else "0.6 0.6 0.65"} 0.45" {vis}/>',
            f'<site name="rotor{i}" pos="{_f(x, y, rotor_z)}" size="{0.03 * L:.6g}" group="5"/>',
        ]
        fx, fy = 0.6 * L * math.cos(math.radians(a_deg)), 0.6 * L * math.sin(math.radians(a_deg))
        vehicle += [
            f'<geom name="leg{i}" type="capsule" fromto="{_f(0.3 * fx, 0.3 * fy, 0, fx, fy, -leg_h)}" '
            f'size="{0.02 * L:.6g}" rgba="0.3 0.3 0.3 1" {vis}/>',
            f'<geom name="foot{i}" type="sphere" pos="{_f(fx, fy, -leg_h)}" size="{foot_r:.6g}" '
            f'rgba="0.1 0.1 0.1 1" friction="1.0 0.005 0.0001" {col}/>',
        ]
        actuators.append(
            f'<general name="motor{i}" site="rotor{i}" gear="0 0 1 0 0 {ys * airframe.torque_coeff_m:.9g}" '
            f'dyntype="filterexact" dynprm="{airframe.motor_time_constant_s:.9g}" gaintype="fixed" gainprm="1" '
            f'biastype="none" ctrllimited="true" ctrlrange="0 {airframe.motor_max_thrust_n:.9g}"/>')
    for axis, c in zip("xyz", airframe.drag_coeff_ns_per_m):
        gear = {"x": "1 0 0", "y": "0 1 0", "z": "0 0 1"}[axis]
        actuators.append(
            f'<general name="drag_{axis}" site="imu" gear="{gear} 0 0 0" gaintype="fixed" gainprm="0" '
            f'biastype="affine" biasprm="0 0 {-c:.9g}" ctrllimited="false"/>')
    # Onboard camera at the nose, looking along body +x and pitched down: image right = body -y,
    # image up = body z tilted forward by the pitch (MuJoCo cameras look along their -z).
    sp, cp = math.sin(pitch), math.cos(pitch)
    cam_pos = cam.get("position", (0.36 * L, 0.0, 0.0))
    vehicle.append(f'<camera name="onboard" pos="{_f(*cam_pos)}" xyaxes="0 -1 0 {_f(sp, 0, cp)}" '
                   f'fovy="{fovy:.9g}"/>')
    vehicle.append(f'<camera name="chase" mode="trackcom" pos="{_f(-8 * L, 0, 3 * L)}" '
                   f'xyaxes="0 -1 0 {_f(0.34, 0, 0.94)}" fovy="60"/>')

    assets: dict[str, bytes] = {}
    asset_xml = [
        '<texture name="sky" type="skybox" builtin="gradient" rgb1="0.55 0.7 0.9" rgb2="0.95 0.95 1.0" '
        'width="256" height="256"/>',
        '<texture name="checker" type="2d" builtin="checker" rgb1="0.42 0.45 0.42" rgb2="0.3 0.33 0.3" '
        'width="512" height="512" mark="edge" markrgb="0.55 0.58 0.55"/>',
        '<material name="ground" texture="checker" texrepeat="1 1" texuniform="true" reflectance="0"/>',
    ]
    st, ss = _CONTACT[_STATIC]
    gx, gy = world.ground_size
    worldbody = [
        '<light name="sun" directional="true" pos="0 0 20" dir="-0.3 0.2 -1" diffuse="0.7 0.7 0.7" '
        'specular="0.1 0.1 0.1" castshadow="false"/>',
        f'<geom name="{_GROUND}" type="plane" size="{_f(gx / 2, gy / 2, 1)}" material="ground" '
        f'contype="{st}" conaffinity="{ss}" friction="1.0 0.005 0.0001"/>',
    ]
    for box in world.boxes:
        sx, sy, sz = box.size
        worldbody.append(
            f'<geom name="box_{box.name}" type="box" size="{_f(sx / 2, sy / 2, sz / 2)}" pos="{_f(*box.position)}" '
            f'quat="{_f(*quat_from_yaw(math.radians(box.yaw_deg)))}" rgba="{_f(*box.rgba)}" contype="{st}" '
            f'conaffinity="{ss}"/>')
    tt, ts = _CONTACT[_TARGET]
    for t in world.targets:
        sx, sy, sz = t.size
        geoms = (f'<geom name="target_{t.name}" type="box" size="{_f(sx / 2, sy / 2, sz / 2)}" rgba="{_f(*t.rgba)}" '
                 f'contype="{tt}" conaffinity="{ts}"/>')
        if t.texture is not None:
            # The picture goes on a 2 mm "poster" box on the billboard's front (+x) face: MuJoCo maps a 2-D
            # texture onto each face of a box, upright and unmirrored on the +x face, stretched to the face.
            fname = f"target_{t.name}.png"
            assets[fname] = _billboard_texture(t.texture)
            asset_xml += [f'<texture name="tex_{t.name}" type="2d" file="{fname}"/>',
                          f'<material name="mat_{t.name}" texture="tex_{t.name}" reflectance="0"/>']
            geoms += (f'<geom name="poster_{t.name}" type="box" size="{_f(0.001, sy / 2, sz / 2)}" '
                      f'pos="{_f(sx / 2 + 0.001, 0, 0)}" material="mat_{t.name}" contype="0" conaffinity="0"/>')
        worldbody.append(f'<body name="target_{t.name}" mocap="true" pos="{_f(*t.position)}" '
                         f'quat="{_f(*quat_from_yaw(math.radians(t.yaw_deg)))}">{geoms}</body>')
    worldbody.append(f'<body name="vehicle" pos="{_f(0, 0, rest_height)}">' + "".join(vehicle) + "</body>")

    xml = f"""<mujoco model="mmchat_{airframe.name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{1.0 / physics_hz:.12g}" gravity="0 0 {-GRAVITY:.9g}" integrator="implicitfast"/>
  <visual>
    <global offwidth="{max(width, 640)}" offheight="{max(height, 480)}"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45" specular="0 0 0"/>
    <quality shadowsize="0"/>
    <map znear="0.01" zfar="200"/>
  </visual>
  <asset>{''.join(asset_xml)}</asset>
  <worldbody>{''.join(worldbody)}</worldbody>
  <actuator>{''.join(actuators)}</actuator>
  <sensor>
    <accelerometer name="accel" site="imu"/>
    <gyro name="gyro" site="imu"/>
  </sensor>
</mujoco>"""
    facts = {"rest_height_m": rest_height, "camera_width": width, "camera_height": height,
             "camera_hfov_rad": hfov, "camera_fovy_deg": fovy}
    return xml, assets, facts


# ============================================================================================ simulator

class QuadrotorSim:
    """MuJoCo quadrotor with motor lag, body drag, ground contact, IMU, battery and an onboard camera.

    ``physics_hz``: physics rate (MuJoCo timestep = 1/physics_hz). ``camera``: open the GL context now (fails
    fast when no headless GL works); otherwise it opens on the first ``render_camera()``. ``imu_noise``:
    (accelerometer m/s^2, gyro rad/s) white-noise standard deviations, drawn from ``seed``; default off.
    ``perturbation``: the physics departs from ``airframe`` this way (``airframe`` stays the nominal one).
    """

    def __init__(self, airframe: Airframe, world: WorldSpec | str | Path | None = None, physics_hz: float = 500,
                 camera: bool = False, seed: int = 0, imu_noise: tuple[float, float] = (0.0, 0.0),
                 target_update_hz: float = 100.0, perturbation: Perturbation | None = None):
        if physics_hz <= 0 or not math.isfinite(physics_hz):
            raise ValueError(f"physics_hz must be positive, got {physics_hz}")
        if world is None:
            world = WorldSpec(name="empty")
        elif not isinstance(world, WorldSpec):
            world = load_world(world)
        self.airframe = airframe
        self.world = world
        self.physics_hz = float(physics_hz)
        self.seed = int(seed)
        self.imu_noise = (float(imu_noise[0]), float(imu_noise[1]))
        self.perturbation = perturbation or Perturbation()
        self.physical = self.perturbation.apply(airframe)
        xml, assets, facts = build_mjcf(self.physical, world, physics_hz,
                                        com_offset_m=self.perturbation.com_offset_m)
        self.mjcf = xml
        self.model = mujoco.MjModel.from_xml_string(xml, assets)
        self.data = mujoco.MjData(self.model)
        self.dt = float(self.model.opt.timestep)
        self.rest_height_m = float(facts["rest_height_m"])
        self.camera_width = int(facts["camera_width"])
        self.camera_height = int(facts["camera_height"])
        self._hfov = float(facts["camera_hfov_rad"])
        self._fovy_deg = float(facts["camera_fovy_deg"])

        m = self.model
        self._n = airframe.num_motors
        assert m.na == self._n, "only the motor actuators may carry activation (their thrust after the lag)"
        self._body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "vehicle")
        self._accel_adr = int(m.sensor_adr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, "accel")])
        self._gyro_adr = int(m.sensor_adr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, "gyro")])
        self._targets = [(t, m.body_mocapid[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"target_{t.name}")])
                         for t in world.targets]
        self._moving = any(t.path is not None for t, _ in self._targets)
        self._target_every = max(1, int(round(self.physics_hz / target_update_hz)))
        self.battery = BatteryModel(airframe.battery, airframe.hover_thrust_n)
        pert = self.perturbation
        self._wind = np.asarray(pert.wind_m_s, float)
        gust_rng = np.random.default_rng(seed + 7919)
        # Three gust components at incommensurate periods around gust_period_s, random directions and phases.
        self._gusts = [(pert.gust_period_s * f, gust_rng.uniform(0, 2 * math.pi),
                        gust_rng.normal(size=3) * np.array([1.0, 1.0, 0.3]))
                       for f in (0.6, 1.0, 1.7)]
        self._gusts = [(period, phase, d / np.linalg.norm(d) / math.sqrt(1.5)) for period, phase, d in self._gusts]
        self._windy = bool(np.any(self._wind) or pert.gust_m_s > 0.0)
        self._drag = np.asarray(self.physical.drag_coeff_ns_per_m, float)
        self._history: collections.deque = collections.deque(maxlen=max(2, int(pert.odom_latency_s * physics_hz) + 4))
        self._renderer: OffscreenRenderer | None = None
        self._cams = {name: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, name) for name in ("onboard", "chase")}
        self.reset()
        if camera:
            self._ensure_renderer()

    # ------------------------------------------------------------------------------------------ control

    def reset(self, position: Sequence[float] = (0.0, 0.0, 0.0), yaw: float = 0.0,
              motor_thrusts_n: Sequence[float] | None = None, reset_battery: bool = True) -> None:
        """Put the vehicle at ``position`` (centre of mass, world) with heading ``yaw`` (rad, about z), at rest,
        sim time 0. A z at or below ``rest_height_m`` (e.g. the default 0) means standing on the ground on its
        feet (the contacts are settled before time 0). Motors are off and disarmed unless ``motor_thrusts_n`` is
        given: then the vehicle starts armed with its motors already spinning at those thrusts (an airborne
        start, e.g. hover thrust at altitude)."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        x, y, z = (float(v) for v in position)
        if not all(math.isfinite(v) for v in (x, y, z, yaw)):
            raise ValueError("reset position and yaw must be finite")
        on_ground = z <= self.rest_height_m
        d.qpos[0:3] = (x, y, self.rest_height_m if on_ground else z)
        d.qpos[3:7] = quat_from_yaw(yaw)
        self._armed = False
        self._step_debt = 0.0
        self._rng = np.random.default_rng(self.seed)
        if reset_battery:
            self.battery.reset()
        self._update_targets(0.0)
        self._target_countdown = self._target_every
        if on_ground:
            # Let the feet find their equilibrium penetration so the IMU reads +g and nothing bounces at t=0.
            mujoco.mj_step(m, d, max(1, int(round(0.3 / self.dt))))
            d.qpos[0:2] = (x, y)
            d.qvel[:] = 0.0
            d.time = 0.0
        if motor_thrusts_n is not None:
            self.set_motor_commands(motor_thrusts_n, armed=True)
            d.act[: self._n] = d.ctrl[: self._n]
        mujoco.mj_forward(m, d)
        self._history.clear()
        self._record()

    def set_motor_commands(self, thrusts_n: Sequence[float], armed: bool) -> None:
        """Per-motor thrust set-points (N), clipped to [0, motor_max_thrust_n]; disarmed: all spin down."""
        cmd = np.asarray(thrusts_n, dtype=float).reshape(-1)
        if cmd.shape != (self._n,):
            raise ValueError(f"expected {self._n} motor thrusts, got shape {np.shape(thrusts_n)}")
        if not np.all(np.isfinite(cmd)):
            raise ValueError(f"motor thrusts must be finite, got {cmd.tolist()}")
        self._armed = bool(armed)
        ctrl = np.clip(cmd, 0.0, self.physical.motor_max_thrust_n) if self._armed else np.zeros(self._n)
        self.data.ctrl[: self._n] = ctrl

    def step(self, duration_s: float) -> float:
        """Advance by the whole number of physics substeps nearest to duration_s (the rounding remainder carries
        over to the next call, so sim time tracks the requested time). Returns the sim time."""
        if duration_s < 0 or not math.isfinite(duration_s):
            raise ValueError(f"step duration must be finite and >= 0, got {duration_s}")
        want = duration_s / self.dt + self._step_debt
        n = int(math.floor(want + 1e-9))
        self._step_debt = max(0.0, want - n)
        if n == 0:
            return float(self.data.time)
        m, d = self.model, self.data
        if self.battery.depleted:
            d.ctrl[: self._n] = 0.0          # the pack is flat: the ESCs cut out
        thrust_before = float(d.act.sum())   # act holds exactly the motor thrusts (the only stateful actuators)
        if self._windy:
            self._apply_wind(float(d.time))
        if self._moving:
            # Targets move kinematically, every _target_every substeps (target_update_hz).
            left = n
            while left > 0:
                k = min(left, self._target_countdown)
                mujoco.mj_step(m, d, k)
                left -= k
                self._target_countdown -= k
                if self._target_countdown == 0:
                    self._update_targets(d.time)
                    self._target_countdown = self._target_every
        else:
            mujoco.mj_step(m, d, n)
        # mj_step leaves sensors and kinematics at the start of its last substep: recompute them for the
        # state now reached, so state() and render_camera() describe the same instant.
        mujoco.mj_forward(m, d)
        thrust_after = float(d.act.sum())
        self.battery.drain(n * self.dt, 0.5 * (thrust_before + thrust_after))
        self._record()
        return float(d.time)

    def wind_at(self, t: float) -> np.ndarray:
        """Wind velocity (world, m/s) at sim time t."""
        wind = self._wind.copy()
        gust = self.perturbation.gust_m_s
        if gust > 0.0:
            for period, phase, direction in self._gusts:
                wind += gust * math.sin(2.0 * math.pi * t / period + phase) * direction
        return wind

    def _apply_wind(self, t: float) -> None:
        # Linear drag acts on the velocity relative to the air; the drag actuators see the ground-relative
        # velocity, so the wind adds R diag(c) Rᵀ w (held over one step() call).
        rot = self.data.xmat[self._body].reshape(3, 3)
        self.data.xfrc_applied[self._body, :3] = rot @ (self._drag * (rot.T @ self.wind_at(t)))

    def _record(self) -> None:
        if self.perturbation.odom_latency_s > 0.0:
            d = self.data
            self._history.append((float(d.time), d.qpos[0:3].copy(), d.qvel[0:3].copy()))

    # ------------------------------------------------------------------------------------------ readout

    def state(self) -> QuadrotorState:
        d = self.data
        accel = d.sensordata[self._accel_adr:self._accel_adr + 3].copy()
        gyro = d.sensordata[self._gyro_adr:self._gyro_adr + 3].copy()
        sa, sg = self.imu_noise
        if sa > 0:
            accel += self._rng.normal(0.0, sa, 3)
        if sg > 0:
            gyro += self._rng.normal(0.0, sg, 3)
        pert = self.perturbation
        accel += pert.accel_bias_m_s2
        gyro += pert.gyro_bias_rad_s
        position, velocity = d.qpos[0:3].copy(), d.qvel[0:3].copy()
        odom_time = float(d.time)
        if pert.odom_latency_s > 0.0 and self._history:
            # The newest recorded state at least odom_latency_s old (the oldest while the history fills).
            wanted = float(d.time) - pert.odom_latency_s
            odom_time, position, velocity = self._history[0]
            for stamp, p, v in reversed(self._history):
                if stamp <= wanted + 1e-9:
                    odom_time, position, velocity = stamp, p, v
                    break
            position, velocity = position.copy(), velocity.copy()
        return QuadrotorState(
            time_s=float(d.time),
            position=position,
            quaternion_wxyz=d.qpos[3:7].copy(),
            linear_velocity_world=velocity,
            angular_velocity_body=gyro,
            specific_force_body=accel,
            motor_thrusts_n=d.act[: self._n].copy(),
            battery=self.battery.state(),
            on_ground=self._on_ground(),
            armed=self._armed,
            odom_time_s=odom_time,
        )

    def _on_ground(self) -> bool:
        d = self.data
        if d.ncon == 0:
            return False
        geoms = d.contact.geom[: d.ncon]
        bodies = self.model.geom_bodyid[geoms]
        # a contact between the vehicle's body and a geom of the world body (ground plane or a static box)
        return bool(np.any(((bodies[:, 0] == self._body) & (bodies[:, 1] == 0)) |
                           ((bodies[:, 1] == self._body) & (bodies[:, 0] == 0))))

    def target_positions(self) -> dict[str, np.ndarray]:
        """World position of each target's centre, by name."""
        return {t.name: self.data.mocap_pos[mid].copy() for t, mid in self._targets}

    def _update_targets(self, t: float) -> None:
        for target, mid in self._targets:
            self.data.mocap_pos[mid] = target.position_at(t)

    # ------------------------------------------------------------------------------------------ camera

    def camera_intrinsics(self) -> CameraIntrinsics:
        """Pinhole intrinsics of the onboard camera (pixels; principal point at the image centre in OpenCV's
        convention, where pixel centres sit on integer coordinates). The airframe's fov_deg is horizontal."""
        fx = (self.camera_width / 2) / math.tan(self._hfov / 2)
        fy = (self.camera_height / 2) / math.tan(math.radians(self._fovy_deg) / 2)
        return CameraIntrinsics(fx, fy, (self.camera_width - 1) / 2, (self.camera_height - 1) / 2)

    def _ensure_renderer(self) -> OffscreenRenderer:
        if self._renderer is None:
            self._renderer = OffscreenRenderer(self.model, self.camera_width, self.camera_height)
            self._option = mujoco.MjvOption()
            self._option.geomgroup[_VEHICLE_GROUP] = 0           # the nose camera does not see its own frame
            self._chase_option = mujoco.MjvOption()
            self._chase_option.geomgroup[_VEHICLE_GROUP] = 1
        return self._renderer

    def render_camera(self, camera: str = "onboard", data: mujoco.MjData | None = None) -> np.ndarray:
        """HxWx3 uint8 RGB image from the onboard camera (or "chase", a camera following the vehicle).

        ``data``: a copy of the physics state (``mujoco.mj_copyData``) to render instead of the live one, so a
        render thread can draw frame N while the physics thread computes N+1. The GL context is created by, and
        must stay with, the thread that renders first."""
        if camera not in self._cams:
            raise ValueError(f"unknown camera {camera!r}; known: {sorted(self._cams)}")
        renderer = self._ensure_renderer()
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        cam.fixedcamid = self._cams[camera]
        return renderer.render(self.data if data is None else data, cam,
                               self._option if camera == "onboard" else self._chase_option)

    def release_camera(self) -> None:
        """Free the GL context; call from the thread that rendered (EGL contexts are bound to a thread)."""
        if self._renderer is not None:
            renderer, self._renderer = self._renderer, None
            renderer.close()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> "QuadrotorSim":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
