"""Quadrotor airframe description shared by the simulator and the flight controller's mixer."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

GRAVITY = 9.80665


@dataclass(frozen=True)
class Battery:
    cells: int
    capacity_mah: float
    full_v: float
    empty_v: float
    hover_current_a: float


@dataclass(frozen=True)
class Airframe:
    name: str
    mass_kg: float
    inertia_kgm2: tuple[float, float, float]
    arm_length_m: float
    motor_angles_deg: tuple[float, ...]
    yaw_signs: tuple[int, ...]
    motor_max_thrust_n: float
    motor_time_constant_s: float
    torque_coeff_m: float
    drag_coeff_ns_per_m: tuple[float, float, float]
    battery: Battery
    camera: dict = field(default_factory=dict)
    description: str = ""
    envelope_limits: dict = field(default_factory=dict)   # widest geofence / ceiling a run-time change may set

    @property
    def num_motors(self) -> int:
        return len(self.motor_angles_deg)

    @property
    def hover_thrust_n(self) -> float:
        return self.mass_kg * GRAVITY

    def motor_positions(self) -> np.ndarray:
        """(n, 2) motor x, y positions in the body frame, metres."""
        a = np.radians(self.motor_angles_deg)
        return self.arm_length_m * np.stack([np.cos(a), np.sin(a)], axis=1)

    def allocation_matrix(self) -> np.ndarray:
        """4×n matrix A with [thrust, tau_x, tau_y, tau_z] = A @ motor_thrusts."""
        pos = self.motor_positions()
        return np.vstack([
            np.ones(self.num_motors),
            pos[:, 1],                                   # roll torque: y_i * f_i
            -pos[:, 0],                                  # pitch torque: -x_i * f_i
            np.asarray(self.yaw_signs, float) * self.torque_coeff_m,
        ])


def _coerce(name: str, spec: dict) -> Airframe:
    required = ("mass_kg", "inertia_kgm2", "arm_length_m", "motor_angles_deg", "yaw_signs", "motor_max_thrust_n",
                "motor_time_constant_s", "torque_coeff_m", "drag_coeff_ns_per_m", "battery")
    missing = [k for k in required if k not in spec]
    if missing:
        raise ValueError(f"airframe '{name}': missing keys {missing}")
    if len(spec["motor_angles_deg"]) != len(spec["yaw_signs"]):
        raise ValueError(f"airframe '{name}': motor_angles_deg and yaw_signs differ in length")
    af = Airframe(
        name=name,
        mass_kg=float(spec["mass_kg"]),
        inertia_kgm2=tuple(float(v) for v in spec["inertia_kgm2"]),
        arm_length_m=float(spec["arm_length_m"]),
        motor_angles_deg=tuple(float(v) for v in spec["motor_angles_deg"]),
        yaw_signs=tuple(int(v) for v in spec["yaw_signs"]),
        motor_max_thrust_n=float(spec["motor_max_thrust_n"]),
        motor_time_constant_s=float(spec["motor_time_constant_s"]),
        torque_coeff_m=float(spec["torque_coeff_m"]),
        drag_coeff_ns_per_m=tuple(float(v) for v in spec["drag_coeff_ns_per_m"]),
        battery=Battery(**spec["battery"]),
        camera=dict(spec.get("camera", {})),
        description=str(spec.get("description", "")),
        envelope_limits=dict(spec.get("envelope_limits", {})),
    )
    if af.num_motors * af.motor_max_thrust_n <= af.hover_thrust_n:
        raise ValueError(f"airframe '{name}': motors cannot lift its mass")
    if not all(math.isfinite(v) and v > 0 for v in (af.mass_kg, af.arm_length_m, af.motor_max_thrust_n)):
        raise ValueError(f"airframe '{name}': mass, arm length and max thrust must be positive")
    return af


def default_airframes_file() -> Path:
    """config/airframes.yaml of the checkout, or of the installed share directory."""
    from mmchat_ros.core.paths import config_file
    return config_file("airframes.yaml")


def load_airframe(name: str, path: str | Path | None = None) -> Airframe:
    path = Path(path) if path else default_airframes_file()
    data = yaml.safe_load(path.read_text()) or {}
    if name not in data:
        raise KeyError(f"unknown airframe '{name}' in {path}; known: {sorted(data)}")
    return _coerce(name, data[name])
