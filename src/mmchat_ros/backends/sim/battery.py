"""Battery model for the embedded simulator: pure numpy, no rclpy.

Model (per airframe, from ``core.airframe.Battery``):

- current drawn     I = hover_current_a * (total_thrust / hover_thrust) ** 1.5 + avionics_current_a
  (momentum theory: rotor power grows with thrust^1.5, and at a near-constant pack voltage so does current);
- state of charge   soc = remaining / capacity, integrated from I (coulomb counting), clipped to 0..1;
- terminal voltage  V = empty_v + (full_v - empty_v) * soc - internal_resistance_ohm * I
  (linear open-circuit curve plus a sag proportional to current), never below 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from mmchat_ros.core.airframe import Battery

#: Per-cell internal resistance used when none is given (a healthy LiPo cell, a few mΩ plus wiring).
DEFAULT_CELL_RESISTANCE_OHM = 0.006


@dataclass(frozen=True)
class BatteryState:
    voltage_v: float          # terminal voltage under the present load
    percentage: float         # state of charge, 0..1
    current_a: float          # present discharge current
    charge_ah: float          # remaining charge
    capacity_ah: float


class BatteryModel:
    """Coulomb-counting battery whose current follows the thrust the motors produce."""

    def __init__(self, spec: Battery, hover_thrust_n: float, *, internal_resistance_ohm: float | None = None,
                 avionics_current_a: float = 0.0, initial_soc: float = 1.0):
        if spec.capacity_mah <= 0:
            raise ValueError("battery capacity_mah must be positive")
        if not spec.full_v > spec.empty_v >= 0:
            raise ValueError("battery needs full_v > empty_v >= 0")
        if hover_thrust_n <= 0 or spec.hover_current_a < 0:
            raise ValueError("hover thrust must be positive and hover current non-negative")
        self.spec = spec
        self.hover_thrust_n = float(hover_thrust_n)
        self.internal_resistance_ohm = (DEFAULT_CELL_RESISTANCE_OHM * spec.cells
                                        if internal_resistance_ohm is None else float(internal_resistance_ohm))
        self.avionics_current_a = float(avionics_current_a)
        self.capacity_ah = spec.capacity_mah / 1000.0
        self._initial_soc = min(max(float(initial_soc), 0.0), 1.0)
        self.reset()

    def reset(self, soc: float | None = None) -> None:
        soc = self._initial_soc if soc is None else min(max(float(soc), 0.0), 1.0)
        self._charge_ah = soc * self.capacity_ah
        self._current_a = 0.0

    def current_for_thrust(self, total_thrust_n: float) -> float:
        """Pack current (A) while the motors produce total_thrust_n newtons in all."""
        ratio = max(float(total_thrust_n), 0.0) / self.hover_thrust_n
        return self.spec.hover_current_a * ratio ** 1.5 + self.avionics_current_a

    def drain(self, dt_s: float, total_thrust_n: float) -> None:
        """Draw the current for total_thrust_n over dt_s seconds."""
        if not dt_s >= 0 or not math.isfinite(dt_s):
            raise ValueError(f"battery step needs a finite dt >= 0, got {dt_s}")
        self._current_a = self.current_for_thrust(total_thrust_n)
        self._charge_ah = max(0.0, self._charge_ah - self._current_a * dt_s / 3600.0)

    def step(self, dt_s: float, total_thrust_n: float) -> BatteryState:
        """drain() then state()."""
        self.drain(dt_s, total_thrust_n)
        return self.state()

    @property
    def soc(self) -> float:
        return self._charge_ah / self.capacity_ah

    @property
    def depleted(self) -> bool:
        return self._charge_ah <= 0.0

    def voltage(self, current_a: float | None = None) -> float:
        current = self._current_a if current_a is None else current_a
        open_circuit = self.spec.empty_v + (self.spec.full_v - self.spec.empty_v) * self.soc
        return max(0.0, open_circuit - self.internal_resistance_ohm * current)

    def state(self) -> BatteryState:
        return BatteryState(voltage_v=self.voltage(), percentage=min(max(self.soc, 0.0), 1.0),
                            current_a=self._current_a, charge_ah=self._charge_ah, capacity_ah=self.capacity_ah)
