"""The activation policy: which lifecycle nodes run, and how fast, from what the graph is doing. Pure Python.

The policy is data (config/activation_policy.yaml, docs/activation.md): for each managed node an ordered list of
rules; the first rule one of whose signals holds applies (a rule without signals always does, so the last one is
the default). A rule names the node's lifecycle state (active or inactive) and, optionally, values of its live
parameters; a parameter that one rule sets and the applying rule leaves out goes back to the value the node had
before the policy first changed it.

Signals are evidence seen on the graph's topics (the activation node, nodes/activation.py, turns messages into
evidence); each holds from its latest evidence for its ``hold_s`` (how long after a question about the scene the
tracker stays at full rate, how long after landing gesture recognition goes on), or until it is explicitly
withdrawn (follow switched off).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmchat_ros.core import answers
from mmchat_ros.core.face_auth import AMBIGUOUS, FACE_MATCH, NO_OPERATORS, UNKNOWN_FACE
from mmchat_ros.core.launch_graph import GraphError, load_yaml

# The evidence the activation node can see, and where it comes from.
SIGNALS = {
    "following": "the vehicle follows someone: /follow/enable true (held until /follow/enable false), a "
                 "/follow/target, and every /cmd_vel/follow the follow node sends",
    "scene_asked": "someone asked what the camera sees (a question about the scene on /speech/transcript)",
    "flying": "/flight/state is in a mode other than LANDED or EMERGENCY (armed, taking off, in the air, landing)",
    "operator_seen": "/auth/state names a recognised operator: someone is in front of the camera and may gesture",
    "face_seen": "/auth/state says a face is in view, recognised or not (held while it says so): someone in front "
                 "of the camera may gesture, whether or not they may fly",
    "nobody_enrolled": "/auth/state says no operator is enrolled (held while it says so): nobody can be "
                       "recognised, so anyone in view may gesture",
}
STATES = ("active", "inactive")
# The lifecycle transition that moves a node one step towards the state wanted (ROS 2 managed-node states).
_STEPS = {("unconfigured", "active"): "configure", ("unconfigured", "inactive"): "configure",
          ("inactive", "active"): "activate", ("active", "inactive"): "deactivate"}
SCENE_TOPICS = ("scene", "describe")
GROUND_MODES = ("LANDED", "EMERGENCY")


class PolicyError(ValueError):
    """A malformed policy file; the message names the file and the offending entry."""


@dataclass(frozen=True)
class Rule:
    state: str
    when: tuple[str, ...] = ()                 # any of these signals; empty = always
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    state: str
    parameters: Mapping[str, Any]              # every managed parameter's wanted value (None: as before the policy)


@dataclass(frozen=True)
class Policy:
    hold_s: Mapping[str, float]
    nodes: Mapping[str, tuple[Rule, ...]]

    def managed_parameters(self, node: str) -> tuple[str, ...]:
        """Every parameter of ``node`` that some rule sets, in first-mention order."""
        names: dict[str, None] = {}
        for rule in self.nodes[node]:
            names.update(dict.fromkeys(rule.parameters))
        return tuple(names)

    def decide(self, node: str, holding: set[str]) -> Decision:
        """What ``node`` should be while the signals in ``holding`` hold."""
        rule = next(r for r in self.nodes[node] if not r.when or holding.intersection(r.when))
        return Decision(rule.state, {name: rule.parameters.get(name) for name in self.managed_parameters(node)})


def parse_policy(data: Any, source: str = "policy") -> Policy:
    """A Policy from the YAML structure; PolicyError naming ``source`` and the entry when it is malformed."""
    if not isinstance(data, dict) or set(data) != {"hold_s", "nodes"}:
        raise PolicyError(f"{source}: a policy is a mapping with exactly the keys hold_s and nodes")
    hold_s = data["hold_s"] or {}
    if not isinstance(hold_s, dict) or set(hold_s) != set(SIGNALS):
        raise PolicyError(f"{source}: hold_s must give every signal ({', '.join(SIGNALS)}) a time in seconds")
    for name, value in hold_s.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise PolicyError(f"{source}: hold_s.{name} must be a number of seconds >= 0, not {value!r}")
    nodes = data["nodes"]
    if not isinstance(nodes, dict) or not nodes:
        raise PolicyError(f"{source}: nodes must map node names to lists of rules")
    return Policy({k: float(v) for k, v in hold_s.items()},
                  {node: _rules(rules, f"{source}: nodes.{node}") for node, rules in nodes.items()})


def _rules(raw: Any, where: str) -> tuple[Rule, ...]:
    if not isinstance(raw, list) or not raw:
        raise PolicyError(f"{where} must be a list of rules")
    rules = []
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict) or "state" not in entry or set(entry) - {"state", "when", "parameters"}:
            raise PolicyError(f"{at}: a rule has a state and optionally when and parameters")
        if entry["state"] not in STATES:
            raise PolicyError(f"{at}: state '{entry['state']}' is not one of {', '.join(STATES)}")
        when = entry.get("when") or []
        if not isinstance(when, list) or any(w not in SIGNALS for w in when):
            raise PolicyError(f"{at}: when must list signals among {', '.join(SIGNALS)}, not {when!r}")
        parameters = entry.get("parameters") or {}
        if not isinstance(parameters, dict) or any(v is None for v in parameters.values()):
            raise PolicyError(f"{at}: parameters must map parameter names to values")
        rules.append(Rule(entry["state"], tuple(when), dict(parameters)))
    if rules[-1].when:
        raise PolicyError(f"{where}: the last rule must have no 'when' (it is the default)")
    if any(not rule.when for rule in rules[:-1]):
        raise PolicyError(f"{where}: only the last rule may go without 'when' (the rules after it would never apply)")
    return tuple(rules)


def load_policy(path: str | Path) -> Policy:
    try:
        data = load_yaml(Path(path))
    except GraphError as exc:   # unreadable, or not YAML: the message names the file (and line)
        raise PolicyError(str(exc)) from exc
    return parse_policy(data, str(path))


class Signals:
    """Each signal's latest evidence; a signal holds for its hold time after it, until withdrawn. Evidence seen
    ``until_withdrawn`` (follow switched on) holds until ``withdraw`` (follow switched off), however long."""

    def __init__(self, hold_s: Mapping[str, float]):
        self.hold_s = dict(hold_s)
        self.last: dict[str, float] = {}
        self.latched: set[str] = set()

    def saw(self, signal: str, now: float, until_withdrawn: bool = False) -> None:
        self.last[signal] = now
        if until_withdrawn:
            self.latched.add(signal)

    def withdraw(self, signal: str) -> None:
        self.last.pop(signal, None)
        self.latched.discard(signal)

    def release(self, signal: str, now: float) -> None:
        """Evidence seen ``until_withdrawn`` stops now: the signal holds its hold time from here, then lapses."""
        if signal in self.latched:
            self.latched.discard(signal)
            self.last[signal] = now

    def holding(self, now: float) -> set[str]:
        return {name for name, t in self.last.items() if name in self.latched or now - t <= self.hold_s[name]}


def asks_about_scene(text: str) -> bool:
    """Whether an utterance asks what the camera sees ("what do you see", "is anyone there", "describe the
    scene"): the planner answers those from /detections, so the tracker should be at full rate for a while."""
    return answers.question_topic(text) in SCENE_TOPICS


def auth_evidence(operator_id: str, reason: str) -> dict[str, bool]:
    """What an /auth/state says about who is in front of the camera, as the level of each signal it drives.
    face_auth publishes a state on every change (and while a session's expiry moves), not per frame, so a face
    in view holds ``face_seen`` until a state says otherwise; the same for ``nobody_enrolled``."""
    face = bool(operator_id) or reason.startswith((FACE_MATCH, UNKNOWN_FACE, AMBIGUOUS))
    return {"face_seen": face, "nobody_enrolled": reason == NO_OPERATORS}


def is_flying(mode: str) -> bool:
    return bool(mode) and mode not in GROUND_MODES


def next_transition(current: str, wanted: str) -> str | None:
    """The transition that moves a node from lifecycle state ``current`` one step towards ``wanted``; None when it
    is there, or cannot get there (finalized, or in a transition now)."""
    return _STEPS.get((current, wanted))


def parameter_changes(decision: Decision, current: Mapping[str, Any], original: Mapping[str, Any]) -> dict[str, Any]:
    """The parameter values to set so that the node has what ``decision`` wants: a value the decision leaves
    out (None) is the ``original`` one (the node's own, before the policy changed it)."""
    changes = {}
    for name, wanted in decision.parameters.items():
        value = original.get(name) if wanted is None else wanted
        if value is None or name not in current:
            continue
        if isinstance(current[name], float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)   # the policy's 1 for a float parameter: ROS refuses a change of type
        if current[name] != value:
            changes[name] = value
    return changes
