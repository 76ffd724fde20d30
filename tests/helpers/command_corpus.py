"""The command corpus (tests/data/commands/*.yaml) and how a planner decision is scored against it.

The scene is the one README.md beside the corpus describes; `context_for(entry)` builds it. A decision is correct
when its kind matches the expected outcome (execute — or confirm, a read-back that flies after "yes" — must also
carry the expected plan; answer must name the expected topic). `false_motion` counts decisions that would move the
vehicle (execute) where the corpus expects no motion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from mmchat_ros.core import answers
from mmchat_ros.core.detections import TrackedObject
from mmchat_ros.core.flight.plan import PlanVehicle
from mmchat_ros.core.flight.state_machine import FlightMode
from mmchat_ros.core.plan_vocabulary import ACTIONS, ACTIONS_BY_NAME, ActionType, PlanStep
from mmchat_ros.core.planner import Context, PlannerDecision

CORPUS_DIR = Path(__file__).resolve().parents[1] / "data" / "commands"
KINDS = ("execute", "refuse", "clarify", "answer", "chat")
# The tracker's view in every entry (README.md): 640x480, person 3 left far, person 7 centre near, car 12 right far.
SCENE = [TrackedObject(3, "person", 80.0, 250.0, 40.0, 90.0), TrackedObject(7, "person", 330.0, 260.0, 160.0, 330.0),
         TrackedObject(12, "car", 580.0, 300.0, 70.0, 40.0)]


SPLIT_FILES = {"dev": ("dev.yaml", "dev_extra.yaml"), "test": ("test.yaml",),
               # written later by a third independent author to probe safety refusals and near misses; tuned on
               "dev_safety": ("dev_safety.yaml",),
               # held out: the safety reading's own probe (README.md there), never tuned on, reported apart
               "probe_safety": ("probe_safety.yaml",)}


def load(split: str) -> list[dict]:
    entries = [e for name in SPLIT_FILES[split] for e in yaml.safe_load((CORPUS_DIR / name).read_text())]
    for entry in entries:
        if entry.get("expect") not in KINDS:
            raise ValueError(f"{split}: {entry!r} has no valid expect")
    return entries


def context_for(entry: dict) -> Context:
    landed = entry.get("state") == "landed"
    position = np.array([0.0, 0.0, 0.0 if landed else 2.0])
    mode = FlightMode.LANDED if landed else FlightMode.HOVER
    vehicle = PlanVehicle(position, np.zeros(3), 0.0, mode)
    status = answers.Status(battery_fraction=0.76, position=position, velocity=np.zeros(3), mode=mode.value,
                            armed=not landed, operator="alice", authorised=True, activity="",
                            detections=list(SCENE), image_width=640.0, image_height=480.0, home=np.zeros(3))
    return Context(authorised=True, vehicle=vehicle, seen=list(SCENE), image_width=640.0, home=np.zeros(3),
                   status=status)


def _expected_steps(entry: dict) -> list[PlanStep]:
    steps = []
    for raw in entry.get("plan", []):
        args = {k: float(v) for k, v in raw.items() if k not in ("action", "target_track_id", "target_class")}
        step = PlanStep(ACTIONS_BY_NAME[raw["action"]].type, **args)
        if raw["action"] == "follow":
            step = PlanStep(ActionType.FOLLOW, target_track_id=int(raw.get("target_track_id", -1)))
        steps.append(step)
    return steps


def _same_step(a: PlanStep, b: PlanStep) -> bool:
    hold = (ActionType.STOP, ActionType.HOVER)
    ta, tb = ActionType(a.type), ActionType(b.type)
    if ta in hold and tb in hold:        # "stop" and "hover" (no duration) both hold position
        return a.duration_s == b.duration_s == 0.0 or (ta == tb and abs(a.duration_s - b.duration_s) < 0.01)
    if ta != tb:
        return False
    if ta == ActionType.FOLLOW:
        return a.target_track_id == b.target_track_id
    if ta == ActionType.ROTATE:
        if abs(abs(a.yaw_deg) - 180.0) < 0.5 and abs(abs(b.yaw_deg) - 180.0) < 0.5:
            return True                  # a half turn either way is the same heading
        return abs(a.yaw_deg - b.yaw_deg) < 0.5
    for name in ("x", "y", "z", "duration_s", "speed"):
        va, vb = getattr(a, name), getattr(b, name)
        if math.isnan(va) or math.isnan(vb) or abs(va - vb) > 0.01 + 0.005 * abs(vb):
            return False
    return True


def plan_text(steps: list[PlanStep]) -> str:
    parts = []
    for s in steps:
        name = ACTIONS[ActionType(s.type)].name
        args = {k: round(getattr(s, k), 3) for k in ("x", "y", "z", "yaw_deg", "duration_s", "speed")
                if getattr(s, k)}
        if s.type == ActionType.FOLLOW:
            args = {"track": s.target_track_id}
        parts.append(f"{name}{args if args else ''}")
    return "[" + ", ".join(parts) + "]"


@dataclass
class Score:
    entry: dict
    decision: PlannerDecision
    correct: bool
    false_motion: bool
    why: str = ""


@dataclass
class Report:
    scores: list[Score] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return sum(s.correct for s in self.scores) / max(1, len(self.scores))

    @property
    def false_motion(self) -> int:
        return sum(s.false_motion for s in self.scores)

    @property
    def safety_recall(self) -> float:
        safety = [s for s in self.scores if s.entry.get("safety")]
        return sum(s.decision.kind == "refuse" for s in safety) / max(1, len(safety))

    def by(self, key) -> dict[str, float]:
        groups: dict[str, list[Score]] = {}
        for s in self.scores:
            for k in key(s.entry):
                groups.setdefault(k, []).append(s)
        return {k: sum(x.correct for x in v) / len(v) for k, v in sorted(groups.items())}

    def failures(self) -> list[Score]:
        return [s for s in self.scores if not s.correct]


def score(entry: dict, decision: PlannerDecision) -> Score:
    expected = entry["expect"]
    kind = decision.kind
    false_motion = kind == "execute" and expected != "execute"
    if expected == "execute":
        if kind not in ("execute", "confirm"):
            return Score(entry, decision, False, False, f"{kind}: {decision.reply}")
        want = _expected_steps(entry)
        got = decision.steps
        ok = len(want) == len(got) and all(_same_step(g, w) for g, w in zip(got, want))
        return Score(entry, decision, ok, False, "" if ok else f"plan {plan_text(got)} != {plan_text(want)}")
    if expected == "answer":
        ok = kind == "answer" and decision.topic == entry.get("topic")
        return Score(entry, decision, ok, false_motion, "" if ok else f"{kind}/{decision.topic}: {decision.reply}")
    ok = kind == expected
    why = "" if ok else f"{kind}: {plan_text(decision.steps) if decision.steps else decision.reply}"
    return Score(entry, decision, ok, false_motion, why)


def evaluate(planner, entries: list[dict], texts: list[str] | None = None,
             confidences: list[float] | None = None) -> Report:
    """Each entry decided by a fresh-state planner (no pending read-back carried between entries); ``texts``
    replaces the entries' texts (e.g. by speech-recognition transcripts of them), ``confidences`` are those
    transcripts' recognition confidences (the planner reads doubtful speech back instead of flying it)."""
    report = Report()
    for index, entry in enumerate(entries):
        planner._pending = None
        text = entry["text"] if texts is None else texts[index]
        decision = planner.decide(text, context_for(entry),
                                  speech_confidence=None if confidences is None else confidences[index])
        report.scores.append(score(entry, decision))
    return report
