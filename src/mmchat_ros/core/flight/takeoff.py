"""The take-off climb: a vertical reference from the arming point to the take-off height, and a lift-off watchdog.

The reference speeds up and slows down gently (a thrust step at lift-off would tip a vehicle whose centre of mass
is off before the rate loop has learnt the torque bias; no overshoot at the height) and never leads the vehicle by
more than ``CLIMB_LEAD_M``: it waits for the lift-off. The climb is complete within ``tolerance`` of the height,
nearly still.

On the ground the outer loops' integrators and the linear disturbance observer stay frozen (the ground holding the
vehicle up would look like a disturbance to fight), so the thrust is what the reference's lead asks of the model:
a vehicle heavier than its model, or weaker motors, may never leave the ground on that. Hence the watchdog: on the
ground for ``liftoff_timeout_s`` of the climb, the integrators and the observer act (they learn the missing thrust);
on the ground for twice that, the take-off is abandoned (``stuck``) rather than left pushing on the ground forever.
A climb that has left the ground but does not arrive (held by a tether, flailing near the ground) is ``overdue``
once that allowance and twice the time a vehicle following the reference takes have passed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mmchat_ros.core.flight.control import POSITION_MODE, Setpoint, VehicleState
from mmchat_ros.core.geometry import tilt_from_quat

TAKEOFF_BRAKE_DECEL_M_S2 = 1.0      # the reference speeds up and slows down at this rate
CLIMB_LEAD_M = 0.2                  # the reference leads the vehicle by at most this
LIFTOFF_HEIGHT_M = 0.05             # this far above the arming height the vehicle is off the ground
SETTLED_SPEED_M_S = 0.2             # vertical speed below which the climb counts as complete at the height
ABANDON_AFTER_TIMEOUTS = 2.0        # on the ground this many lift-off timeouts: the take-off is abandoned
CLIMB_TIME_ALLOWANCE = 2.0          # the climb may take this many times what following the reference takes


@dataclass
class TakeoffClimb:
    target: np.ndarray              # world position to climb to
    z_ref: float                    # where the climbing reference is now
    yaw: float
    ground_z: float                 # world z where the vehicle was armed
    max_speed: float                # of the climbing reference
    liftoff_timeout_s: float
    started_at: float
    speed: float = 0.0              # of the climbing reference now
    on_ground_since: float | None = field(init=False)   # on the ground (not lifted off) since then; None while off
    deadline: float = field(init=False)                 # the climb must be complete by then

    def __post_init__(self) -> None:
        self.on_ground_since = self.started_at
        # Speeding up, climbing, slowing down: an upper bound on how long a vehicle following the reference takes.
        climb_s = max(0.0, self.target[2] - self.z_ref) / self.max_speed + self.max_speed / TAKEOFF_BRAKE_DECEL_M_S2
        self.deadline = self.started_at + ABANDON_AFTER_TIMEOUTS * self.liftoff_timeout_s + \
            CLIMB_TIME_ALLOWANCE * climb_s

    def setpoint(self, state: VehicleState, dt: float) -> Setpoint:
        """Advance the reference by ``dt`` and return it."""
        target = self.target
        remaining = max(0.0, target[2] - self.z_ref)
        braking = math.sqrt(2.0 * TAKEOFF_BRAKE_DECEL_M_S2 * remaining)
        speed = min(self.max_speed, braking, self.speed + TAKEOFF_BRAKE_DECEL_M_S2 * dt)
        accel = (speed - self.speed) / dt
        self.speed = speed
        self.z_ref = min(target[2], self.z_ref + speed * dt, state.position[2] + CLIMB_LEAD_M)
        return Setpoint(POSITION_MODE, (target[0], target[1], self.z_ref), (0.0, 0.0, speed), self.yaw, 0.0,
                        (0.0, 0.0, accel))

    def lifted(self, state: VehicleState, now: float) -> bool:
        """Off the ground; keeps the time the vehicle has been on it (a fall back restarts the watchdog)."""
        lifted = state.position[2] - self.ground_z > LIFTOFF_HEIGHT_M
        if lifted:
            self.on_ground_since = None
        elif self.on_ground_since is None:
            self.on_ground_since = now
        return lifted

    def integrate(self, state: VehicleState, now: float) -> bool:
        """Whether the outer loops' integrators and the linear disturbance observer may act: off the ground, or
        on it longer than the lift-off timeout."""
        return self.lifted(state, now) or self.on_ground_for(now) >= self.liftoff_timeout_s

    def stuck(self, now: float) -> bool:
        """On the ground so long, integrators acting, that the vehicle cannot or may not leave it."""
        return self.on_ground_for(now) >= ABANDON_AFTER_TIMEOUTS * self.liftoff_timeout_s

    def overdue(self, now: float) -> bool:
        """Not at the height by the deadline, whatever kept it."""
        return now >= self.deadline

    def failure(self, state: VehicleState, now: float, thrust_share: float) -> str:
        """Why the take-off must end now (``stuck``: motors off; ``overdue``: land), or "". ``thrust_share``: the
        motors' thrust as a share of the modelled hover thrust."""
        if self.stuck(now):
            return (f"take-off abandoned: still on the ground {self.on_ground_for(now):.1f} s into the climb with the "
                    f"motors at {thrust_share:.0%} of the modelled hover thrust, leaning "
                    f"{math.degrees(tilt_from_quat(state.quaternion_wxyz)):.0f} deg (too heavy, held down or not "
                    "upright)")
        if self.overdue(now):
            return (f"take-off abandoned: {state.position[2] - self.ground_z:.2f} m up, not at "
                    f"{self.target[2] - self.ground_z:.2f} m {now - self.started_at:.1f} s into the climb: landing")
        return ""

    def on_ground_for(self, now: float) -> float:
        return 0.0 if self.on_ground_since is None else now - self.on_ground_since

    def reached(self, state: VehicleState, tolerance: float) -> bool:
        return abs(state.position[2] - self.target[2]) <= tolerance and abs(state.velocity[2]) < SETTLED_SPEED_M_S
