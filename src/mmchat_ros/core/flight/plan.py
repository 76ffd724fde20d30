"""Action-plan execution: typed steps (as in msg/PlanAction.msg) → speed-limited position / yaw references.

The executor is pure: the flight core calls ``update(now, vehicle)`` at its control rate and submits the returned
``PositionCommand`` as the "plan" source of the mux; one-shot requests (take off, land) and delegations (FOLLOW)
come back in the same ``PlanOutput``. Nothing here reads a clock or imports ROS.

Frames: world (odometry) x, y, z with z up. MOVE_BY is in the heading frame at the start of the step (x forward,
y left, z up); ROTATE is relative yaw, positive = counter-clockwise (left). Relative steps start from the
previous step's goal when the vehicle has reached it (so tolerances do not accumulate along a plan), else
from the measured pose.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum
from typing import Iterable, Sequence

import numpy as np

from mmchat_ros.core.flight.envelope import SafetyEnvelope, first_non_finite
from mmchat_ros.core.flight.mux import PositionCommand
from mmchat_ros.core.flight.state_machine import FLYING_MODES, FlightMode
from mmchat_ros.core.flight.trajectory import KinematicLimits, SmoothProfile, TrapezoidProfile  # noqa: F401
from mmchat_ros.core.geometry import heading_to_world, wrap_angle
from mmchat_ros.core.plan_vocabulary import ActionType, PlanStep


@dataclass(frozen=True)
class PlanConfig:
    default_speed_m_s: float = 0.5           # when a step's speed is 0
    acceleration_m_s2: float = 1.0           # of the reference trajectory
    yaw_rate_deg_s: float = 45.0             # ROTATE reference rate
    yaw_acceleration_deg_s2: float = 90.0
    takeoff_height_m: float = 1.5            # TAKEOFF with z = 0
    min_flight_height_m: float = 0.3         # no target lower than this above home (LAND goes lower)
    position_tolerance_m: float = 0.1        # a step is done within this of its goal...
    yaw_tolerance_deg: float = 5.0           # ...and this of its heading...
    settle_speed_m_s: float = 0.1            # ...moving slower than this...
    settle_time_s: float = 0.5               # ...for this long
    timeout_factor: float = 2.0              # step timeout = factor × nominal duration + margin
    timeout_margin_s: float = 10.0
    climb_speed_m_s: float = 0.5             # nominal TAKEOFF / LAND vertical speed, for their timeouts
    max_steps: int = 64
    max_duration_s: float = 600.0            # longest HOVER

    def __post_init__(self) -> None:
        for name in ("default_speed_m_s", "acceleration_m_s2", "yaw_rate_deg_s", "yaw_acceleration_deg_s2",
                     "takeoff_height_m", "position_tolerance_m", "yaw_tolerance_deg", "settle_speed_m_s",
                     "timeout_factor", "climb_speed_m_s", "max_duration_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"plan {name} must be a finite number > 0, got {value!r}")
        for name in ("settle_time_s", "min_flight_height_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"plan {name} must be a finite number >= 0, got {value!r}")


class PlanState(str, Enum):
    IDLE = "idle"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# ExecutePlan result messages of a plan its client stopped or a newer plan replaced (not failures to report).
PLAN_CANCELLED = "cancelled"
PLAN_REPLACED = "replaced by a new plan"


@dataclass(frozen=True)
class PlanVehicle:
    """What the executor sees of the vehicle each tick."""
    position: np.ndarray
    velocity: np.ndarray
    yaw_rad: float
    mode: FlightMode

    @property
    def flying(self) -> bool:
        return self.mode in FLYING_MODES

    @property
    def on_ground(self) -> bool:
        return self.mode in (FlightMode.LANDED, FlightMode.ARMED)


@dataclass(frozen=True)
class FollowRequest:
    """A FOLLOW step handed to the follow source."""
    target_track_id: int
    target_class: str


@dataclass(frozen=True)
class PlanOutput:
    setpoint: PositionCommand | None = None      # submit as the "plan" source while not None
    request: str | None = None                   # one-shot: "takeoff" or "land"
    takeoff_height_m: float | None = None        # with request "takeoff", above home
    follow: FollowRequest | None = None          # a FOLLOW step was delegated


@dataclass(frozen=True)
class PlanFeedback:
    state: PlanState
    action_index: int                # index of the step being (or last) executed
    action: str                      # its type name
    progress: float                  # 0..1 of that step
    actions_completed: int
    total_actions: int
    message: str = ""                # "done" or why the plan stopped
    delegated: tuple[int, ...] = ()  # indices of steps handed to another source (FOLLOW)

    @property
    def overall_progress(self) -> float:
        if self.total_actions == 0:
            return 0.0
        if self.state is PlanState.SUCCEEDED:
            return 1.0
        return min(1.0, (self.actions_completed + self.progress) / self.total_actions)


# ------------------------------------------------------------------------------------------------- executor
@dataclass
class _ActiveStep:
    index: int
    step: PlanStep
    started: float
    start_position: np.ndarray
    start_yaw: float
    goal_position: np.ndarray | None = None
    goal_yaw: float = 0.0
    path: SmoothProfile | TrapezoidProfile | None = None
    turn: TrapezoidProfile | None = None
    timeout_s: float = math.inf
    requested: bool = False
    settled_since: float | None = None
    progress: float = 0.0


class PlanExecutor:
    """Runs one plan at a time: ``start`` (validates all steps first), then ``update`` every control step until
    ``running`` is False; ``feedback`` gives the step index, its progress 0..1 and the outcome message."""

    def __init__(self, envelope: SafetyEnvelope | None = None, config: PlanConfig | None = None,
                 limits: KinematicLimits | None = None):
        """``limits``: what the vehicle can follow (the flight core's airframe ∩ envelope); moves are time-scaled
        to stay inside them (speed, acceleration and jerk), in addition to the envelope's speeds."""
        self.envelope = envelope or SafetyEnvelope()
        self.config = config or PlanConfig()
        self.limits = limits
        self._steps: list[PlanStep] = []
        self._state = PlanState.IDLE
        self._active: _ActiveStep | None = None
        self._completed = 0
        self._message = ""
        self._delegated: list[int] = []
        self._home: np.ndarray | None = None
        self._hold: tuple[np.ndarray, float] | None = None     # last goal handed out: (position, yaw)
        self._last_index = 0

    # -- status --------------------------------------------------------------------------------------------
    @property
    def state(self) -> PlanState:
        return self._state

    @property
    def running(self) -> bool:
        return self._state is PlanState.RUNNING

    @property
    def steps(self) -> list[PlanStep]:
        return list(self._steps)

    def feedback(self) -> PlanFeedback:
        index = self._active.index if self._active else min(self._last_index, max(0, len(self._steps) - 1))
        action = self._steps[index].type_name if self._steps else ""
        if self._active:
            progress = self._active.progress
        else:
            progress = 1.0 if self._state is PlanState.SUCCEEDED else 0.0
        return PlanFeedback(self._state, index, action, progress, self._completed, len(self._steps), self._message,
                            tuple(self._delegated))

    def set_home(self, position: np.ndarray) -> None:
        """Take-off point (RETURN_HOME flies back above it; TAKEOFF heights are above it)."""
        self._home = np.asarray(position, float).copy()

    @property
    def home(self) -> np.ndarray | None:
        return None if self._home is None else self._home.copy()

    # -- validation ----------------------------------------------------------------------------------------
    def validate(self, steps: Sequence[PlanStep], vehicle: PlanVehicle,
                 home: np.ndarray | None = None) -> str | None:
        """Why the plan cannot run from this vehicle state, or None. Walks the plan's nominal poses and checks
        every target against the envelope, so a MOVE_BY that would leave the geofence rejects the plan. ``home``:
        the take-off point when this executor was not told it (a planner validating for the flight controller)."""
        cfg = self.config
        if not steps:
            return "empty plan"
        if len(steps) > cfg.max_steps:
            return f"plan has {len(steps)} steps, more than the limit of {cfg.max_steps}"
        if vehicle.mode in (FlightMode.LANDING, FlightMode.EMERGENCY, FlightMode.TAKING_OFF):
            return f"vehicle is in {vehicle.mode}; plans start on the ground or while flying"
        position = np.asarray(vehicle.position, float).copy()
        yaw = float(vehicle.yaw_rad)
        airborne = vehicle.flying
        if home is None:
            home = self._home
        home = np.asarray(home, float).copy() if home is not None else (None if airborne else position.copy())
        for index, step in enumerate(steps):
            where = f"step {index} ({step.type_name})"
            try:
                kind = ActionType(int(step.type))
            except (TypeError, ValueError):
                return f"{where}: unknown action type {step.type!r}"
            bad = first_non_finite(x=step.x, y=step.y, z=step.z, yaw_deg=step.yaw_deg, duration_s=step.duration_s,
                                   speed=step.speed)
            if bad:
                return f"{where}: {bad}"
            if step.speed < 0.0:
                return f"{where}: speed {step.speed} m/s is negative"
            if not 0.0 <= step.duration_s <= cfg.max_duration_s:
                return f"{where}: duration_s {step.duration_s} is outside [0, {cfg.max_duration_s}]"
            needs_air = kind in (ActionType.HOVER, ActionType.MOVE_BY, ActionType.GOTO, ActionType.ROTATE,
                                 ActionType.FOLLOW, ActionType.RETURN_HOME)
            if needs_air and not airborne:
                return f"{where}: the vehicle is on the ground at this point; the plan must take off first"
            target: np.ndarray | None = None
            if kind is ActionType.TAKEOFF:
                if step.z < 0.0:
                    return f"{where}: height z={step.z} m is negative"
                if not airborne:
                    home = position.copy()
                height = step.z if step.z > 0.0 else cfg.takeoff_height_m
                target = np.array([position[0], position[1], (home[2] if home is not None else 0.0) + height])
                airborne = True
            elif kind is ActionType.LAND:
                if home is not None:
                    position[2] = home[2]
                airborne = False
            elif kind is ActionType.MOVE_BY:
                target = position + heading_to_world((step.x, step.y, step.z), yaw)
            elif kind is ActionType.GOTO:
                target = np.array([step.x, step.y, step.z], float)
            elif kind is ActionType.ROTATE:
                yaw = wrap_angle(yaw + math.radians(step.yaw_deg))
            elif kind is ActionType.RETURN_HOME:
                if home is None:
                    return f"{where}: no home position is known"
                target = np.array([home[0], home[1], position[2]])
            elif kind is ActionType.FOLLOW:
                if step.target_track_id < 0 and not step.target_class.strip():
                    return f"{where}: needs a target_track_id >= 0 or a target_class"
                if index != len(steps) - 1:
                    # FOLLOW hands the vehicle to the (lower-priority) follow source: later steps would override it.
                    return f"{where}: FOLLOW must be the last step"
            if target is not None:
                violation = self._target_violation(target, home[2] if home is not None else 0.0)
                if violation:
                    return f"{where}: target ({target[0]:.2f}, {target[1]:.2f}, {target[2]:.2f}) rejected: " \
                           f"{violation}"
                position = target
        return None

    # -- control ---------------------------------------------------------------------------------------------
    def start(self, steps: Iterable[PlanStep], vehicle: PlanVehicle, now: float) -> str | None:
        """Validate and start a plan (replacing any running one). Returns the rejection reason, or None."""
        steps = [replace(s) for s in steps]
        reason = self.validate(steps, vehicle)
        if reason:
            self.envelope.reject("plan", f"plan rejected: {reason}")
            return reason
        self._steps = steps
        self._state = PlanState.RUNNING
        self._active = None
        self._completed = 0
        self._message = ""
        self._delegated = []
        self._last_index = 0
        self._hold = None
        if self._home is None and vehicle.on_ground:
            self._home = np.asarray(vehicle.position, float).copy()
        return None

    def cancel(self, reason: str = "cancelled") -> bool:
        """Stop the plan; the flight core then hovers. Returns whether a plan was running."""
        return self._finish(PlanState.CANCELLED, reason)

    def fail(self, reason: str) -> bool:
        """Abort the plan because something outside it refused (e.g. the take-off request)."""
        return self._finish(PlanState.FAILED, reason)

    def update(self, now: float, vehicle: PlanVehicle) -> PlanOutput:
        """Advance the plan: the reference for this instant, and any request for the flight core."""
        if self._state is not PlanState.RUNNING:
            return PlanOutput()
        if self._active is None:
            failure = self._begin(self._completed, now, vehicle)
            if failure:
                self.fail(failure)
                return PlanOutput()
        active = self._active
        assert active is not None
        if now - active.started > active.timeout_s:
            self.fail(f"step {active.index} ({active.step.type_name}) timed out after {active.timeout_s:.1f} s")
            return PlanOutput()
        if vehicle.mode is FlightMode.EMERGENCY:
            self.fail("emergency stop")
            return PlanOutput()
        kind = ActionType(active.step.type)
        handler = {
            ActionType.TAKEOFF: self._update_takeoff,
            ActionType.LAND: self._update_land,
            ActionType.FOLLOW: self._update_follow,
        }.get(kind, self._update_motion)
        return handler(active, now, vehicle)

    # -- step lifecycle -------------------------------------------------------------------------------------
    def _begin(self, index: int, now: float, vehicle: PlanVehicle) -> str | None:
        cfg = self.config
        step = self._steps[index]
        kind = ActionType(step.type)
        position = np.asarray(vehicle.position, float).copy()
        yaw = float(vehicle.yaw_rad)
        # Chain relative steps from the previous goal once the vehicle is there (no accumulated tolerance).
        if self._hold is not None and np.linalg.norm(self._hold[0] - position) <= 2.0 * cfg.position_tolerance_m:
            position, yaw = self._hold[0].copy(), self._hold[1]
        active = _ActiveStep(index, step, now, position, yaw, goal_yaw=yaw)
        speed = self._step_speed(step)

        if kind is ActionType.TAKEOFF:
            if vehicle.on_ground:
                self._home = np.asarray(vehicle.position, float).copy()
            elif not vehicle.flying:
                return f"step {index} (TAKEOFF): vehicle is in {vehicle.mode}"
            home_z = self._home_z()
            height = step.z if step.z > 0.0 else cfg.takeoff_height_m
            active.goal_position = np.array([position[0], position[1], home_z + height])
            if vehicle.flying:                   # already up: climb or descend to the height like a move
                active.path = self._path_profile(active.goal_position - position, speed)
            active.timeout_s = cfg.timeout_factor * height / cfg.climb_speed_m_s + cfg.timeout_margin_s
        elif kind is ActionType.LAND:
            height = max(0.0, position[2] - self._home_z())
            active.timeout_s = cfg.timeout_factor * height / cfg.climb_speed_m_s + cfg.timeout_margin_s
        elif kind is ActionType.FOLLOW:
            active.timeout_s = math.inf
        elif kind is ActionType.STOP:
            # Hold where braking at the reference acceleration would stop, not where the stop was asked for.
            velocity = np.asarray(vehicle.velocity, float)
            stop_at = np.asarray(vehicle.position, float) + velocity * np.linalg.norm(velocity) / (
                2.0 * cfg.acceleration_m_s2)
            active.start_position = stop_at
            active.goal_position = stop_at
            active.timeout_s = cfg.timeout_margin_s
        elif kind is ActionType.HOVER:
            active.goal_position = position
            active.timeout_s = step.duration_s + cfg.timeout_margin_s
        elif kind is ActionType.ROTATE:
            active.goal_position = position
            turn = math.radians(step.yaw_deg)
            active.goal_yaw = yaw + turn            # unwrapped: ROTATE 360 turns a full circle
            active.turn = TrapezoidProfile(turn, math.radians(cfg.yaw_rate_deg_s),
                                           math.radians(cfg.yaw_acceleration_deg_s2))
            active.timeout_s = cfg.timeout_factor * active.turn.duration + cfg.timeout_margin_s
        else:
            if kind is ActionType.MOVE_BY:
                goal = position + heading_to_world((step.x, step.y, step.z), yaw)
            elif kind is ActionType.GOTO:
                goal = np.array([step.x, step.y, step.z], float)
            else:                                    # RETURN_HOME: above the take-off point, at this altitude
                if self._home is None:
                    return f"step {index} (RETURN_HOME): no home position is known"
                goal = np.array([self._home[0], self._home[1], position[2]])
            violation = self._target_violation(goal, self._home_z())
            if violation:
                reason = f"step {index} ({step.type_name}): target rejected: {violation}"
                self.envelope.reject("geofence", reason)
                return reason
            active.goal_position = goal
            active.path = self._path_profile(goal - position, speed)
            active.timeout_s = cfg.timeout_factor * active.path.duration + cfg.timeout_margin_s
        self._active = active
        self._last_index = index
        return None

    def _complete(self, active: _ActiveStep, delegated: bool = False) -> None:
        if delegated:
            self._delegated.append(active.index)
        if active.goal_position is not None:
            self._hold = (active.goal_position.copy(), active.goal_yaw)
        self._completed += 1
        self._active = None
        if self._completed >= len(self._steps):
            self._finish(PlanState.SUCCEEDED, "done")

    def _finish(self, state: PlanState, message: str) -> bool:
        if self._state is not PlanState.RUNNING:
            return False
        if self._active is not None:
            self._last_index = self._active.index
        self._state = state
        self._message = message
        self._active = None
        return True

    # -- per-type updates ------------------------------------------------------------------------------------
    def _update_takeoff(self, active: _ActiveStep, now: float, vehicle: PlanVehicle) -> PlanOutput:
        goal = active.goal_position
        assert goal is not None
        if active.path is not None:               # already flying: a vertical move
            return self._update_motion(active, now, vehicle)
        start_z = active.start_position[2]
        active.progress = max(active.progress, _fraction(vehicle.position[2] - start_z, goal[2] - start_z))
        if vehicle.on_ground and not active.requested:
            active.requested = True
            return PlanOutput(request="takeoff", takeoff_height_m=goal[2] - self._home_z())
        if vehicle.mode in (FlightMode.LANDING, FlightMode.EMERGENCY):
            self.fail(f"step {active.index} (TAKEOFF): vehicle went to {vehicle.mode}")
            return PlanOutput()
        if not vehicle.flying:                    # climbing under the flight core's take-off control
            return PlanOutput()
        setpoint = PositionCommand(goal[0], goal[1], goal[2], active.goal_yaw)
        if self._settled(active, now, vehicle, goal, active.goal_yaw):
            self._complete(active)
        return PlanOutput(setpoint=setpoint)

    def _update_land(self, active: _ActiveStep, now: float, vehicle: PlanVehicle) -> PlanOutput:
        home_z = self._home_z()
        active.progress = max(active.progress, _fraction(active.start_position[2] - vehicle.position[2],
                                                         active.start_position[2] - home_z))
        if vehicle.on_ground:
            active.progress = 1.0
            self._hold = None
            self._complete(active)
            return PlanOutput()
        if not active.requested:
            active.requested = True
            return PlanOutput(request="land")
        return PlanOutput()

    def _update_follow(self, active: _ActiveStep, now: float, vehicle: PlanVehicle) -> PlanOutput:
        request = FollowRequest(int(active.step.target_track_id), active.step.target_class.strip())
        active.progress = 1.0
        self._hold = None                       # the follow source moves the vehicle from here on
        self._complete(active, delegated=True)
        return PlanOutput(follow=request)

    def _update_motion(self, active: _ActiveStep, now: float, vehicle: PlanVehicle) -> PlanOutput:
        if not vehicle.flying:
            self.fail(f"step {active.index} ({active.step.type_name}): vehicle is in {vehicle.mode}")
            return PlanOutput()
        goal = active.goal_position
        assert goal is not None
        elapsed = now - active.started
        ref_position, ref_velocity, ref_accel = goal, np.zeros(3), np.zeros(3)
        ref_yaw, ref_yaw_rate = active.goal_yaw, 0.0
        if active.path is not None and active.path.distance > 1e-9:
            s, speed, accel = active.path.at(elapsed)
            direction = (goal - active.start_position) / active.path.distance
            ref_position = active.start_position + direction * s
            ref_velocity = direction * speed
            ref_accel = direction * accel
            covered = float((np.asarray(vehicle.position) - active.start_position) @ direction)
            active.progress = max(active.progress, _fraction(covered, active.path.distance))
        if active.turn is not None and active.turn.distance > 1e-9:
            angle, rate, _ = active.turn.at(elapsed)
            sign = math.copysign(1.0, active.goal_yaw - active.start_yaw)
            ref_yaw, ref_yaw_rate = active.start_yaw + sign * angle, sign * rate
            fraction = _fraction(angle, active.turn.distance)
            if active.turn.distance <= math.pi:   # past half a turn one heading sample cannot tell how far it went
                turned = sign * wrap_angle(vehicle.yaw_rad - active.start_yaw)
                fraction = min(fraction, _fraction(turned, active.turn.distance))
            active.progress = max(active.progress, fraction)
        kind = ActionType(active.step.type)
        if kind is ActionType.HOVER and active.step.duration_s > 0.0:
            active.progress = max(active.progress, _fraction(elapsed, active.step.duration_s))
        setpoint = PositionCommand(float(ref_position[0]), float(ref_position[1]), float(ref_position[2]),
                                   wrap_angle(ref_yaw), float(ref_velocity[0]), float(ref_velocity[1]),
                                   float(ref_velocity[2]), ref_yaw_rate, float(ref_accel[0]), float(ref_accel[1]),
                                   float(ref_accel[2]))
        reference_done = all(profile is None or elapsed >= profile.duration for profile in (active.path, active.turn))
        if kind is ActionType.HOVER:
            done = elapsed >= active.step.duration_s
        else:
            done = reference_done and self._settled(active, now, vehicle, goal, active.goal_yaw)
        if done:
            active.progress = 1.0
            self._complete(active)
        return PlanOutput(setpoint=setpoint)

    # -- helpers -------------------------------------------------------------------------------------------
    def _settled(self, active: _ActiveStep, now: float, vehicle: PlanVehicle, goal: np.ndarray,
                 goal_yaw: float) -> bool:
        cfg = self.config
        close = np.linalg.norm(np.asarray(vehicle.position) - goal) <= cfg.position_tolerance_m
        aligned = abs(wrap_angle(vehicle.yaw_rad - goal_yaw)) <= math.radians(cfg.yaw_tolerance_deg)
        still = np.linalg.norm(vehicle.velocity) <= cfg.settle_speed_m_s
        if not (close and aligned and still):
            active.settled_since = None
            return False
        if active.settled_since is None:
            active.settled_since = now
        return now - active.settled_since >= cfg.settle_time_s

    def _target_violation(self, target: np.ndarray, home_z: float) -> str | None:
        violation = self.envelope.position_violation(target)
        if violation is None and target[2] < home_z + self.config.min_flight_height_m:
            violation = f"z={target[2]:.2f} m is below the minimum flight height " \
                        f"({home_z + self.config.min_flight_height_m:.2f} m)"
        return violation

    def _home_z(self) -> float:
        # Heights are above the take-off point; without one (plan started in the air) above the world origin.
        return float(self._home[2]) if self._home is not None else 0.0

    def _step_speed(self, step: PlanStep) -> float:
        return step.speed if step.speed > 0.0 else self.config.default_speed_m_s

    def _path_profile(self, displacement: np.ndarray, speed: float) -> SmoothProfile:
        """Straight-line move: speed within the envelope and the limits along this line, acceleration within
        the plan's comfort value and the limits, jerk within the limits."""
        length = float(np.linalg.norm(displacement))
        speed = self._path_speed(speed, displacement)
        accel, jerk = self.config.acceleration_m_s2, math.inf
        if self.limits is not None:
            line_speed, line_accel, jerk = self.limits.along(displacement)
            speed, accel = min(speed, line_speed), min(accel, line_accel)
        return SmoothProfile(length, speed, accel, jerk)

    def _path_speed(self, speed: float, displacement: np.ndarray) -> float:
        """Speed along the path so that neither its horizontal nor its vertical part exceeds the envelope."""
        env = self.envelope.config
        length = float(np.linalg.norm(displacement))
        if length < 1e-9:
            return speed
        horizontal = math.hypot(displacement[0], displacement[1]) / length
        vertical = abs(displacement[2]) / length
        if horizontal > 1e-9:
            speed = min(speed, env.max_speed_xy / horizontal)
        if vertical > 1e-9:
            speed = min(speed, env.max_speed_z / vertical)
        return speed


def _fraction(done: float, total: float) -> float:
    if total <= 1e-9:
        return 1.0
    return float(min(1.0, max(0.0, done / total)))
