"""The operator panel's model, without rclpy or HTTP: what the page shows (flight and auth state, a log of
transcripts, plans and replies), how it travels (Server-Sent Events to every open page, frames dropped for slow
pages, state never) and what an operator may submit.
"""
from __future__ import annotations

import json
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from mmchat_ros.core.overlays import yaw_deg_of
from mmchat_ros.core.plan_vocabulary import ACTIONS, ARGUMENTS, ActionType, PlanStep

MAX_COMMAND_CHARS = 500
# The page (src/mmchat_ros/web, installed as package data) by URL path: file name, content type.
WEB_DIR = Path(__file__).resolve().parents[1] / "web"
STATIC_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
                "/index.html": ("index.html", "text/html; charset=utf-8"),
                "/panel.js": ("panel.js", "text/javascript; charset=utf-8"),
                "/panel.css": ("panel.css", "text/css; charset=utf-8")}


def json_safe(value):
    """``value`` with non-finite floats as None (JSON has no NaN; FlightState's battery is NaN when unknown)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def sse_event(name: str, data) -> bytes:
    """One Server-Sent Event: 'event: NAME' + one 'data:' line of JSON."""
    return f"event: {name}\ndata: {json.dumps(json_safe(data), separators=(',', ':'), allow_nan=False)}\n\n".encode()


def flight_summary(state) -> dict:
    """A FlightState-like as the panel shows it."""
    p, v = state.pose.position, state.velocity.linear
    return {"mode": state.mode, "armed": bool(state.armed), "x": p.x, "y": p.y, "altitude": p.z,
            "yaw_deg": yaw_deg_of(state.pose.orientation), "speed": math.sqrt(v.x ** 2 + v.y ** 2 + v.z ** 2),
            "battery": float(state.battery_percentage), "active_source": state.active_source,
            "operator_authorised": bool(state.operator_authorised), "last_rejection": state.last_rejection,
            "rejection_count": int(state.rejection_count)}


def auth_summary(auth) -> dict:
    return {"authorised": bool(auth.authorised), "operator": auth.operator_name, "operator_id": auth.operator_id,
            "confidence": float(auth.confidence), "reason": auth.reason}


def _number(value: float) -> str:
    return f"{value:g}"


def plan_action_text(action) -> str:
    """One PlanAction as the log shows it: "MOVE_BY x=2 y=0 z=0"; arguments left at their default are left out,
    except where the action shows them all (coordinates)."""
    try:
        kind = ActionType(int(action.type))
    except ValueError:
        return f"UNKNOWN({action.type})"
    spec, unset = ACTIONS[kind], PlanStep(kind)
    values = {name: getattr(action, name) for name in spec.shown}
    shown = [f"{ARGUMENTS[name].label}={_number(value) if isinstance(value, float) else value}"
             for name, value in values.items() if spec.shows_defaults or value != getattr(unset, name)]
    return kind.name + (" " + " ".join(shown) if shown else "")


def plan_text(plan) -> str:
    actions = ", ".join(plan_action_text(a) for a in plan.actions) or "no actions"
    return f"plan from {plan.source or '?'}: \"{plan.utterance}\" -> {actions}"


def validate_command(text) -> str:
    """The command text to submit, trimmed; ValueError saying why it cannot be submitted."""
    if not isinstance(text, str):
        raise ValueError("the command must be text")
    text = " ".join(text.split())
    if not text:
        raise ValueError("the command is empty")
    if len(text) > MAX_COMMAND_CHARS:
        raise ValueError(f"the command is longer than {MAX_COMMAND_CHARS} characters")
    return text


class PanelState:
    """What a newly opened page needs at once: the last flight and auth state and the recent log."""

    def __init__(self, log_length: int = 50):
        self.lock = threading.Lock()
        self.flight: dict | None = None
        self.auth: dict | None = None
        self.log: deque = deque(maxlen=max(1, log_length))

    def set_flight(self, summary: dict) -> None:
        with self.lock:
            self.flight = summary

    def set_auth(self, summary: dict) -> None:
        with self.lock:
            self.auth = summary

    def add_log(self, kind: str, text: str, t: float | None = None) -> dict:
        entry = {"t": time.time() if t is None else t, "kind": kind, "text": text}
        with self.lock:
            self.log.append(entry)
        return entry

    def snapshot(self) -> dict:
        with self.lock:
            return {"flight": self.flight, "auth": self.auth, "log": list(self.log)}


class EventFanout:
    """Delivers events to every connected page. Each page has a bounded queue: when it is full a droppable event
    (a camera frame) is not queued for that page, and a state event pushes out the oldest queued one, so a slow
    page sees fewer frames but never stale state, and never slows the others."""

    def __init__(self, max_queue: int = 16):
        self.max_queue = max_queue
        self.lock = threading.Lock()
        self.queues: list[queue.Queue] = []

    def subscribe(self, initial: Iterable[bytes] = ()) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize=self.max_queue)
        for event in initial:
            self._put(q, event, droppable=False)
        with self.lock:
            self.queues.append(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self.lock:
            if q in self.queues:
                self.queues.remove(q)

    @property
    def clients(self) -> int:
        with self.lock:
            return len(self.queues)

    def publish(self, event: bytes, droppable: bool = False) -> int:
        """Queue ``event`` for every page; returns how many pages it was dropped for."""
        with self.lock:
            targets = list(self.queues)
        return sum(not self._put(q, event, droppable) for q in targets)

    @staticmethod
    def _put(q: queue.Queue, event: bytes, droppable: bool) -> bool:
        while True:
            try:
                q.put_nowait(event)
                return True
            except queue.Full:
                if droppable:
                    return False
                try:
                    q.get_nowait()
                except queue.Empty:
                    pass
