"""The planner's decision logic, without ROS: text + what the vehicle and camera know → a plan to execute, a
question to ask, or a refusal to speak. The LLM is a callable passed in, so this is testable with real and with
test-double models alike.

Stages: (1) refuse anything that asks to change safety limits or authorisation; (2) the deterministic grammar;
(3) the LLM, constrained to the plan schema, for what the grammar cannot read; then every plan, whichever stage
made it, passes the same limits and the flight core's own plan validation (geofence, ceiling, minimum height,
vehicle mode) before it is sent. A valid LLM plan is, by default, read back and waits for the operator's "yes"
(a small model's plan can be valid and still not what was meant); "yes" checks it again against the state then.
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import numpy as np

from mmchat_ros.core import answers
from mmchat_ros.core.detections import TrackedObject
from mmchat_ros.core.flight.envelope import EnvelopeConfig, SafetyEnvelope
from mmchat_ros.core.flight.plan import PlanConfig, PlanExecutor, PlanVehicle
from mmchat_ros.core.flight.state_machine import FlightMode
from mmchat_ros.core.language.clause_reader import FollowTarget, ParseResult
from mmchat_ros.core.language.recognition_slips import confusable_numbers, repeated_phrase, unexplained_words
from mmchat_ros.core.plan_schema import (SYSTEM_PROMPT, PlanLimits, PlanSchemaError, check_limits, json_schema,
                                         parse_llm_output, user_prompt)
from mmchat_ros.core.plan_vocabulary import ACTIONS, ActionType, PlanStep, describe
from mmchat_ros.core.understanding import Understanding

LlmCall = Callable[[str, str, dict], str]    # (system prompt, user prompt, JSON schema) -> JSON text

# Whole utterances that answer "shall I?" (Whisper adds punctuation and capitals).
_YES = re.compile(r"(yes|yeah|yep|sure|confirm(ed)?|affirmative|go ahead|do it|ok(ay)?( do it| go ahead)?)"
                  r"( please)?")
_NO = re.compile(r"(no|nope|cancel( that| it)?|never ?mind|don'?t( do (it|that))?|negative)( please)?")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def confirmation_answer(text: str) -> str:
    """'yes' or 'no' when the whole utterance answers a yes/no question, else ''."""
    words = re.sub(r"[^a-z' ]+", " ", text.lower()).split()
    phrase = " ".join(words)
    if _YES.fullmatch(phrase):
        return "yes"
    if _NO.fullmatch(phrase):
        return "no"
    return ""


class LlmUnavailable(RuntimeError):
    """The LLM backend cannot be reached or loaded (the grammar keeps working)."""


@dataclass
class Context:
    authorised: bool
    vehicle: PlanVehicle | None
    seen: list[TrackedObject] = field(default_factory=list)     # tracked boxes in view, pixels
    image_width: float = 0.0
    home: np.ndarray | None = None    # the flight controller's take-off point (come back home), None = unknown
    status: answers.Status | None = None     # answers.Status: what questions are answered from (the planner node fills it)


@dataclass
class PlannerDecision:
    kind: str      # "execute" | "confirm" (asks yes/no, nothing moves) | "clarify" | "refuse" | "answer" | "chat"
    reply: str
    steps: list[PlanStep] = field(default_factory=list)
    source: str = ""                  # "grammar" | "llm"
    llm_seconds: float = 0.0
    topic: str = ""                   # answer: what the question was about (answers.TOPICS)
    notes: list[str] = field(default_factory=list)     # how the utterance was read (logged)


def summarise_vehicle(vehicle: PlanVehicle | None) -> str:
    if vehicle is None:
        return "unknown (no flight state yet)"
    x, y, z = (float(v) for v in vehicle.position)
    return (f"mode {vehicle.mode.value}, position x={x:.1f} y={y:.1f} z={z:.1f} m, heading "
            f"{math.degrees(vehicle.yaw_rad):.0f} degrees")


def summarise_scene(seen: list[TrackedObject]) -> str:
    if not seen:
        return "nothing tracked"
    return ", ".join(f"{o.class_name} (track {o.track_id})" for o in seen[:8])


def resolve_follow(target: FollowTarget, seen: list[TrackedObject]) -> int | str:
    """The track id to follow, or a question when the target is not in view."""
    candidates = [o for o in seen if o.class_name == target.target_class]
    if target.selector == "track":
        if any(o.track_id == target.track_id for o in candidates):
            return target.track_id
        return f"I can't see {target.target_class} {target.track_id} right now. Which one should I follow?"
    if not candidates:
        return f"I can't see a {target.target_class} to follow."
    if target.selector == "left":
        return min(candidates, key=lambda o: o.center_x).track_id
    if target.selector == "right":
        return max(candidates, key=lambda o: o.center_x).track_id
    return max(candidates, key=lambda o: o.area).track_id


@dataclass(frozen=True)
class _PendingPlan:
    steps: list[PlanStep]
    description: str
    asked_at: float
    source: str = "llm"


class Planner:
    def __init__(self, llm: LlmCall | None = None, limits: PlanLimits = PlanLimits(),
                 envelope: EnvelopeConfig | None = None, require_authorisation: bool = True,
                 llm_name: str = "LLM", confirm_llm_plans: bool = True, confirm_timeout_s: float = 20.0,
                 understanding: Understanding | None = None, llm_timeout_s: float = 3.0,
                 warm_up_llm: bool = False, confirm_speech_below: float = 0.0):
        self.llm = llm
        self.llm_name = llm_name
        self.limits = limits
        self.envelope = envelope or EnvelopeConfig()
        self.require_authorisation = require_authorisation
        self.confirm_llm_plans = confirm_llm_plans
        self.confirm_timeout_s = confirm_timeout_s
        self.confirm_speech_below = confirm_speech_below
        self.llm_timeout_s = llm_timeout_s
        self.understanding = understanding or Understanding()
        self._llm_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="planner-llm")
        if llm is not None and warm_up_llm:
            # Evaluate the fixed system prompt once now (backends that cache it answer the first command faster).
            self._llm_worker.submit(self._warm_up)
        self.schema = json_schema(limits)
        self._pending: _PendingPlan | None = None

    def _warm_up(self) -> None:
        try:
            self.llm(SYSTEM_PROMPT, user_prompt("hover", "unknown", "nothing tracked"), self.schema)
        except Exception:      # noqa: BLE001 - a backend that fails here fails again, with its reason, on use
            pass

    def close(self) -> None:
        """Stop the LLM worker (a call in flight ends at its deadline)."""
        self._llm_worker.shutdown(wait=False, cancel_futures=True)

    def decide(self, text: str, context: Context, now: float | None = None,
               speech_confidence: float | None = None) -> PlannerDecision:
        """``speech_confidence`` (0..1) marks ``text`` as a speech-recognition transcript: a plan read from a
        doubtful transcript is read back for a yes instead of flown (see _speech_doubt)."""
        started = time.monotonic()
        now = started if now is None else now
        text = text.strip()
        if not text:
            return PlannerDecision("clarify", "I didn't catch that. Please say it again.")
        reading = self.understanding.read(text)
        # Chit-chat and "what can I say" need no operator; the other answers tell where the vehicle is, who flies
        # it and what its camera sees, so they are for the authorised operator only, like commands.
        if reading.kind == "answer" and reading.topic != "help" and self.require_authorisation \
                and not context.authorised:
            return PlannerDecision("refuse", "I only answer the authorised operator.", topic=reading.topic)
        if reading.kind == "answer":
            return PlannerDecision("answer", answers.answer(reading.topic, context.status or answers.Status()),
                                   topic=reading.topic, source="grammar")
        if reading.kind == "chat":
            return PlannerDecision("chat", reading.reply, source="grammar")
        if self.require_authorisation and not context.authorised:
            return PlannerDecision("refuse", "I only take commands from an authorised operator.")
        pending, self._pending = self._pending, None          # whatever comes next answers or replaces it
        answer = confirmation_answer(text)
        if answer:
            return self._answer(answer, pending, context, now)
        if reading.kind == "refuse":
            return PlannerDecision("refuse", reading.reply, notes=reading.notes)
        if reading.kind == "clarify":
            return PlannerDecision("clarify", reading.reply, source="grammar", notes=reading.notes)
        if reading.kind == "command":
            decision = self._grammar_plan(reading.parse, context)
            decision.notes = reading.notes
            doubt = self._speech_doubt(text, speech_confidence, reading.parse) if decision.kind == "execute" else ""
            if doubt:
                return self._read_back(decision.steps, "grammar", now, f"I heard '{text}' ({doubt})",
                                       notes=decision.notes + [f"read back: {doubt}"])
            return decision
        return self._ask_llm(text, context, now, reading, started)

    def _grammar_plan(self, parsed: ParseResult, context: Context) -> PlannerDecision:
        steps = list(parsed.steps)
        here = np.asarray(context.vehicle.position, float) if context.vehicle is not None else None
        for index in parsed.goto_keep_altitude:
            height = float(here[2]) if here is not None else 1.5
            steps[index] = PlanStep(ActionType.GOTO, x=steps[index].x, y=steps[index].y, z=height,
                                    speed=steps[index].speed)
        for index in parsed.goto_keep_position:
            if here is None:
                return PlannerDecision("clarify", "I don't know where I am yet, so I can't change height to a given "
                                                  "value. Say how far to climb or descend instead.", source="grammar")
            steps[index] = PlanStep(ActionType.GOTO, x=float(here[0]), y=float(here[1]), z=steps[index].z,
                                    speed=steps[index].speed)
        for index, target in parsed.follow.items():
            track = resolve_follow(target, context.seen)
            if isinstance(track, str):
                return PlannerDecision("clarify", track, source="grammar")
            steps[index] = PlanStep(ActionType.FOLLOW, target_track_id=track, target_class=target.target_class)
        return self._checked(steps, context, "grammar", describe(steps) + ".")

    def _ask_llm(self, text: str, context: Context, now: float, reading=None,
                 decide_started: float | None = None) -> PlannerDecision:
        not_understood = ("Sorry, I didn't understand that. Try: take off, fly forward two meters, turn left, "
                          "come back home, land — or ask 'what can I say?'")
        if self.llm is None:
            return PlannerDecision("clarify", not_understood)
        started = time.monotonic() if decide_started is None else decide_started
        # Every backend is held to the timeout here (the embedded one also stops generating at it); a late
        # answer is dropped, never acted on.
        call = self._llm_worker.submit(self.llm, SYSTEM_PROMPT, user_prompt(
            text, summarise_vehicle(context.vehicle), summarise_scene(context.seen)), self.schema)
        try:
            raw = call.result(timeout=max(0.0, self.llm_timeout_s - (time.monotonic() - started)))
        except FutureTimeout:
            return PlannerDecision("clarify", f"Sorry, I couldn't work that out in time ({self.llm_timeout_s:g} s). "
                                              + not_understood.split(". ", 1)[1], source="llm",
                                   llm_seconds=time.monotonic() - started)
        except LlmUnavailable as exc:
            return PlannerDecision("clarify", f"The language model is unavailable ({exc}), so I only understand simple "
                                              "commands like take off, fly forward two meters, turn left, land.")
        elapsed = time.monotonic() - started
        if elapsed > self.llm_timeout_s:
            # Whatever a model says after the deadline is not used: the operator has waited long enough.
            return PlannerDecision("clarify", f"Sorry, I couldn't work that out in time ({elapsed:.0f} s). "
                                              + not_understood.split(". ", 1)[1], source="llm", llm_seconds=elapsed)
        try:
            plan = parse_llm_output(raw, self.limits)
        except PlanSchemaError as exc:
            return PlannerDecision("clarify", f"{not_understood.split('. ')[0]}: the plan I came up with was invalid "
                                              f"({exc}).", source="llm", llm_seconds=elapsed)
        if not plan.steps:
            reply = plan.question or plan.reply or "I'm not sure what to do. Could you rephrase?"
            return PlannerDecision("clarify", reply, source="llm", llm_seconds=elapsed)
        disagreement = self._llm_disagrees(text, plan.steps)
        if disagreement:
            # A low-confidence reading is a question, never a guess.
            return PlannerDecision("clarify", f"{not_understood.split('. ')[0]}. {disagreement}", source="llm",
                                   llm_seconds=elapsed, notes=[f"LLM plan rejected: {disagreement}"])
        for step in plan.steps:
            if step.type == ActionType.FOLLOW and step.target_track_id < 0:
                track = resolve_follow(FollowTarget(target_class=step.target_class), context.seen)
                if isinstance(track, str):
                    return PlannerDecision("clarify", track, source="llm", llm_seconds=elapsed)
        description = describe(plan.steps)
        decision = self._checked(plan.steps, context, "llm", description + ".")
        decision.llm_seconds = elapsed
        if decision.kind == "execute" and self.confirm_llm_plans:
            confirm = self._read_back(plan.steps, "llm", now, "I would do this")
            confirm.llm_seconds = elapsed
            return confirm
        return decision

    def _speech_doubt(self, text: str, confidence: float | None, parsed: ParseResult | None = None) -> str:
        """Why a transcript is not trusted to fly without a read-back, or "" (typed text is always trusted).
        The recogniser's own confidence; words the command language cannot account for (a misheard sentence
        usually still contains a command word — "Treaty of our pilot from home" → return home — but rarely only
        words the robot knows); a number, unit or direction the reading left unused (a dropped word: "turn right, one
        metre"; a misheard verb: "climb that slide right a bit" has no use for "right"); a number the recogniser
        confuses with another ("thirteen" for "thirty"); a phrase said twice in a row (the recogniser repeating itself);
        and a reading that needed a correction (a sound-alike repair, an intent by similarity): the transcript
        was not what was flown."""
        if confidence is None:
            return ""
        if confidence < self.confirm_speech_below:
            return f"recognition confidence {confidence:.2f}"
        unknown = unexplained_words(text)
        if unknown:
            return "not sure about " + ", ".join(f"'{w}'" for w in dict.fromkeys(unknown))
        if parsed is not None and parsed.unused:
            return "not sure what " + ", ".join(f"'{w}'" for w in dict.fromkeys(parsed.unused)) + " was for"
        confusable = confusable_numbers(text)
        if confusable:
            return "not sure if " + ", ".join(f"'{heard}' or '{other}'" for heard, other in dict.fromkeys(confusable))
        repeated = repeated_phrase(text)
        if repeated:
            return f"'{repeated}' twice"
        if parsed is not None and parsed.notes:
            return "; ".join(parsed.notes)
        return ""

    def _read_back(self, steps: list[PlanStep], source: str, now: float, lead: str,
                   notes: list[str] | None = None) -> PlannerDecision:
        """Hold a checked plan for the operator's yes; steps ride along for logs and scoring (a "confirm"
        decision never moves anything)."""
        description = describe(steps)
        self._pending = _PendingPlan(list(steps), description, now, source)
        return PlannerDecision("confirm", f"{lead}: {_lower_first(description)}. Shall I? Say yes or no.",
                               steps=list(steps), source=source, notes=notes or [])

    def _llm_disagrees(self, text: str, steps: list[PlanStep]) -> str:
        """Why an LLM plan is not trusted, or "": each of its actions must be one the intent classifier finds
        plausible for what was said (a small model otherwise turns vague words into confident nonsense)."""
        classifier = self.understanding.classifier
        if classifier is None:
            return ""
        scores = classifier.scores(text)
        plausible = {intent for intent, score in scores.items() if score >= classifier.threshold - 0.1}
        by_action = {"takeoff": {"takeoff"}, "land": {"land"}, "hover": {"hover", "stop"}, "stop": {"stop", "hover",
                     "unfollow"}, "move_by": {"move", "climb", "descend"}, "goto": {"move", "climb", "descend"},
                     "rotate": {"turn"}, "follow": {"follow"}, "return_home": {"home"}}
        for step in steps:
            name = ACTIONS[ActionType(step.type)].name
            if not by_action.get(name, set()) & plausible:
                return f"(the model proposed '{name}', which doesn't match what you said)"
        return ""

    def _answer(self, answer: str, pending: _PendingPlan | None, context: Context, now: float) -> PlannerDecision:
        if pending is None or now - pending.asked_at > self.confirm_timeout_s:
            return PlannerDecision("clarify", "There is nothing waiting for a yes or no. What should I do?")
        if answer == "no":
            return PlannerDecision("refuse", "Okay, I won't do that.", source=pending.source)
        # Checked again: the vehicle may have moved or landed since the plan was read back.
        return self._checked(pending.steps, context, pending.source, f"Okay, {_lower_first(pending.description)}.")

    def _checked(self, steps: list[PlanStep], context: Context, source: str, reply: str) -> PlannerDecision:
        if len(steps) > self.limits.max_actions:
            return PlannerDecision("refuse", f"I can't do that: {len(steps)} actions is more than the "
                                             f"{self.limits.max_actions} I take in one command.", source=source)
        try:
            for index, step in enumerate(steps):
                check_limits(step, self.limits, f"action {index + 1}")
        except PlanSchemaError as exc:
            return PlannerDecision("refuse", f"I can't do that: {exc}.", source=source)
        vehicle = context.vehicle or PlanVehicle(np.zeros(3), np.zeros(3), 0.0, FlightMode.LANDED)
        reason = PlanExecutor(SafetyEnvelope(self.envelope), PlanConfig()).validate(steps, vehicle, context.home)
        if reason:
            return PlannerDecision("refuse", f"I can't do that: {reason}.", source=source)
        return PlannerDecision("execute", reply, steps=steps, source=source)
