"""FlightCore flying the MuJoCo QuadrotorSim in lockstep, without ROS: one control tick per sim step, sim time as
the clock. Faster than real time and independent of the machine's load, for benches and sim tests.

The controller is built from the nominal airframe; ``perturbation`` changes only the simulated physics.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping

import numpy as np

from mmchat_ros.backends.sim.quadrotor import Perturbation, QuadrotorSim
from mmchat_ros.core.airframe import load_airframe
from mmchat_ros.core.flight.control import VehicleState
from mmchat_ros.core.flight.flight_core import FlightCore, FlightCoreConfig, FlightStatus
from mmchat_ros.core.flight.gains import load_gains
from mmchat_ros.core.geometry import tilt_from_quat


class Lockstep:
    def __init__(self, airframe: str, control_hz: float = 250.0, camera_hz: float = 0.0, world: str | None = None,
                 perturbation: Perturbation | None = None, imu_noise: tuple[float, float] = (0.0, 0.0),
                 seed: int = 0, config: Mapping[str, Any] | None = None, physics_hz: float = 500.0):
        nominal = load_airframe(airframe)
        self.sim = QuadrotorSim(nominal, world, physics_hz=physics_hz, camera=camera_hz > 0,
                                perturbation=perturbation, imu_noise=imu_noise, seed=seed)
        limits = load_gains(airframe, airframe=nominal, control_rate_hz=control_hz).limits
        # The envelope allows what the airframe's own limits allow (unless the caller says otherwise).
        spec = {"require_authorisation": False, "hover_land_timeout_s": None, "control_rate_hz": control_hz,
                "envelope": {"max_speed_xy": limits.max_speed_xy, "max_speed_z": limits.max_speed_z}}
        for key, value in (config or {}).items():
            spec[key] = {**spec[key], **value} if isinstance(value, Mapping) and key in spec else value
        self.core = FlightCore.from_names(airframe, FlightCoreConfig.from_dict(spec))
        self.control_hz = control_hz
        self.dt = 1.0 / control_hz
        self.camera_every = int(round(control_hz / camera_hz)) if camera_hz > 0 else 0
        self.origin = np.array([0.0, 0.0, self.sim.rest_height_m])
        self.ticks = 0
        self.sim_wall = 0.0          # wall time spent inside the simulator (physics + camera)
        self.now = 0.0
        self.max_tilt_deg = 0.0      # while airborne
        self.max_speed_xy = 0.0
        self.max_speed_z = 0.0

    def tick(self) -> tuple[VehicleState, FlightStatus]:
        s = self.sim.state()
        self.now = s.time_s
        state = VehicleState(position=s.position - self.origin, velocity=s.linear_velocity_world,
                             quaternion_wxyz=s.quaternion_wxyz, angular_velocity_body=s.angular_velocity_body)
        # Stamped when measured, as an external estimator stamps its output (the core carries it forward).
        self.core.update_odometry(state, min(self.now, s.odom_time_s))
        self.core.update_attitude(s.quaternion_wxyz, s.angular_velocity_body, self.now)
        thrusts, armed, status = self.core.step(self.now)
        if not s.on_ground:
            self.max_tilt_deg = max(self.max_tilt_deg, math.degrees(tilt_from_quat(s.quaternion_wxyz)))
            true_velocity = self.sim.data.qvel[0:3]
            self.max_speed_xy = max(self.max_speed_xy, math.hypot(true_velocity[0], true_velocity[1]))
            self.max_speed_z = max(self.max_speed_z, abs(float(true_velocity[2])))
        t0 = time.perf_counter()
        self.sim.set_motor_commands(thrusts, armed)
        self.sim.step(self.dt)
        if self.camera_every and self.ticks % self.camera_every == 0:
            self.sim.render_camera()
        self.sim_wall += time.perf_counter() - t0
        self.ticks += 1
        return state, status

    def true_position(self) -> np.ndarray:
        """Where the vehicle really is (odometry may lag behind), in the controller's frame."""
        return self.sim.data.qpos[0:3].copy() - self.origin

    def run(self, seconds: float, each: Callable[[VehicleState, FlightStatus], None] | None = None,
            until: Callable[[FlightStatus], bool] | None = None):
        state = status = None
        for _ in range(int(round(seconds * self.control_hz))):
            state, status = self.tick()
            if each:
                each(state, status)
            if until and until(status):
                break
        return state, status

    def take_off(self, height: float = 1.5, settle_s: float = 3.0) -> None:
        self.run(0.5)
        assert self.core.takeoff(self.now, height), "take-off refused"
        _, status = self.run(30.0, until=lambda st: st.mode == "HOVER")
        assert status.mode == "HOVER", f"take-off did not finish: {status.mode}"
        self.run(settle_s)

    def close(self) -> None:
        self.sim.close()
