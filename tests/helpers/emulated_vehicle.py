"""The airframe behind the protocol emulators (tests/helpers/tello_emulator.py, mavlink_emulator.py): our MuJoCo
quadrotor flown by our FlightCore standing in for the vehicle's own inner loops, stepped in real time in a thread.

A test double, not a vehicle model of any particular drone: it gives the emulators a body that really climbs,
drifts, tilts and lands, so the drivers' odometry and the flight controller's reactions are checked against
physics and not against scripted numbers. Truth is in the simulator's ENU world, relative to where the vehicle
started on the ground.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from mmchat_ros.backends.sim.quadrotor import QuadrotorSim
from mmchat_ros.core.airframe import load_airframe
from mmchat_ros.core.flight.control import VehicleState
from mmchat_ros.core.flight.flight_core import FlightCore, FlightCoreConfig
from mmchat_ros.core.geometry import euler_from_quat, yaw_from_quat

INNER_SOURCE = "inner"     # the one command source of the inner loop's mux


@dataclass(frozen=True)
class Truth:
    time_s: float
    position: np.ndarray          # ENU, m, relative to the start point on the ground
    velocity: np.ndarray          # ENU world, m/s
    quaternion_wxyz: np.ndarray   # FLU body → ENU
    angular_velocity_body: np.ndarray   # FLU, rad/s
    specific_force_body: np.ndarray     # FLU, m/s² (+g on z at rest)
    battery_fraction: float
    voltage_v: float
    current_a: float
    on_ground: bool
    motors_on: bool
    mode: str                     # the inner FlightCore's mode

    @property
    def yaw(self) -> float:
        return yaw_from_quat(self.quaternion_wxyz)

    @property
    def euler(self) -> tuple[float, float, float]:
        """Z-Y-X roll, pitch, yaw of the FLU body in ENU (rad)."""
        return euler_from_quat(self.quaternion_wxyz)


class EmulatedVehicle:
    """Sim + inner-loop FlightCore at ``rate_hz`` in real time. ``on_tick(now)`` callbacks run in the physics thread
    with ``lock`` held; everything else touching ``core`` must hold ``lock`` too."""

    def __init__(self, airframe: str = "x500", rate_hz: float = 100.0, start_yaw_deg: float = 0.0,
                 min_flight_height_m: float = 0.05, max_speed_xy: float = 5.0):
        self.rate_hz = float(rate_hz)
        self.sim = QuadrotorSim(load_airframe(airframe), None, physics_hz=500)
        self.start_yaw = math.radians(start_yaw_deg)
        self.sim.reset(yaw=self.start_yaw)
        self.origin = np.array([0.0, 0.0, self.sim.rest_height_m])
        config = FlightCoreConfig.from_dict({
            "control_rate_hz": self.rate_hz, "require_authorisation": False, "hover_land_timeout_s": None,
            "min_flight_height_m": min_flight_height_m,
            "envelope": {"max_speed_xy": max_speed_xy, "max_speed_z": 2.0, "max_yaw_rate_deg_s": 120.0,
                         "geofence_min": (-50.0, -50.0, -1.0), "geofence_max": (50.0, 50.0, 20.0),
                         "max_altitude_m": 20.0, "low_battery_fraction": 0.05},
            "mux": {"sources": {INNER_SOURCE: {"priority": 1, "timeout_s": 0.5}}}})
        self.core = FlightCore.from_names(airframe, config)
        self.lock = threading.RLock()
        self.on_tick: list[Callable[[float], None]] = []
        self.running = False
        self.thread: threading.Thread | None = None
        self._render_data = None
        self.errors: list[str] = []

    # ------------------------------------------------------------------------------------------- physics
    def start(self) -> "EmulatedVehicle":
        self.running = True
        self.thread = threading.Thread(target=self._loop, name="emulated-vehicle", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.running = False
        if self.thread is not None:
            self.thread.join(timeout=3.0)
        self.sim.close()

    def _loop(self) -> None:
        period = 1.0 / self.rate_hz
        wall_start = time.monotonic()
        sim_start = self.sim.state().time_s
        while self.running:
            with self.lock:
                now = self._step(period)
                for callback in self.on_tick:
                    try:
                        callback(now)
                    except Exception as exc:  # noqa: BLE001 - an emulator bug must show in the test, not kill physics
                        self.errors.append(f"{type(exc).__name__}: {exc}")
            delay = wall_start + (now - sim_start) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.5:       # CPU-starved: re-anchor rather than sprint
                wall_start, sim_start = time.monotonic(), now

    def _step(self, period: float) -> float:
        state = self.sim.state()
        self.core.update_odometry(VehicleState(state.position - self.origin, state.linear_velocity_world,
                                               state.quaternion_wxyz, state.angular_velocity_body), state.time_s)
        self.core.update_attitude(state.quaternion_wxyz, state.angular_velocity_body, state.time_s)
        thrusts, armed, _ = self.core.step(state.time_s)
        self.sim.set_motor_commands(thrusts, armed)
        return self.sim.step(period)

    # ---------------------------------------------------------------------------------------------- readout
    def truth(self) -> Truth:
        with self.lock:
            state = self.sim.state()
            mode = self.core.mode.value
        battery = state.battery
        return Truth(state.time_s, state.position - self.origin, state.linear_velocity_world, state.quaternion_wxyz,
                     state.angular_velocity_body, state.specific_force_body, float(battery.percentage),
                     float(battery.voltage_v), float(battery.current_a), bool(state.on_ground), bool(state.armed),
                     mode)

    def render(self) -> np.ndarray:
        """The onboard camera (RGB), rendered outside the physics lock from a copy of the state. Call from one
        thread only (the GL context belongs to the thread that renders first)."""
        with self.lock:
            if self._render_data is None:
                self._render_data = mujoco.MjData(self.sim.model)
            mujoco.mj_copyData(self._render_data, self.sim.model, self.sim.data)
        return self.sim.render_camera(data=self._render_data)

    def release_camera(self) -> None:
        self.sim.release_camera()
