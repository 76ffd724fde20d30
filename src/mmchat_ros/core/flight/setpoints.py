"""Set-points of the flying modes: hover (brake, then hold where the vehicle stopped), go-to (a bare target reached
along a shaped reference; a moving reference with feed-forward followed as given) and velocity (limited against
the geofence and the minimum flight height from where the vehicle will be once it has responded)."""
from __future__ import annotations

import math

import numpy as np

from mmchat_ros.core.flight.control import POSITION_MODE, VELOCITY_MODE, Setpoint, VehicleState
from mmchat_ros.core.flight.envelope import SafetyEnvelope
from mmchat_ros.core.flight.mux import PositionCommand, VelocityCommand
from mmchat_ros.core.flight.trajectory import GoToShaper, KinematicLimits


class HoverAndGoTo:
    """Hover and go-to references, sharing one jerk-limited shaper inside the kinematic limits."""

    def __init__(self, limits: KinematicLimits):
        self.shaper = GoToShaper(limits)
        self.goto_active = False                             # the shaper carries a go-to reference
        self.hold_at: tuple[np.ndarray, float] | None = None  # (position, yaw) hover holds; None: brake first
        self._braking = False

    def hold(self, position: np.ndarray, yaw: float) -> None:
        """Hover holds here from now on (no braking: the vehicle is there)."""
        self.hold_at = (np.array(position, float), float(yaw))
        self._braking = False

    def brake_then_hold(self) -> None:
        """The next hover brakes along a reference inside the limits and holds where it comes to rest."""
        self.hold_at = None

    def hover(self, state: VehicleState, yaw_target: float | None, dt: float) -> Setpoint:
        if self.hold_at is None:
            self.shaper.reset(state.position, state.velocity)
            self.hold_at = (self.shaper.brake(), state.yaw_rad if yaw_target is None else yaw_target)
            self._braking = True
        position, yaw = self.hold_at
        if self._braking:
            reference, velocity, acceleration = self.shaper.update(dt)
            self._braking = not self.shaper.done
            return Setpoint(POSITION_MODE, reference, velocity, yaw, 0.0, acceleration)
        return Setpoint(POSITION_MODE, position, np.zeros(3), yaw, 0.0)

    def go_to(self, state: VehicleState, command: PositionCommand, dt: float) -> Setpoint:
        feed_forward = (command.vx, command.vy, command.vz, command.ax, command.ay, command.az)
        target = (command.x, command.y, command.z)
        if any(feed_forward):
            self.shaper.reset(target, feed_forward[:3], feed_forward[3:])
            self.goto_active = True
            return Setpoint(POSITION_MODE, target, feed_forward[:3], command.yaw, command.yaw_rate, feed_forward[3:])
        if not self.goto_active:
            # Start from where the vehicle is and how it moves (e.g. coming out of velocity mode).
            self.shaper.reset(state.position, state.velocity)
            self.goto_active = True
        self.shaper.set_target(target)
        position, velocity, acceleration = self.shaper.update(dt)
        return Setpoint(POSITION_MODE, position, velocity, command.yaw, command.yaw_rate, acceleration)


def velocity_setpoint(state: VehicleState, command: VelocityCommand, envelope: SafetyEnvelope,
                      response_time_s: float, floor_z: float | None) -> Setpoint:
    """Re-limit a velocity command against the fence every step (the command lives up to its timeout while the
    vehicle moves), from where the vehicle will be after ``response_time_s``, so braking starts in time; no
    descent below ``floor_z`` (braking at the fence deceleration before it)."""
    lookahead = state.position + state.velocity * response_time_s
    check = envelope.limit_velocity(command.vx, command.vy, command.vz, command.yaw_rate, lookahead)
    velocity, yaw_rate = check.value
    if floor_z is not None and velocity[2] < 0.0:
        room = lookahead[2] - floor_z
        velocity[2] = -min(-velocity[2], math.sqrt(2.0 * envelope.config.fence_brake_decel_m_s2 * room)
                           if room > 0.0 else 0.0)
    return Setpoint(VELOCITY_MODE, state.position, velocity, 0.0, yaw_rate)
