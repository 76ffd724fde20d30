"""FlightCore: mux + safety envelope + state machine + plan executor + cascaded controller, for the ROS node.

The node feeds odometry, battery, authorisation and commands in, and calls ``step(now)`` at the control rate;
``step`` returns the motor thrusts, whether the motors are armed, and a status snapshot for /flight/state.
Every method takes ``now`` (seconds, any monotonic clock: wall or sim time); nothing reads a clock.

Safety behaviour:
- motion commands pass the envelope (finite values, speed / yaw-rate clamps, geofence, ceiling, minimum flight
  height) and the mux (authorisation, priorities); land and emergency stop are always accepted;
- no motion command in force (every source timed out) → hover in place (brake, then hold where it stopped);
  hovering unattended for ``hover_land_timeout_s`` → land;
- no odometry for ``odom_timeout_s`` in the air → land open loop (level, thrust a little below the learned hover
  thrust, motors cut once the vehicle must be down); odometry coming back resumes the closed-loop landing;
- battery at or below the envelope's low threshold → land (and no take-off until it is replaced);
- an operator authorisation lapses at its expiry unless renewed: motion commands refused, those in force dropped
  (hover), a running plan stopped;
- a take-off is refused while the vehicle leans more than ``max_arming_tilt_deg``; a climb still on the ground
  ``takeoff_liftoff_timeout_s`` lets the outer integrators act, still on it twice as long it is abandoned (motors
  off, LANDED), and one not at the height by its deadline lands (takeoff.py);
- landing ends at touchdown (low and still, or resting on something with the thrust wound down) → LANDED.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from mmchat_ros.core.airframe import Airframe, load_airframe
from mmchat_ros.core.flight.control import CascadedController, ControlOutput, Setpoint, VehicleState
from mmchat_ros.core.flight.envelope import EnvelopeConfig, EnvelopeHardLimits, SafetyEnvelope, first_non_finite
from mmchat_ros.core.flight.core_config import FlightCoreConfig
from mmchat_ros.core.flight.gains import FlightGains, load_gains
from mmchat_ros.core.flight.landing import Landing
from mmchat_ros.core.flight.mux import (ACCEPTED, CommandMux, Decision, EmergencyStopCommand, HoverCommand,
                                        LandCommand, PositionCommand, VelocityCommand)
from mmchat_ros.core.flight.plan import PLAN_REPLACED, FollowRequest, PlanExecutor, PlanFeedback, PlanVehicle
from mmchat_ros.core.flight.odometry import Odometry
from mmchat_ros.core.flight.setpoints import HoverAndGoTo, velocity_setpoint
from mmchat_ros.core.flight.state_machine import (FlightEvent, FlightMode, FlightStateMachine, GuardContext,
                                                  Transition)
from mmchat_ros.core.flight.takeoff import TakeoffClimb
from mmchat_ros.core.geometry import heading_to_world, norm, tilt_from_quat
from mmchat_ros.core.idle_rate import RestLimits, at_rest
from mmchat_ros.core.plan_vocabulary import PlanStep

PLAN_SOURCE = "plan"
EMERGENCY_REST_S = 1.0              # after an emergency stop, at rest this long before a reset (not mid-fall)
BATTERY_HYSTERESIS = 0.05           # a low-battery latch clears on the ground this far above the threshold


@dataclass(frozen=True)
class FlightStatus:
    mode: str
    armed: bool
    active_source: str                     # mux source in control, "" when none (hovering on the watchdog)
    operator_authorised: bool
    last_rejection: str                    # reason of the latest refused command, "" if none yet
    rejection_count: int
    rejections_by_reason: dict[str, int]
    plan: PlanFeedback
    battery_percentage: float              # 0..1, NaN when unknown
    odometry_ok: bool
    land_reason: str                       # why the current / latest landing started
    follow_request: FollowRequest | None   # set when a plan delegated a FOLLOW step
    saturated: bool                        # the mixer could not deliver everything last step
    home: np.ndarray | None = None         # take-off point (world), None before the first take-off


class FlightCore:
    def __init__(self, airframe: Airframe, gains: FlightGains, config: FlightCoreConfig | None = None):
        self.airframe = airframe
        self.gains = gains
        self.config = config or FlightCoreConfig()
        cfg = self.config
        self.controller = CascadedController(airframe, gains, cfg.control_rate_hz)
        self.machine = FlightStateMachine()
        self.envelope = SafetyEnvelope(cfg.envelope)
        mux_spec = dict(cfg.mux or {})
        mux_spec.setdefault("require_authorisation", cfg.require_authorisation)
        self.mux = CommandMux.from_config(mux_spec, default_timeout_s=cfg.command_timeout_s)
        # One minimum flight height for commands and plans alike: the core's.
        # References (plans, go-to targets) stay inside what both the airframe and the envelope allow, so their
        # feed-forward is never clipped downstream.
        self.reference_limits = self.controller.kinematic_limits(cfg.envelope.max_speed_xy, cfg.envelope.max_speed_z)
        self.plan = PlanExecutor(self.envelope, replace(cfg.plan, min_flight_height_m=cfg.min_flight_height_m),
                                 limits=self.reference_limits)
        self.references = HoverAndGoTo(self.reference_limits)
        self.hard_limits = EnvelopeHardLimits.of(airframe.name, airframe.envelope_limits, gains.limits, cfg.envelope)
        self.nominal_dt = 1.0 / cfg.control_rate_hz

        self.odometry = Odometry(cfg.odom_timeout_s, cfg.odom_jump_m, cfg.odom_reset_samples)
        self._imu: tuple[np.ndarray, np.ndarray] | None = None
        self._imu_stamp = -math.inf
        self._battery = math.nan
        self._battery_low = False
        self._ground_z: float | None = None
        self._plan_serial = 0                       # counts accepted plans: which plan a client is waiting on
        self._home: np.ndarray | None = None
        self._hover_since: float | None = None
        self._takeoff: TakeoffClimb | None = None
        self._landing: Landing | None = None
        self._land_reason = ""
        self._armed_since = 0.0
        self._pending_takeoff_height: float | None = None
        self._hover_thrust_estimate = airframe.hover_thrust_n
        self._last_step: float | None = None
        self._output: ControlOutput = self.controller.zero_output()
        self._follow_request: FollowRequest | None = None
        self._authorisation_expires: float | None = None
        self.rejections: Counter[str] = Counter()
        self.last_rejection = ""

    @classmethod
    def from_names(cls, airframe_name: str, config: FlightCoreConfig | None = None,
                   airframes_path: str | Path | None = None, gains_path: str | Path | None = None) -> "FlightCore":
        airframe = load_airframe(airframe_name, airframes_path)
        rate = (config or FlightCoreConfig()).control_rate_hz
        return cls(airframe, load_gains(airframe_name, gains_path, airframe, rate), config)

    def set_envelope(self, envelope: EnvelopeConfig) -> Decision:
        """A new safety envelope while running, within the hard limits. Checks, plans and go-to moves started
        from now on use it; a move already under way keeps the speed it was planned with."""
        problem = self.hard_limits.problem(envelope)
        if problem:
            return Decision(False, problem)
        self.config = replace(self.config, envelope=envelope)
        self.envelope.reconfigure(envelope)
        self.reference_limits = self.controller.kinematic_limits(envelope.max_speed_xy, envelope.max_speed_z)
        self.plan.limits = self.references.shaper.limits = self.reference_limits
        return ACCEPTED

    # ================================================================================================ inputs
    def update_odometry(self, state: VehicleState, now: float) -> Decision:
        """World-frame position / velocity, body→world attitude and body rates from the vehicle driver."""
        update = self.odometry.update(state, now)
        if not update.accepted:
            return self._refuse("odometry", update.reason)
        if update.reset:
            self._count("odometry_reset", update.reason)
            if self.machine.flying:
                self._stop_plan("odometry reset", failed=True)
                self.mux.clear()
                self.references.goto_active = False
                self.references.brake_then_hold()
        return ACCEPTED

    def wants_attitude(self, now: float) -> bool:
        """Whether an IMU reading at ``now`` is of use. Its attitude keeps a blind descent level, its only use: every
        reading while odometry is stale; otherwise just enough to hold a fresh one for the moment odometry is lost
        (one per third of ``imu_timeout_s``) — a driver's 250 Hz IMU costs the node's executor as much as its
        odometry."""
        return not self.odometry.fresh(now) or now - self._imu_stamp >= self.config.imu_timeout_s / 3

    def update_attitude(self, quaternion_wxyz: np.ndarray, angular_velocity_body: np.ndarray,
                        now: float) -> Decision:
        """IMU attitude and rates: keeps the blind descent level when odometry is lost."""
        q = np.asarray(quaternion_wxyz, float)
        w = np.asarray(angular_velocity_body, float)
        length = norm(q)
        if not (math.isfinite(length) and np.isfinite(w).all()) or length < 1e-6:
            return self._refuse("imu", "attitude rejected: non-finite values or a zero quaternion")
        self._imu = (q / length, w.copy())
        self._imu_stamp = float(now)
        return ACCEPTED

    def update_battery(self, percentage: float, now: float) -> Decision:
        """Charge as a fraction 0..1 (sensor_msgs/BatteryState.percentage); NaN means unknown."""
        if isinstance(percentage, (int, float)) and math.isnan(percentage):
            self._battery = math.nan
            return ACCEPTED
        if not isinstance(percentage, (int, float)) or not 0.0 <= percentage <= 1.0:
            return self._refuse("battery", f"battery percentage {percentage!r} rejected: expected a fraction 0..1")
        self._battery = float(percentage)
        if self.envelope.battery_low(self._battery):
            self._battery_low = True
        elif not self.machine.airborne and \
                self._battery > self.envelope.config.low_battery_fraction + BATTERY_HYSTERESIS:
            self._battery_low = False           # a fresh battery on the ground, not a reading bouncing in flight
        return ACCEPTED

    def set_authorised(self, authorised: bool, now: float, expires_at: float | None = None) -> None:
        """The operator's authorisation; with ``expires_at`` it lapses then unless renewed by a later call."""
        was = self.mux.authorised
        self.mux.set_authorised(authorised)
        self._authorisation_expires = expires_at if authorised else None
        if was and not self.mux.authorised and self.plan.running:
            self._stop_plan("operator authorisation lost", failed=True)
        self._lapse_authorisation(now)

    def _lapse_authorisation(self, now: float) -> None:
        if self._authorisation_expires is not None and now >= self._authorisation_expires:
            self.set_authorised(False, now)

    # ============================================================================================== commands
    def takeoff(self, now: float, height: float | None = None, source: str = "operator") -> Decision:
        """Arm, spool up, climb to ``height`` (default ``takeoff_height_m``) above the ground, then hover."""
        height = self.config.takeoff_height_m if height is None else height
        bad = first_non_finite(height=height)
        if bad or height < self.config.min_flight_height_m:
            return self._refuse("takeoff", f"take-off rejected: height {height!r} must be a finite number >= the "
                                           f"minimum flight height ({self.config.min_flight_height_m} m)")
        mode = self.machine.mode
        if mode is FlightMode.ARMED:
            self._pending_takeoff_height = float(height)
            return ACCEPTED
        if mode is not FlightMode.LANDED:
            return self._refuse_transition(self.machine.request(FlightEvent.TAKEOFF, self._guard_context(now)))
        if self.state is not None:
            target = self.state.position + np.array([0.0, 0.0, height])
            check = self.envelope.check_position(*target, what="take-off target")
            if not check:
                return self._refuse(check.code, check.reason)
        tilt = 0.0 if self.state is None else math.degrees(tilt_from_quat(self.state.quaternion_wxyz))
        if self.odometry.fresh(now) and tilt > self.config.max_arming_tilt_deg:
            # Lying on its side or back (after a crash), the thrust would only push it along the ground.
            return self._refuse("takeoff", f"take-off refused: the vehicle leans {tilt:.0f} deg (more than "
                                           f"max_arming_tilt_deg={self.config.max_arming_tilt_deg:g}): not upright")
        transition = self.machine.request(FlightEvent.ARM, self._guard_context(now))
        if not transition:
            return self._refuse_transition(transition)
        assert self.state is not None            # the ARM guard needs fresh odometry
        self._ground_z = float(self.state.position[2])
        self._home = self.state.position.copy()
        self.plan.set_home(self._home)
        self._armed_since = float(now)
        self._pending_takeoff_height = float(height)
        self._land_reason = ""
        self._follow_request = None
        self.controller.reset(self.state)
        return ACCEPTED

    def land(self, now: float, source: str = "operator", reason: str | None = None) -> Decision:
        """Always accepted: descend where the vehicle is and disarm on touchdown."""
        self.mux.submit(source, LandCommand(), now)
        if self.plan.running and source != PLAN_SOURCE:
            self._stop_plan(f"landing requested by {source}")
        self._begin_landing(reason or f"requested by {source}", now)
        return ACCEPTED

    def emergency_stop(self, now: float, source: str = "operator") -> Decision:
        """Always accepted: cut the motors now. Latched until ``reset_emergency`` on the ground."""
        self.mux.submit(source, EmergencyStopCommand(), now)
        if self.plan.running:
            self._stop_plan(f"emergency stop by {source}", failed=True)
        self.machine.request(FlightEvent.EMERGENCY, self._guard_context(now))
        self._land_reason = f"emergency stop by {source}"
        self._takeoff = self._landing = None
        self._pending_takeoff_height = None
        self.controller.reset()
        self._output = self.controller.zero_output()
        return ACCEPTED

    def reset_emergency(self, now: float) -> Decision:
        if self.machine.mode is not FlightMode.EMERGENCY:
            return self._refuse("state", f"reset refused: no emergency stop latched (mode {self.machine.mode})")
        return self._refuse_transition(self.machine.request(FlightEvent.RESET, self._guard_context(now)))

    def submit_velocity(self, source: str, vx: float, vy: float, vz: float, yaw_rate: float,
                        now: float) -> Decision:
        """World-frame velocity (m/s) and yaw rate (rad/s, positive = counter-clockwise)."""
        check = self.envelope.limit_velocity(vx, vy, vz, yaw_rate, what=f"velocity command from '{source}'")
        if not check:
            return self._refuse(check.code, check.reason)
        ready = self._motion_allowed(source)
        if not ready:
            return ready
        velocity, limited_yaw_rate = check.value
        return self._submit(source, VelocityCommand(*map(float, velocity), float(limited_yaw_rate)), now)

    def submit_velocity_body(self, source: str, forward: float, left: float, up: float, yaw_rate: float,
                             now: float) -> Decision:
        """Velocity in the heading frame (x forward, y left, z up: level, turned with the vehicle's yaw)."""
        bad = first_non_finite(forward=forward, left=left, up=up, yaw_rate=yaw_rate)
        if bad:
            return self._refuse("non_finite", f"velocity command from '{source}' rejected: {bad}")
        if self.state is None:
            return self._refuse("odometry", f"velocity command from '{source}' rejected: no odometry for the heading")
        vx, vy, vz = heading_to_world((forward, left, up), self.state.yaw_rad)
        return self.submit_velocity(source, float(vx), float(vy), float(vz), yaw_rate, now)

    def submit_position(self, source: str, x: float, y: float, z: float, yaw: float, now: float,
                        velocity_ff: tuple[float, float, float] = (0.0, 0.0, 0.0),
                        acceleration_ff: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Decision:
        """World-frame position target (m) and heading (rad); a moving reference (a trajectory) also gives its
        velocity (m/s) and acceleration (m/s²) as feed-forward."""
        check = self.envelope.check_position(x, y, z, yaw, what=f"position target from '{source}'")
        if not check:
            return self._refuse(check.code, check.reason)
        bad = first_non_finite(vx=velocity_ff[0], vy=velocity_ff[1], vz=velocity_ff[2],
                               ax=acceleration_ff[0], ay=acceleration_ff[1], az=acceleration_ff[2])
        if bad is not None:
            return self._refuse("non_finite", f"position target from '{source}' rejected: feed-forward {bad}")
        floor = self._floor_z()
        if floor is not None and z < floor:
            return self._refuse("min_height", f"position target from '{source}' rejected: z={z:.2f} m is below the "
                                              f"minimum flight height ({floor:.2f} m); use land")
        ready = self._motion_allowed(source)
        if not ready:
            return ready
        vx, vy, vz = (float(v) for v in velocity_ff)
        ax, ay, az = (float(a) for a in acceleration_ff)
        return self._submit(source, PositionCommand(float(x), float(y), float(z), float(yaw), vx, vy, vz, 0.0,
                                                    ax, ay, az), now)

    def submit_hover(self, source: str, now: float) -> Decision:
        """Stop and hold position (never refused for authorisation: stopping is always allowed)."""
        return self._submit(source, HoverCommand(), now)

    def start_plan(self, steps: Iterable[Any], now: float) -> Decision:
        """Validate every step (finite values, geofence along the nominal path) and start; all or nothing."""
        try:
            steps = [s if isinstance(s, PlanStep) else PlanStep.from_msg(s) for s in steps]
        except (AttributeError, TypeError, ValueError) as exc:
            return self._refuse("plan", f"plan rejected: malformed step ({exc})")
        if PLAN_SOURCE not in self.mux.sources:
            return self._refuse("plan", f"plan rejected: the mux has no '{PLAN_SOURCE}' source configured")
        self._lapse_authorisation(now)
        if not self.mux.authorised:
            return self._refuse("unauthorised", "plan rejected: no authorised operator")
        if not self.odometry.fresh(now):
            return self._refuse("odometry", "plan rejected: no valid odometry")
        assert self.state is not None
        reason = self.plan.validate(steps, self._plan_vehicle())   # before touching a running plan
        if reason is None:
            if self.plan.running:
                self._stop_plan(PLAN_REPLACED)
            reason = self.plan.start(steps, self._plan_vehicle(), now)
        if reason:
            return self._refuse("plan", f"plan rejected: {reason}")
        self._follow_request = None
        self._plan_serial += 1
        return ACCEPTED

    @property
    def plan_serial(self) -> int:
        """Number of the latest accepted plan (1, 2, ...): a client that started plan n and now sees a larger
        number knows its plan was replaced."""
        return self._plan_serial

    def cancel_plan(self, reason: str = "cancelled", serial: int | None = None) -> bool:
        """Stop the running plan and hover. Returns whether one was stopped. With ``serial``, only that plan: a
        cancel that arrives for a plan already replaced must not stop its successor."""
        if serial is not None and serial != self._plan_serial:
            return False
        return self._stop_plan(reason)

    # ================================================================================================= step
    def step(self, now: float) -> tuple[np.ndarray, bool, FlightStatus]:
        """One control step: returns (motor thrusts in N, armed, status)."""
        thrusts, armed = self.control(now)
        return thrusts, armed, self.status(now)

    def control(self, now: float) -> tuple[np.ndarray, bool]:
        """``step`` without the status snapshot, for a caller that reports the status less often than it steps
        (``status_key`` tells when it changed): returns (motor thrusts in N, armed)."""
        self._lapse_authorisation(now)
        if self._last_step is not None and now <= self._last_step:
            return self._output.motor_thrusts_n.copy(), self.machine.armed
        dt = self.nominal_dt if self._last_step is None else min(now - self._last_step, 5.0 * self.nominal_dt)
        self._last_step = float(now)
        odometry_ok = self.odometry.fresh(now)
        self.odometry.propagate(now)

        self._safety_checks(now, odometry_ok)
        if odometry_ok and self.plan.running:
            self._run_plan(now)
        if self.machine.flying:
            self._select_flying_mode(now)

        mode = self.machine.mode
        if mode in (FlightMode.LANDED, FlightMode.EMERGENCY):
            self.controller.reset()
            self._output = self.controller.zero_output()
        elif mode is FlightMode.ARMED:
            self._output = self._armed_step(now)
        elif mode is FlightMode.LANDING:
            self._output = self._landing_step(now, dt, odometry_ok)
        else:
            assert self.state is not None
            self._output = self._flying_step(now, dt)
            self._learn_hover_thrust()
        return self._output.motor_thrusts_n.copy(), self.machine.armed

    def status(self, now: float) -> FlightStatus:
        return FlightStatus(
            mode=self.machine.mode.value,
            armed=self.machine.armed,
            active_source=self._active_source(now),
            operator_authorised=self.mux.operator_authorised,
            last_rejection=self.last_rejection,
            rejection_count=self.rejection_count,
            rejections_by_reason=dict(self.rejections),
            plan=self.plan.feedback(),
            battery_percentage=self._battery,
            odometry_ok=self.odometry.fresh(now),
            land_reason=self._land_reason,
            follow_request=self._follow_request,
            saturated=self._output.saturated,
            home=None if self._home is None else self._home.copy(),
        )

    def status_key(self, now: float) -> tuple[str, bool, str, int]:
        """The status fields whose change a node reports at once (mode, armed, source in control, rejection
        count): a few reads where ``status`` builds the whole snapshot."""
        return self.machine.mode.value, self.machine.armed, self._active_source(now), self.rejection_count

    def resting(self, limits: RestLimits = RestLimits()) -> bool:
        """Landed, disarmed, no plan under way and standing still (or no odometry yet): nothing the control loop
        does changes until something asks for motion, so the node may step it slowly (core/idle_rate.py)."""
        if self.machine.mode is not FlightMode.LANDED or self.machine.armed or self.plan.running:
            return False
        state = self.state
        return state is None or at_rest(state.velocity, state.angular_velocity_body, limits)

    @property
    def rejection_count(self) -> int:
        return sum(self.rejections.values())

    @property
    def mode(self) -> FlightMode:
        return self.machine.mode

    @property
    def state(self) -> VehicleState | None:
        """The latest odometry, carried forward to the latest control step."""
        return self.odometry.state

    @property
    def last_output(self) -> ControlOutput:
        return self._output

    # ============================================================================================ internals
    def _active_source(self, now: float) -> str:
        """The mux source in control, "" when none (hovering on the watchdog)."""
        active = self.mux.active(now)
        return active.source if active else ""

    def _safety_checks(self, now: float, odometry_ok: bool) -> None:
        mode = self.machine.mode
        if self.machine.airborne and mode is not FlightMode.LANDING:
            if not odometry_ok:
                self._stop_plan("odometry lost", failed=True)
                self._begin_landing("odometry lost", now)
            elif self._battery_low:
                self._stop_plan("battery low", failed=True)
                self._begin_landing(f"battery low ({self._battery:.0%} <= "
                                    f"{self.envelope.config.low_battery_fraction:.0%})", now)
        elif mode is FlightMode.ARMED and not odometry_ok:
            self._disarm_on_ground("odometry lost before take-off", now)
        if self.machine.mode is FlightMode.TAKING_OFF:
            self._supervise_climb(now)

        limit = self.config.hover_land_timeout_s
        if self.machine.mode is FlightMode.HOVER and limit is not None and not self.plan.running:
            if self.mux.active(now) is not None or self._hover_since is None:
                self._hover_since = now
            elif now - self._hover_since >= limit:
                self._begin_landing(f"no command for {limit:.0f} s", now)

    def _run_plan(self, now: float) -> None:
        output = self.plan.update(now, self._plan_vehicle())
        if output.request == "takeoff":
            decision = self.takeoff(now, output.takeoff_height_m, source=PLAN_SOURCE)
            if not decision:
                self.plan.fail(decision.reason)
        elif output.request == "land":
            self.land(now, source=PLAN_SOURCE, reason="plan")
        if output.follow is not None:
            self._follow_request = output.follow
        if output.setpoint is not None and self.plan.running:
            sp = output.setpoint
            check = self.envelope.check_position(sp.x, sp.y, sp.z, sp.yaw, what="plan setpoint")
            decision = self._submit(PLAN_SOURCE, sp, now) if check else Decision(False, check.reason)
            if not decision:
                self.plan.fail(decision.reason)
        if not self.plan.running:
            self.mux.clear(PLAN_SOURCE)
            return
        # A higher-priority source taking over ends the plan (the operator is flying now).
        active = self.mux.active(now)
        if active is not None and active.source != PLAN_SOURCE and \
                self.mux.sources[active.source].priority > self.mux.sources[PLAN_SOURCE].priority:
            self._stop_plan(f"overridden by {active.source}")

    def _select_flying_mode(self, now: float) -> None:
        active = self.mux.active(now)
        command = active.command if active else None
        if isinstance(command, VelocityCommand):
            event = FlightEvent.VELOCITY
        elif isinstance(command, PositionCommand):
            event = FlightEvent.POSITION
        else:
            event = FlightEvent.HOVER
        target = {FlightEvent.VELOCITY: FlightMode.VELOCITY, FlightEvent.POSITION: FlightMode.POSITION,
                  FlightEvent.HOVER: FlightMode.HOVER}[event]
        previous = self.machine.mode
        if target is previous:
            return
        transition = self.machine.request(event, self._guard_context(now))
        if not transition:
            self._refuse_transition(transition)
            self.machine.request(FlightEvent.HOVER, self._guard_context(now))
        if self.machine.mode is FlightMode.HOVER and previous is not FlightMode.HOVER:
            self.references.brake_then_hold()
            self._hover_since = now

    def _flying_step(self, now: float, dt: float) -> ControlOutput:
        state = self.state
        assert state is not None
        mode = self.machine.mode
        integrate = True
        active = self.mux.active(now)
        command = active.command if active else None
        if mode is FlightMode.TAKING_OFF:
            setpoint, integrate = self._takeoff_setpoint(state, now, dt)
        elif mode is FlightMode.VELOCITY:
            assert isinstance(command, VelocityCommand)
            setpoint = velocity_setpoint(state, command, self.envelope, self.controller.velocity_response_time_s,
                                         self._floor_z())
        elif mode is FlightMode.POSITION:
            assert isinstance(command, PositionCommand)
            setpoint = self.references.go_to(state, command, dt)
        else:
            setpoint = self.references.hover(state, self.controller.yaw_target, dt)
        if mode is not FlightMode.POSITION:
            self.references.goto_active = False
        # The rate loop learns its torque bias from the start of the climb (a centre of mass off would tip the
        # vehicle over its feet before lift-off); the outer loops' integrators wait for the lift-off.
        return self.controller.update(state, setpoint, dt, integrate=integrate, integrate_rates=True)

    def _takeoff_setpoint(self, state: VehicleState, now: float, dt: float) -> tuple[Setpoint, bool]:
        """The climb's set-point, and whether the outer integrators may act; hover at the height once reached."""
        climb = self._takeoff
        assert climb is not None
        setpoint = climb.setpoint(state, dt)
        integrate = climb.integrate(state, now)
        if climb.reached(state, self.config.takeoff_tolerance_m):
            self.machine.request(FlightEvent.TAKEOFF_COMPLETE, self._guard_context(now))
            self.references.hold(climb.target, climb.yaw)
            self._hover_since = now
            self._takeoff = None
        return setpoint, integrate

    def _supervise_climb(self, now: float) -> None:
        """End a take-off that cannot complete: still on the ground with the integrators acting (motors off at
        once), or not at the height by the climb's deadline (land)."""
        climb, state = self._takeoff, self.state
        assert climb is not None and state is not None
        reason = climb.failure(state, now, self._output.collective_thrust_n / self.airframe.hover_thrust_n)
        if not reason:
            return
        self._stop_plan(reason, failed=True)
        self._count("takeoff", reason)
        if not climb.stuck(now):
            self._begin_landing(reason, now)
            return
        context = self._guard_context(now)
        self.machine.request(FlightEvent.LAND, context)      # it never left the ground: down already
        self.machine.request(FlightEvent.TOUCHDOWN, context)
        self._takeoff = None
        self._land_reason = reason

    def _armed_step(self, now: float) -> ControlOutput:
        cfg = self.config
        if self._pending_takeoff_height is not None and now - self._armed_since >= cfg.spool_up_s:
            transition = self.machine.request(FlightEvent.TAKEOFF, self._guard_context(now))
            if transition:
                state = self.state
                assert state is not None
                ground_z = self._ground_reference_z()
                target = np.array([state.position[0], state.position[1], ground_z + self._pending_takeoff_height])
                self._takeoff = TakeoffClimb(target, float(state.position[2]), state.yaw_rad, ground_z,
                                             cfg.takeoff_speed_m_s, cfg.takeoff_liftoff_timeout_s, started_at=now)
                self._pending_takeoff_height = None
                self.controller.reset(state)
                return self.controller.mix_collective_only(self._idle_collective())
            self._refuse_transition(transition)
            self.plan.fail(transition.reason)
            self._disarm_on_ground("take-off refused", now)
            return self.controller.zero_output()
        return self.controller.mix_collective_only(self._idle_collective())

    def _landing_step(self, now: float, dt: float, odometry_ok: bool) -> ControlOutput:
        assert self._landing is not None
        imu_fresh = self._imu is not None and abs(now - self._imu_stamp) <= self.config.imu_timeout_s
        output = self._landing.step(self.state, odometry_ok, self._imu if imu_fresh else None, now, dt)
        if output is not None:
            return output
        self.machine.request(FlightEvent.TOUCHDOWN, self._guard_context(now))
        self._landing = None
        self.controller.reset()
        return self.controller.zero_output()

    def _begin_landing(self, reason: str, now: float) -> None:
        mode = self.machine.mode
        if mode in (FlightMode.LANDING, FlightMode.LANDED, FlightMode.EMERGENCY):
            return
        transition = self.machine.request(FlightEvent.LAND, self._guard_context(now))
        if not transition:
            return
        self._land_reason = reason
        self._takeoff = None
        self._pending_takeoff_height = None
        if self.machine.mode is FlightMode.LANDING:
            self._landing = Landing(self.config, self.controller, self._ground_reference_z(),
                                    self._hover_thrust_estimate)
        else:                                   # ARMED on the ground: landing is just disarming
            self._landing = None
            self.controller.reset()

    def _disarm_on_ground(self, reason: str, now: float) -> None:
        self.machine.request(FlightEvent.DISARM, self._guard_context(now))
        self._pending_takeoff_height = None
        self._land_reason = reason
        self.controller.reset()

    def _stop_plan(self, reason: str, failed: bool = False) -> bool:
        stopped = self.plan.fail(reason) if failed else self.plan.cancel(reason)
        if stopped:
            self.mux.clear(PLAN_SOURCE)
        return stopped

    def _learn_hover_thrust(self) -> None:
        """Low-pass the collective while hovering steadily: the blind descent starts from the real hover thrust."""
        state = self.state
        if state is None or self.machine.mode is FlightMode.TAKING_OFF:
            return
        if abs(state.velocity[2]) < 0.2 and abs(self._output.acceleration_setpoint[2]) < 0.5:
            tilt = tilt_from_quat(state.quaternion_wxyz)
            measured = self._output.collective_thrust_n * math.cos(tilt)
            self._hover_thrust_estimate += 0.01 * (measured - self._hover_thrust_estimate)

    def _idle_collective(self) -> float:
        return self.config.motor_idle_fraction * self.airframe.motor_max_thrust_n * self.airframe.num_motors

    def _submit(self, source: str, command: Any, now: float) -> Decision:
        self._lapse_authorisation(now)
        decision = self.mux.submit(source, command, now)
        if not decision:
            self._count(self.mux.last_rejection_code, decision.reason)
        return decision

    def _motion_allowed(self, source: str) -> Decision:
        mode = self.machine.mode
        if self.machine.flying or mode is FlightMode.TAKING_OFF:
            return ACCEPTED
        if mode is FlightMode.LANDING:
            return self._refuse("state", f"motion command from '{source}' rejected: landing in progress")
        return self._refuse("state", f"motion command from '{source}' rejected: vehicle is in {mode}, take off first")

    def _refuse(self, code: str, reason: str) -> Decision:
        self._count(code, reason)
        return Decision(False, reason)

    def refuse_input(self, code: str, reason: str) -> Decision:
        """Count an input the node refused before it reached the core (a stale stamp, a malformed message) with
        every other refusal, so /flight/state and /diagnostics show it."""
        return self._refuse(code, reason)

    def _refuse_transition(self, transition: Transition) -> Decision:
        if transition:
            return ACCEPTED
        return self._refuse("state", transition.reason)

    def _count(self, code: str, reason: str) -> None:
        self.rejections[code] += 1
        self.last_rejection = reason

    def _guard_context(self, now: float) -> GuardContext:
        odometry_ok = self.odometry.fresh(now)
        # Motors off and not moving means resting on something solid; after an emergency stop the vehicle must
        # have been still for a while, since it is also still at the top of its fall.
        rest_needed = EMERGENCY_REST_S if self.machine.mode is FlightMode.EMERGENCY else 0.0
        at_rest = self.odometry.at_rest(now, rest_needed)
        self._lapse_authorisation(now)
        return GuardContext(
            authorised=self.mux.authorised,
            odometry_ok=odometry_ok,
            battery_ok=not self._battery_low,
            on_ground=bool(at_rest and not self.machine.airborne),
        )

    def _plan_vehicle(self) -> PlanVehicle:
        state = self.state
        assert state is not None
        return PlanVehicle(state.position.copy(), state.velocity.copy(), state.yaw_rad, self.machine.mode)

    def _ground_reference_z(self) -> float:
        """World z of the ground: where the vehicle was armed; the odometry origin before any take-off."""
        return self._ground_z if self._ground_z is not None else 0.0

    def _floor_z(self) -> float | None:
        return None if self._ground_z is None else self._ground_z + self.config.min_flight_height_m
