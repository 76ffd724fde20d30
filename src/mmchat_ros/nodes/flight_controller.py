"""flight_controller node: every motion source → one mux → safety envelope → cascaded PID → motor commands.

Thin wrapper around core.flight.FlightCore: parameters in; /odom, /imu, /battery, /auth/state and per-source
velocity/position commands in; /motor_command, /flight/state, /diagnostics out; takeoff / land / emergency_stop
services and the execute_plan action. The control loop runs in its own thread at control_rate_hz with absolute
deadlines (rclpy timers jitter by milliseconds at 250 Hz).
"""
from __future__ import annotations

import array
import math
import sys
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import BatteryState, Imu
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from mmchat_ros.action import ExecutePlan
from mmchat_ros.core import topics
from mmchat_ros.core.command_freshness import STALE, command_stamp_problem
from mmchat_ros.core.flight.control import VehicleState
from mmchat_ros.core.flight.envelope import ENVELOPE_PARAMETERS, EnvelopeConfig, envelope_to_json
from mmchat_ros.core.flight.flight_core import FlightCore, FlightCoreConfig
from mmchat_ros.core.flight.plan import PLAN_CANCELLED, PLAN_REPLACED, PlanState
from mmchat_ros.core.geometry import body_to_world, norm, quat_from_yaw, world_to_heading, yaw_from_quat
from mmchat_ros.core.idle_rate import IdleRate
from mmchat_ros.core.live_parameters import three_numbers
from mmchat_ros.core.plan_vocabulary import PlanStep
from mmchat_ros.msg import FlightState, MotorCommand
from mmchat_ros.nodes.auth_guard import AUTH_PARAMS, AuthGuard
from mmchat_ros.nodes.base import MmchatNode, PacedLoop
from mmchat_ros.nodes.common import Param, run_node, sleep_async, stamp_to_seconds
from mmchat_ros.nodes.ros_conversions import (quat_msg_from_wxyz, quat_wxyz_from_msg, vector_from_msg,
                                              vector_to_msg)
from mmchat_ros.nodes.scheduling import apply_niceness, raise_thread_priority

WORLD_FRAMES = ("odom", "world", "map")
EXECUTOR_NICE = -10        # ~10x the CPU share of a normal thread when the cores are contended

PARAMS = {
    "airframe": Param("x500", "airframe name in config/airframes.yaml (gains from config/flight_gains.yaml)"),
    "airframes_file": Param("", "airframes file; empty = the package's config/airframes.yaml"),
    "gains_file": Param("", "PID gains file; empty = the package's config/flight_gains.yaml"),
    "control_rate_hz": Param(250.0, "control loop rate, Hz (>= 200)"),
    "idle_control_rate_hz": Param(10.0, "control loop rate while the vehicle rests (landed, disarmed, no plan, "
                                        "standing still) for idle_settle_s; a take-off, landing, emergency stop, "
                                        "plan, motion command or motion brings back control_rate_hz at once; "
                                        "/flight/state and /diagnostics keep state_rate_hz; 0 = never idle, Hz",
                                  value_range=(0.0, 100.0)),
    "idle_settle_s": Param(1.0, "resting this long before the control loop slows to idle_control_rate_hz, s",
                           value_range=(0.0, 60.0)),
    "realtime_priority": Param(20, "SCHED_FIFO priority (1..99) of the control thread, so other processes on the "
                                   "companion computer cannot delay a tick; 0 = normal scheduling. Needs "
                                   "CAP_SYS_NICE or an rtprio limit (limits.conf); without it the loop runs at normal "
                                   "priority and says so"),
    "state_rate_hz": Param(10.0, "rate of /flight/state and /diagnostics publication, Hz"),
    "takeoff_height_m": Param(1.5, "take-off height above the take-off point, m"),
    "takeoff_liftoff_timeout_s": Param(2.0, "still on the ground this long into the take-off climb: the outer "
                                            "integrators and the disturbance observer act (a vehicle heavier than "
                                            "its model); on the ground twice as long: the take-off is abandoned "
                                            "(motors off, LANDED, the reason in last_rejection), s"),
    "max_arming_tilt_deg": Param(20.0, "a take-off is refused while the vehicle leans more than this from upright "
                                       "(on its side or back after a crash, or on ground too steep), deg",
                                 value_range=(1.0, 89.0)),
    "command_timeout_s": Param(0.5, "a motion command older than this no longer counts (watchdog → hover), s"),
    "command_max_age_s": Param(1.0, "a motion command stamped more than this before or after now is refused (a "
                                    "stalled publisher's backlog, a jumped clock); unstamped ones count from "
                                    "arrival, s"),
    "odom_timeout_s": Param(0.5, "no odometry for this long in the air → land, s"),
    "odom_jump_m": Param(1.0, "an odometry position farther than this from where the previous reading predicts "
                              "the vehicle is refused as an outlier, m"),
    "odom_reset_samples": Param(5, "the same jump in this many readings in a row is an estimator reset: accepted, "
                                   "then the vehicle stops and holds (plans and targets were in the old frame)"),
    "require_authorisation": Param(True, "accept motion only while a signed, fresh /auth/state says an operator is "
                                         "authorised"),
    **AUTH_PARAMS,
    # The envelope is live: tightened or widened in flight, never beyond the airframe's hard limits (speeds from
    # config/flight_gains.yaml, geofence and ceiling from config/airframes.yaml envelope_limits).
    "max_speed_xy": Param(2.0, "horizontal speed limit, m/s", value_range=(0.1, 20.0), live=True),
    "max_speed_z": Param(1.0, "vertical speed limit, m/s", value_range=(0.1, 10.0), live=True),
    "max_yaw_rate_deg_s": Param(60.0, "yaw rate limit, deg/s", value_range=(1.0, 360.0), live=True),
    "max_altitude_m": Param(10.0, "ceiling, m above the odometry origin", value_range=(0.5, 500.0), live=True),
    "geofence_min": Param([-20.0, -20.0, -1.0], "geofence box lower corner x, y, z in the odom frame, m",
                          value_range=(-1000.0, 1000.0), live=True, check=three_numbers("geofence_min")),
    "geofence_max": Param([20.0, 20.0, 10.0], "geofence box upper corner x, y, z in the odom frame, m",
                          value_range=(-1000.0, 1000.0), live=True, check=three_numbers("geofence_max")),
    "low_battery_fraction": Param(0.2, "battery fraction (0..1) at or below which the vehicle lands",
                                  value_range=(0.0, 0.9), live=True),
    "hover_land_timeout_s": Param(60.0, "hovering with no command in force this long → land; <= 0 never, s"),
    "sources": Param(["operator", "plan", "teleop", "follow"],
                     "command sources, highest priority first; each listens on /cmd_vel/<source> and "
                     "/cmd_pose/<source>"),
    "odom_frame": Param("odom", "frame of published poses"),
    "vehicle_interface": Param("motors", "what the vehicle driver takes: 'motors' (per-motor thrusts on "
                                         "/motor_command: the embedded sim) or 'velocity' (heading-frame velocity + "
                                         "yaw rate on /cmd_vel/vehicle and motor enable on /vehicle/enable: Gazebo, "
                                         "PX4, Tello, whose own inner loops fly the attitude)"),
    "velocity_output_rate_hz": Param(50.0, "rate of /cmd_vel/vehicle with vehicle_interface 'velocity', Hz"),
}


class FlightControllerNode(MmchatNode):
    def __init__(self):
        super().__init__("flight_controller", PARAMS, on_change=self.on_parameters)
        # Under sim time (a simulator running faster or slower than real time) a wall-clock loop would run the
        # controller at the wrong rate in sim seconds: step once per odometry message instead, which the
        # simulator publishes at a fixed rate of sim time.
        self.step_on_odometry = bool(self.get_parameter("use_sim_time").value)
        if not 50.0 <= self.p.control_rate_hz <= 1000.0:
            raise ValueError(f"control_rate_hz={self.p.control_rate_hz} is outside 50..1000 Hz")
        sources = list(self.p.sources)
        config = FlightCoreConfig.from_dict({
            "control_rate_hz": self.p.control_rate_hz,
            "takeoff_height_m": self.p.takeoff_height_m,
            "takeoff_liftoff_timeout_s": self.p.takeoff_liftoff_timeout_s,
            "max_arming_tilt_deg": self.p.max_arming_tilt_deg,
            "command_timeout_s": self.p.command_timeout_s,
            "odom_timeout_s": self.p.odom_timeout_s,
            "odom_jump_m": self.p.odom_jump_m,
            "odom_reset_samples": self.p.odom_reset_samples,
            "require_authorisation": self.p.require_authorisation,
            "hover_land_timeout_s": self.p.hover_land_timeout_s if self.p.hover_land_timeout_s > 0 else None,
            "envelope": {name: getattr(self.p, name) for name in ENVELOPE_PARAMETERS},
            "mux": {"sources": {name: {"priority": len(sources) - i, "timeout_s": self.p.command_timeout_s}
                                for i, name in enumerate(sources)}},
        })
        self.core = FlightCore.from_names(self.p.airframe, config, self.p.airframes_file or None,
                                          self.p.gains_file or None)
        self.lock = threading.Lock()       # the core is touched by callbacks and the control thread
        self.last_state_key = None
        cb = ReentrantCallbackGroup()

        if self.p.vehicle_interface not in ("motors", "velocity"):
            raise ValueError(f"vehicle_interface '{self.p.vehicle_interface}' is not 'motors' or 'velocity'")
        if self.p.vehicle_interface == "motors":
            self.motor_pub = self.publish_to(topics.MOTOR_COMMAND, MotorCommand)
            self.motor_command = MotorCommand()
        else:
            self.velocity_pub = self.publish_to(topics.VEHICLE_VELOCITY, Twist)
            self.enable_pub = self.publish_to(topics.VEHICLE_ENABLE, Bool)
        self.state_pub = self.publish_to(topics.FLIGHT_STATE, FlightState)
        self.setpoint_pub = self.publish_to(topics.FLIGHT_SETPOINT, PoseStamped)
        self.diag_pub = self.publish_to(topics.DIAGNOSTICS, DiagnosticArray)
        # The planner checks plans against the envelope in force: sent at start and on every change, kept for
        # late joiners (JSON of core.flight.envelope.EnvelopeConfig).
        self.envelope_pub = self.publish_to(topics.FLIGHT_ENVELOPE, String)
        self.publish_envelope()

        self.subscribe_to(topics.ODOM, Odometry, self.on_odom, callback_group=cb)
        # Taken serialized: most readings are dropped unread (FlightCore.wants_attitude).
        self.subscribe_to(topics.IMU, Imu, self.on_imu, callback_group=cb, raw=True)
        self.subscribe_to(topics.BATTERY, BatteryState, self.on_battery, callback_group=cb)
        for source in sources:
            self.subscribe_to(topics.velocity_command(source), TwistStamped,
                              lambda msg, s=source: self.on_velocity(s, msg), callback_group=cb)
            self.subscribe_to(topics.pose_command(source), PoseStamped,
                              lambda msg, s=source: self.on_pose(s, msg), callback_group=cb)
        self.create_service(Trigger, "takeoff", self.on_takeoff, callback_group=cb)
        self.create_service(Trigger, "land", self.on_land, callback_group=cb)
        self.create_service(Trigger, "emergency_stop", self.on_emergency_stop, callback_group=cb)
        self.create_service(Trigger, "reset_emergency", self.on_reset_emergency, callback_group=cb)
        self.plan_server = ActionServer(self, ExecutePlan, "execute_plan", execute_callback=self.execute_plan,
                                        goal_callback=self.on_plan_goal, cancel_callback=lambda _g: CancelResponse.ACCEPT,
                                        callback_group=cb)
        self.create_timer(1.0 / self.p.state_rate_hz, self.publish_state, callback_group=cb)
        # /auth/state counts only signed, fresh and in order (core/auth_signing.py); FlightCore lapses it at its
        # expiry unless renewed.
        self.auth = AuthGuard(self, self.p, self.log_auth, required=self.p.require_authorisation, callback_group=cb,
                              on_claim=self.on_auth)

        # The control thread must get the GIL back promptly after its sleep: Python's default 5 ms switch
        # interval would show up as 5 ms of loop jitter whenever a callback is running.
        sys.setswitchinterval(0.0002)
        self.ticks = 0
        self.velocity_every = max(1, int(round(self.p.control_rate_hz / self.p.velocity_output_rate_hz)))
        self.vehicle_enabled = None
        self.control_loop = PacedLoop(self, "control", self.p.control_rate_hz, self.control_step,
                                      on_start=self.raise_priority)
        # Stepping on odometry, the simulator's own idle rate sets the pace.
        self.idle_rate = IdleRate(self.p.control_rate_hz, 0.0 if self.step_on_odometry else
                                  self.p.idle_control_rate_hz, self.p.idle_settle_s)
        self.loop_rate_hz = self.idle_rate.full_hz
        if not self.step_on_odometry:
            self.favour_callbacks()
            self.start_worker(self.control_loop)
        self.get_logger().info(
            f"flight controller ready: airframe {self.p.airframe}, "
            f"{'one step per odometry message (sim time)' if self.step_on_odometry else f'{self.p.control_rate_hz:.0f} Hz'}"
            f", sources "
            f"{sources}, authorisation {'required' if self.p.require_authorisation else 'NOT required'}")

    # ---------------------------------------------------------------------------------------------- helpers
    def now(self) -> float:
        return self.now_ns() * 1e-9

    def now_ns(self) -> int:
        """The node's clock: sim time through rclpy's clock; otherwise ROS time is the system clock, read directly
        (rclpy's Clock.now costs 6-17 µs, and the control thread and the callbacks read it ~750 times a second)."""
        return self.get_clock().now().nanoseconds if self.step_on_odometry else time.time_ns()

    def reject_log(self, what: str, decision) -> None:
        if not decision:
            self.get_logger().warn(f"rejected {what}: {decision.reason}")

    def publish_envelope(self) -> None:
        with self.lock:
            envelope = self.core.envelope.config
        self.envelope_pub.publish(String(data=envelope_to_json(envelope)))

    def on_parameters(self, values: dict) -> str | None:
        """A live envelope parameter changed: the new envelope, within the airframe's hard limits, or why not."""
        try:
            envelope = EnvelopeConfig.from_dict({name: values[name] for name in ENVELOPE_PARAMETERS})
        except ValueError as exc:
            return str(exc)
        with self.lock:
            decision = self.core.set_envelope(envelope)
        if not decision:
            return decision.reason
        self.publish_envelope()
        return None

    # ------------------------------------------------------------------------------------------------ inputs
    def on_odom(self, msg: Odometry) -> None:
        q = quat_wxyz_from_msg(msg.pose.pose.orientation)
        # Odometry twist is in the child (body) frame (REP 105); the core wants world-frame velocity.
        v_body = vector_from_msg(msg.twist.twist.linear)
        length = norm(q)
        v_world = body_to_world(q, v_body) if math.isfinite(length) and length > 0.5 else v_body
        state = VehicleState(position=vector_from_msg(msg.pose.pose.position), velocity=v_world,
                             quaternion_wxyz=q, angular_velocity_body=vector_from_msg(msg.twist.twist.angular))
        # In sim time the odometry stamp is the simulator's own clock, finer than /clock: control runs on it.
        now = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9 if self.step_on_odometry else self.now()
        with self.lock:
            self.reject_log("odometry", self.core.update_odometry(state, now))
            if self.loop_rate_hz < self.idle_rate.full_hz and not self.core.resting():
                self.set_loop_rate(self.idle_rate.wake())      # pushed, picked up: full rate at once
        if self.step_on_odometry:
            self.control_step(now)

    def on_imu(self, serialized: bytes) -> None:
        # Attitude keeps a blind (odometry-less) descent level.
        now = self.now()
        with self.lock:
            if not self.core.wants_attitude(now):
                return
        msg = deserialize_message(serialized, Imu)
        with self.lock:
            self.core.update_attitude(quat_wxyz_from_msg(msg.orientation), vector_from_msg(msg.angular_velocity), now)

    def on_battery(self, msg: BatteryState) -> None:
        with self.lock:
            self.reject_log("battery state", self.core.update_battery(float(msg.percentage), self.now()))

    def on_auth(self, authorised: bool, expires_s: float) -> None:
        """Every accepted /auth/state: the core lapses the authorisation at its expiry unless renewed."""
        with self.lock:
            self.core.set_authorised(authorised, self.now(), expires_s)

    def log_auth(self, authorised: bool, operator: str, reason: str) -> None:
        self.get_logger().info(f"operator {'authorised: ' + operator if authorised else 'not authorised'} ({reason})")

    def stale(self, what: str, stamp) -> bool:
        """Refuse (counted, logged) a command whose stamp is too far from now (core/command_freshness.py)."""
        problem = command_stamp_problem(stamp_to_seconds(stamp), self.now(), self.p.command_max_age_s)
        if not problem:
            return False
        with self.lock:
            self.core.refuse_input(STALE, f"{what} rejected: {problem}")
        self.get_logger().warn(f"rejected {what}: {problem}", throttle_duration_sec=1.0)
        return True

    def on_velocity(self, source: str, msg: TwistStamped) -> None:
        if self.stale(f"velocity command from '{source}'", msg.header.stamp):
            return
        lin, ang = msg.twist.linear, msg.twist.angular
        with self.lock:
            now = self.now()
            if msg.header.frame_id in WORLD_FRAMES:
                decision = self.core.submit_velocity(source, lin.x, lin.y, lin.z, ang.z, now)
            else:   # body / heading frame: x forward, y left (teleop, follow)
                decision = self.core.submit_velocity_body(source, lin.x, lin.y, lin.z, ang.z, now)
            if decision:
                self.set_loop_rate(self.idle_rate.wake())
        self.reject_log(f"velocity command from '{source}'", decision)

    def on_pose(self, source: str, msg: PoseStamped) -> None:
        if self.stale(f"position command from '{source}'", msg.header.stamp):
            return
        p = msg.pose.position
        yaw = yaw_from_quat(quat_wxyz_from_msg(msg.pose.orientation))
        with self.lock:
            decision = self.core.submit_position(source, p.x, p.y, p.z, yaw, self.now())
            if decision:
                self.set_loop_rate(self.idle_rate.wake())
        self.reject_log(f"position command from '{source}'", decision)

    def _trigger(self, response, action: str, call) -> Trigger.Response:
        with self.lock:
            decision = call(self.now())
            self.set_loop_rate(self.idle_rate.wake())    # a take-off's first tick comes now, not a slow tick later
        response.success = bool(decision)
        response.message = "accepted" if decision else decision.reason
        self.get_logger().info(f"{action}: {response.message}")
        self.publish_state()
        return response

    def on_takeoff(self, _req, response):
        return self._trigger(response, "takeoff", lambda now: self.core.takeoff(now))

    def on_land(self, _req, response):
        return self._trigger(response, "land", lambda now: self.core.land(now))

    def on_emergency_stop(self, _req, response):
        return self._trigger(response, "emergency stop", lambda now: self.core.emergency_stop(now))

    def on_reset_emergency(self, _req, response):
        return self._trigger(response, "reset emergency", lambda now: self.core.reset_emergency(now))

    # ------------------------------------------------------------------------------------------- plan action
    def on_plan_goal(self, goal_request) -> GoalResponse:
        if not goal_request.plan.actions:
            self.get_logger().warn("rejected plan: it has no actions")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    async def execute_plan(self, goal_handle):
        plan = goal_handle.request.plan
        steps = [PlanStep.from_msg(a) for a in plan.actions]
        with self.lock:
            decision = self.core.start_plan(steps, self.now())
            serial = self.core.plan_serial
            self.set_loop_rate(self.idle_rate.wake())
        result = ExecutePlan.Result()
        if not decision:
            self.get_logger().warn(f"plan {plan.id} rejected: {decision.reason}")
            goal_handle.abort()
            result.success, result.message = False, decision.reason
            return result
        self.get_logger().info(f"executing plan {plan.id} from {plan.source}: {len(steps)} actions "
                               f"('{plan.utterance}')")
        feedback = ExecutePlan.Feedback()
        while True:
            if goal_handle.is_cancel_requested:
                with self.lock:
                    self.core.cancel_plan("cancelled by the client", serial)
                goal_handle.canceled()
                fb = self.core.status(self.now()).plan
                result.success, result.actions_completed, result.message = False, fb.actions_completed, PLAN_CANCELLED
                return result
            with self.lock:
                replaced = self.core.plan_serial != serial
                status = self.core.status(self.now())
                state = self.core.state
            if replaced:           # the core runs a newer plan: this goal ends, the feedback is not ours
                goal_handle.abort()
                self.get_logger().info(f"plan {plan.id} replaced by a newer plan")
                result.success, result.message = False, PLAN_REPLACED
                return result
            fb = status.plan
            feedback.action_index, feedback.action, feedback.progress = fb.action_index, fb.action, fb.progress
            if state is not None:
                vector_to_msg(state.position, feedback.pose.position)
                quat_msg_from_wxyz(state.quaternion_wxyz, feedback.pose.orientation)
            goal_handle.publish_feedback(feedback)
            if fb.state is not PlanState.RUNNING:
                break
            await sleep_async(self, 0.05)
        result.actions_completed, result.message = fb.actions_completed, fb.message or fb.state.value
        result.success = fb.state is PlanState.SUCCEEDED
        if result.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        self.get_logger().info(f"plan {plan.id} {fb.state.value}: {result.message}")
        return result

    # ------------------------------------------------------------------------------------------ control loop
    def send_to_vehicle(self, thrusts: np.ndarray, armed: bool, ticks: int, stamp_ns: int | None = None) -> None:
        """The tick's command to the vehicle driver; ``stamp_ns``: the tick's time (default: now)."""
        if self.p.vehicle_interface == "motors":
            # One message, refilled every tick: building one costs as much as publishing it.
            command = self.motor_command
            command.header.stamp.sec, command.header.stamp.nanosec = divmod(
                self.now_ns() if stamp_ns is None else stamp_ns, 1_000_000_000)
            command.armed = bool(armed)
            command.thrust_n = array.array("f", thrusts.tolist())
            self.motor_pub.publish(command)
            return
        if ticks % self.velocity_every:
            return
        with self.lock:
            output, state = self.core.last_output, self.core.state
        twist = Twist()
        if armed and state is not None:
            # The vehicle's velocity controller works in its heading frame: x forward, y left, z up.
            vector_to_msg(world_to_heading(output.velocity_setpoint, yaw_from_quat(state.quaternion_wxyz)),
                          twist.linear)
            twist.angular.z = float(output.yaw_rate_setpoint)
        if armed != self.vehicle_enabled:
            self.vehicle_enabled = armed
            self.enable_pub.publish(Bool(data=bool(armed)))
        self.velocity_pub.publish(twist)

    def control_step(self, now: float | None = None) -> None:
        """One tick of the controller: step the core, command the vehicle, publish state changes. ``now``: the
        tick's time in seconds (sim time: the odometry stamp); default the node's clock, read once per tick."""
        with self.lock:
            stamp_ns = None if now is not None else self.now_ns()
            now = now if stamp_ns is None else stamp_ns * 1e-9
            thrusts, armed = self.core.control(now)
            # The full status only when what it reports at once changed; /flight/state otherwise goes out at
            # state_rate_hz from publish_state.
            key = self.core.status_key(now)
            status = self.core.status(now) if key != self.last_state_key else None
            self.set_loop_rate(self.idle_rate.rate_hz(self.core.resting(), time.monotonic()))
        try:
            self.send_to_vehicle(thrusts, armed, self.ticks, stamp_ns)
            self.ticks += 1
            if status is not None:
                mode, previous = str(status.mode), None if self.last_state_key is None else str(self.last_state_key[0])
                if mode != previous:
                    # TAKING_OFF straight to LANDED: the core abandoned a take-off that never left the ground.
                    abandoned = previous == "TAKING_OFF" and mode == "LANDED"
                    why = f" ({status.land_reason})" if (mode == "LANDING" or abandoned) and status.land_reason else ""
                    line = f"mode {mode}{why}, source '{status.active_source}'"
                    # Two call sites: rclpy refuses a change of severity at one ("Logger severity cannot be
                    # changed between calls"), which left every later tick failing here after an abandoned take-off.
                    if abandoned:
                        self.get_logger().warn(line)
                    else:
                        self.get_logger().info(line)
                self.last_state_key = key
                self.publish_state(status)
        except Exception as exc:
            self.get_logger().error(f"control loop publish failed: {exc}", throttle_duration_sec=1.0)

    def set_loop_rate(self, rate_hz: float) -> None:
        """The control loop's rate from now (lock held: a wake-up must not be undone by a tick that decided to
        idle just before it)."""
        if rate_hz == self.loop_rate_hz:
            return
        self.loop_rate_hz = rate_hz
        self.control_loop.set_rate(rate_hz)
        self.get_logger().info(f"control loop at {rate_hz:g} Hz" + (" (landed, disarmed, at rest)"
                                                                    if rate_hz < self.idle_rate.full_hz else ""))

    @property
    def loop_periods(self) -> list[float]:
        """Intervals between control steps, for the loop rate and jitter in /diagnostics."""
        return self.control_loop.periods

    def raise_priority(self) -> None:
        raise_thread_priority(self, self.p.realtime_priority, "control thread")

    def favour_callbacks(self) -> None:
        """The process's threads (the executor's and the workers started later, which inherit it) and its session at
        nice EXECUTOR_NICE: the control thread waits for the GIL whenever a callback holds it, so callbacks left at
        an equal share behind busy processes delay the tick all the same. The session too, because with autogroup
        scheduling a thread's niceness only counts against its own session's threads (nodes/scheduling.py). Not
        real-time: a flood of messages must not be able to starve the rest of the companion computer (the
        simulator, the vehicle driver)."""
        if int(self.p.realtime_priority) > 0:
            apply_niceness(self, EXECUTOR_NICE)

    def publish_state(self, status=None) -> None:
        with self.lock:
            status = status or self.core.status(self.now())
            state = self.core.state
            setpoint = self.core.controller.last_setpoint
        if setpoint is not None and setpoint.mode == "position" and status.armed:
            target = PoseStamped()
            target.header.stamp = self.get_clock().now().to_msg()
            target.header.frame_id = self.p.odom_frame
            vector_to_msg(setpoint.position, target.pose.position)
            quat_msg_from_wxyz(quat_from_yaw(setpoint.yaw_rad), target.pose.orientation)
            self.setpoint_pub.publish(target)
        msg = FlightState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.p.odom_frame
        msg.mode = str(status.mode)
        msg.armed = bool(status.armed)
        if state is not None:
            vector_to_msg(state.position, msg.pose.position)
            quat_msg_from_wxyz(state.quaternion_wxyz, msg.pose.orientation)
            vector_to_msg(state.velocity, msg.velocity.linear)
            vector_to_msg(state.angular_velocity_body, msg.velocity.angular)
        msg.battery_percentage = float(status.battery_percentage)
        msg.home_known = status.home is not None
        if status.home is not None:
            vector_to_msg(status.home, msg.home)
        msg.active_source = status.active_source
        msg.operator_authorised = bool(status.operator_authorised)
        msg.last_rejection = status.last_rejection
        msg.rejection_count = int(status.rejection_count)
        self.state_pub.publish(msg)
        diag = DiagnosticArray()
        diag.header.stamp = msg.header.stamp
        entry = DiagnosticStatus(name="mmchat/flight_controller", hardware_id=self.p.airframe,
                                 level=DiagnosticStatus.OK if status.odometry_ok else DiagnosticStatus.ERROR,
                                 message=f"{status.mode}; last rejection: {status.last_rejection or 'none'}")
        loop_stats = [KeyValue(key=k, value=f"{v:.3f}") for k, v in self.loop_statistics().items()]
        entry.values = loop_stats + [KeyValue(key="rejections_total", value=str(status.rejection_count))] + [
            KeyValue(key=f"rejections/{reason}", value=str(count))
            for reason, count in sorted(status.rejections_by_reason.items())] + self.auth.diagnostic_values()
        diag.status = [entry]
        self.diag_pub.publish(diag)

    def loop_statistics(self, window: int = 1000) -> dict[str, float]:
        """Control loop rate and period jitter (|period - nominal|) over the last ``window`` ticks."""
        periods = sorted(self.loop_periods[-window:])
        if len(periods) < 10:
            return {}
        nominal = 1.0 / self.loop_rate_hz
        jitter = sorted(abs(p - nominal) for p in periods)
        pick = lambda values, q: values[int(q * (len(values) - 1))]  # noqa: E731
        return {"loop_rate_hz": len(periods) / sum(periods), "jitter_p50_ms": 1000 * pick(jitter, 0.5),
                "jitter_p99_ms": 1000 * pick(jitter, 0.99), "period_max_ms": 1000 * periods[-1]}


def main(args=None):
    return run_node(FlightControllerNode, args)


if __name__ == "__main__":
    sys.exit(main())
