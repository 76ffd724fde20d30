"""Landing: a closed-loop descent while odometry is fresh, an open-loop (blind) one without it, and touchdown.

Closed loop, the reference descends at the landing speed (slower near the ground) holding x, y and heading where
the descent started, leads the vehicle by at most ``DESCENT_LEAD_M`` and ends that far below the ground, so the
vehicle settles with its thrust wound down. Touchdown: still for ``touchdown_time_s``, and low over the take-off
ground or resting on something higher with the thrust well below hover. Blind, the vehicle is held level (IMU
attitude) at a thrust a little below the hover thrust until it has certainly reached the ground.
"""
from __future__ import annotations

import math

import numpy as np

from mmchat_ros.core.airframe import GRAVITY
from mmchat_ros.core.flight.control import POSITION_MODE, CascadedController, ControlOutput, Setpoint, VehicleState
from mmchat_ros.core.flight.core_config import FlightCoreConfig
from mmchat_ros.core.geometry import quat_from_yaw, yaw_from_quat

DESCENT_LEAD_M = 0.3                # the reference leads the vehicle down by at most this, and ends this far
                                    # below the ground
TOUCHDOWN_DRIFT_M_S = 0.3           # horizontal speed below which a vehicle may count as touched down
RESTING_THRUST_FRACTION = 0.5       # of the hover thrust: below it, still, the vehicle rests on something
NO_ODOMETRY_BLIND_S = 5.0           # blind descent length when odometry never came


class Landing:
    """One landing. ``step`` returns the motor output, or None once the vehicle is down (motors off)."""

    def __init__(self, config: FlightCoreConfig, controller: CascadedController, ground_z: float,
                 hover_thrust_n: float):
        self.config = config
        self.controller = controller
        self.ground_z = ground_z                   # world z of the take-off ground
        self.hover_thrust_n = hover_thrust_n       # as learnt in flight
        self.xy: np.ndarray | None = None          # closed loop: hold this x, y while the reference z descends
        self.z_ref = 0.0
        self.yaw = 0.0
        self.blind_since: float | None = None      # open loop (no odometry) since then
        self.blind_duration_s = 0.0                # by then it must be down
        self.touchdown_since: float | None = None

    def step(self, state: VehicleState | None, odometry_ok: bool,
             attitude: tuple[np.ndarray, np.ndarray] | None, now: float, dt: float) -> ControlOutput | None:
        """``state``: the latest odometry (stale unless ``odometry_ok``); ``attitude``: fresh IMU attitude and
        body rates, or None."""
        if not odometry_ok or state is None:
            return self._blind_step(state, attitude, now, dt)
        height = state.position[2] - self.ground_z
        setpoint = self._descent_setpoint(state, height, dt)
        output = self.controller.update(state, setpoint, dt, integrate=height > self.config.touchdown_height_m)
        if not self._touched_down(state, height, output.collective_thrust_n):
            self.touchdown_since = None
        elif self.touchdown_since is None:
            self.touchdown_since = now
        elif now - self.touchdown_since >= self.config.touchdown_time_s:
            return None
        return output

    def _descent_setpoint(self, state: VehicleState, height: float, dt: float) -> Setpoint:
        cfg = self.config
        if self.xy is None or self.blind_since is not None:
            # (Re)start the closed-loop descent from where the vehicle is.
            self.xy, self.z_ref, self.yaw = state.position[:2].copy(), float(state.position[2]), state.yaw_rad
            self.blind_since = None
        speed = cfg.landing_speed_m_s if height > cfg.landing_slowdown_height_m else cfg.landing_final_speed_m_s
        self.z_ref = max(self.z_ref - speed * dt, state.position[2] - DESCENT_LEAD_M, self.ground_z - DESCENT_LEAD_M)
        return Setpoint(POSITION_MODE, (self.xy[0], self.xy[1], self.z_ref), (0.0, 0.0, -speed), self.yaw, 0.0)

    def _touched_down(self, state: VehicleState, height: float, collective_n: float) -> bool:
        still = abs(state.velocity[2]) < self.config.touchdown_speed_m_s and \
            math.hypot(*state.velocity[:2]) < TOUCHDOWN_DRIFT_M_S
        resting = collective_n < RESTING_THRUST_FRACTION * self.hover_thrust_n
        return still and (height < self.config.touchdown_height_m or resting)

    def _blind_step(self, state: VehicleState | None, attitude: tuple[np.ndarray, np.ndarray] | None, now: float,
                    dt: float) -> ControlOutput | None:
        cfg = self.config
        if self.blind_since is None:
            self.blind_since = now
            self.blind_duration_s = NO_ODOMETRY_BLIND_S if state is None else self._blind_duration(state)
        if now - self.blind_since >= self.blind_duration_s:
            return None                                  # it must be down by now
        collective = cfg.open_loop_thrust_fraction * self.hover_thrust_n
        if attitude is not None:
            quaternion, rates = attitude
            level = quat_from_yaw(yaw_from_quat(quaternion))
            return self.controller.update_attitude(VehicleState(np.zeros(3), np.zeros(3), quaternion, rates), level,
                                                   collective, dt)
        return self.controller.mix_collective_only(collective)

    def _blind_duration(self, state: VehicleState) -> float:
        """Time within which the open-loop descent has certainly reached the ground, from the last odometry."""
        airframe = self.controller.airframe
        accel = (1.0 - self.config.open_loop_thrust_fraction) * GRAVITY
        drag = airframe.drag_coeff_ns_per_m[2] / airframe.mass_kg
        # March the 1-D model with vertical drag (which only slows the fall) until it reaches the ground.
        t, z, vz, step = 0.0, max(0.0, state.position[2] - self.ground_z), float(state.velocity[2]), 0.01
        while z > 0.0 and t < 60.0:
            vz += (-accel - drag * vz) * step
            z += vz * step
            t += step
        return 1.5 * t + 1.0
