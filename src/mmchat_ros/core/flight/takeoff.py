"""The take-off climb: a vertical reference from the arming point to the take-off height.

The reference speeds up and slows down gently (a thrust step at lift-off would tip a vehicle whose centre of mass
is off before the rate loop has learnt the torque bias; no overshoot at the height) and never leads the vehicle by
more than ``CLIMB_LEAD_M``: it waits for the lift-off. The climb is complete within ``tolerance`` of the height,
nearly still.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mmchat_ros.core.flight.control import POSITION_MODE, Setpoint, VehicleState

TAKEOFF_BRAKE_DECEL_M_S2 = 1.0      # the reference speeds up and slows down at this rate
CLIMB_LEAD_M = 0.2                  # the reference leads the vehicle by at most this
LIFTOFF_HEIGHT_M = 0.05             # this far above the arming height the vehicle is off the ground
SETTLED_SPEED_M_S = 0.2             # vertical speed below which the climb counts as complete at the height


@dataclass
class TakeoffClimb:
    target: np.ndarray              # world position to climb to
    z_ref: float                    # where the climbing reference is now
    yaw: float
    ground_z: float                 # world z where the vehicle was armed
    speed: float = 0.0              # of the climbing reference now

    def setpoint(self, state: VehicleState, dt: float, max_speed: float) -> Setpoint:
        """Advance the reference by ``dt`` (climbing at up to ``max_speed``) and return it."""
        target = self.target
        remaining = max(0.0, target[2] - self.z_ref)
        braking = math.sqrt(2.0 * TAKEOFF_BRAKE_DECEL_M_S2 * remaining)
        speed = min(max_speed, braking, self.speed + TAKEOFF_BRAKE_DECEL_M_S2 * dt)
        accel = (speed - self.speed) / dt
        self.speed = speed
        self.z_ref = min(target[2], self.z_ref + speed * dt, state.position[2] + CLIMB_LEAD_M)
        return Setpoint(POSITION_MODE, (target[0], target[1], self.z_ref), (0.0, 0.0, speed), self.yaw, 0.0,
                        (0.0, 0.0, accel))

    def lifted(self, state: VehicleState) -> bool:
        """Off the ground: the outer loops' integrators may act (on the ground they would only wind up)."""
        return state.position[2] - self.ground_z > LIFTOFF_HEIGHT_M

    def reached(self, state: VehicleState, tolerance: float) -> bool:
        return abs(state.position[2] - self.target[2]) <= tolerance and abs(state.velocity[2]) < SETTLED_SPEED_M_S
