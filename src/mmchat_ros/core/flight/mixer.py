"""Motor allocation: the wrench [collective thrust, τx, τy, τz] the controller asks for → per-motor thrusts, through
the inverse of the airframe's allocation matrix, giving up yaw, then collective, then roll/pitch where the motors
cannot deliver everything (see Mixer)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmchat_ros.core.airframe import Airframe


@dataclass
class MixerResult:
    motor_thrusts_n: np.ndarray
    roll_pitch_scale: float      # 1: full roll/pitch torque delivered
    yaw_scale: float             # 1: full yaw torque delivered
    thrust_shift_n: float        # collective thrust added (+) or removed (-) to fit the motors' range

    @property
    def saturated(self) -> bool:
        return self.roll_pitch_scale < 1.0 or self.yaw_scale < 1.0 or abs(self.thrust_shift_n) > 1e-9


class Mixer:
    """Wrench [thrust, τx, τy, τz] → motor thrusts in [0, motor_max_thrust_n], with desaturation.

    Priorities when the motors cannot deliver everything: roll/pitch torque first (it keeps the vehicle
    upright), then collective thrust, then yaw torque. Collective thrust is shifted as needed to keep the
    roll/pitch differential inside the motors' range; roll/pitch is only scaled down when even the full range
    cannot hold the differential; yaw is scaled down to what is left without moving the collective.
    """

    def __init__(self, airframe: Airframe):
        allocation = airframe.allocation_matrix()
        if np.linalg.matrix_rank(allocation) < 4:
            raise ValueError(f"airframe '{airframe.name}': allocation matrix cannot control thrust, roll, pitch "
                             f"and yaw independently")
        self.allocation = allocation
        self._inverse = np.linalg.pinv(allocation)      # n×4: exact inverse for a quad, least-norm otherwise
        self._thrust_column = self._inverse[:, 0]         # motor thrusts per newton of collective
        self._roll_pitch_columns = self._inverse[:, 1:3]
        self._yaw_column = self._inverse[:, 3]
        if np.any(self._thrust_column <= 0.0):
            raise ValueError(f"airframe '{airframe.name}': collective thrust must raise every motor")
        self.max_thrust = airframe.motor_max_thrust_n
        self.num_motors = airframe.num_motors
        self._thrust_column_list = [float(c) for c in self._thrust_column]
        self._roll_pitch_rows = [(float(a), float(b)) for a, b in self._roll_pitch_columns]
        self._yaw_column_list = [float(c) for c in self._yaw_column]

    def mix(self, collective_n: float, torque_nm: Sequence[float]) -> MixerResult:
        # Plain floats: for 4-8 motors this is several times faster than numpy and runs every control step.
        col = self._thrust_column_list
        top = self.max_thrust
        tau_x, tau_y, tau_z = float(torque_nm[0]), float(torque_nm[1]), float(torque_nm[2])
        roll_pitch = [a * tau_x + b * tau_y for a, b in self._roll_pitch_rows]

        # Largest roll/pitch scale k for which some collective shift fits every motor in [0, max]. With
        # ρ = roll_pitch / c, motors i, j fit together iff k (ρ_i - ρ_j) <= max / c_i; the binding j is argmin ρ.
        rho = [r / c for r, c in zip(roll_pitch, col)]
        rho_min = min(rho)
        roll_pitch_scale = 1.0
        for rho_i, c in zip(rho, col):
            excess = rho_i - rho_min
            if excess > 1e-12:
                roll_pitch_scale = min(roll_pitch_scale, top / c / excess)
        motors = [collective_n * c + roll_pitch_scale * r for c, r in zip(col, roll_pitch)]

        # Shift the collective by the least amount that brings every motor inside its range.
        shift_low = max(-m / c for m, c in zip(motors, col))
        shift_high = min((top - m) / c for m, c in zip(motors, col))
        shift = min(max(0.0, shift_low), shift_high)
        motors = [m + shift * c for m, c in zip(motors, col)]

        # Yaw gets whatever headroom is left on every motor without touching the collective again.
        yaw = [y * tau_z for y in self._yaw_column_list]
        yaw_scale = 1.0
        for m, y in zip(motors, yaw):
            if y > 1e-12:
                yaw_scale = min(yaw_scale, (top - m) / y)
            elif y < -1e-12:
                yaw_scale = min(yaw_scale, -m / y)
        yaw_scale = max(0.0, yaw_scale)
        motors = np.array([min(max(m + yaw_scale * y, 0.0), top) for m, y in zip(motors, yaw)])
        return MixerResult(motors, roll_pitch_scale, yaw_scale, shift)

    def wrench(self, motor_thrusts_n: np.ndarray) -> np.ndarray:
        """[thrust, τx, τy, τz] produced by the given motor thrusts."""
        return self.allocation @ motor_thrusts_n
