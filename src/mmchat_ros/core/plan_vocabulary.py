"""What an action plan may contain, in one place: the actions (values as the constants of msg/PlanAction.msg), the
step that carries one (field for field as that message), the name each action has in an LLM's JSON plan, which
arguments it takes (their units, which are required, which are numbers), how a step is said in words and what
the operator panel shows of it.

The grammar and the LLM schema (``plan_schema``) build steps from this vocabulary, the flight core's executor
(``flight/plan.py``) runs them, the panel (``panel.py``) lists them and the planner node sends them as
PlanAction messages. Pure Python; nothing here imports ROS.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any, Callable


class ActionType(IntEnum):
    """Same values as the constants of msg/PlanAction.msg."""
    TAKEOFF = 0
    LAND = 1
    HOVER = 2
    MOVE_BY = 3
    GOTO = 4
    ROTATE = 5
    FOLLOW = 6
    RETURN_HOME = 7
    STOP = 8


@dataclass
class PlanStep:
    """One action, field for field as msg/PlanAction.msg."""
    type: int
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    yaw_deg: float = 0.0
    duration_s: float = 0.0
    speed: float = 0.0                   # m/s cap for this step; 0 = default
    target_track_id: int = -1
    target_class: str = ""

    @classmethod
    def from_msg(cls, msg: Any) -> "PlanStep":
        """From a PlanAction message (or anything with the same attributes)."""
        return cls(int(msg.type), float(msg.x), float(msg.y), float(msg.z), float(msg.yaw_deg),
                   float(msg.duration_s), float(msg.speed), int(msg.target_track_id), str(msg.target_class))

    def message_fields(self) -> dict[str, Any]:
        """The PlanAction message's fields: ``PlanAction(**step.message_fields())``."""
        return {**asdict(self), "type": int(self.type)}

    @property
    def type_name(self) -> str:
        try:
            return ActionType(self.type).name
        except ValueError:
            return f"UNKNOWN({self.type})"


@dataclass(frozen=True)
class Argument:
    """One argument a step can carry: a PlanStep field."""
    json_type: str      # in an LLM's JSON plan: "number", "integer" or "string"
    unit: str           # spoken, singular ("meter"); "" for none
    label: str          # its name on the operator panel


ARGUMENTS = {
    "x": Argument("number", "meter", "x"),
    "y": Argument("number", "meter", "y"),
    "z": Argument("number", "meter", "z"),
    "yaw_deg": Argument("number", "degree", "deg"),
    "duration_s": Argument("number", "second", "s"),
    "speed": Argument("number", "meter per second", "speed"),
    "target_track_id": Argument("integer", "", "track"),
    "target_class": Argument("string", "", "class"),
}
NUMBER_ARGUMENTS = frozenset(name for name, argument in ARGUMENTS.items() if argument.json_type == "number")


# ---------------------------------------------------------------------------------------------- in words
def _quantity(value: float, argument: str) -> str:
    """"1 meter", "2 meters", "1.5 meters" for speaking."""
    return f"{value:g} {ARGUMENTS[argument].unit}" + ("" if value == 1 else "s")


def _takeoff_words(step: PlanStep) -> str:
    return f"taking off to {_quantity(step.z, 'z')}" if step.z else "taking off"


def _hover_words(step: PlanStep) -> str:
    return f"hovering for {_quantity(step.duration_s, 'duration_s')}" if step.duration_s else "hovering"


def _move_by_words(step: PlanStep) -> str:
    moves = [f"{positive if value > 0 else negative} {_quantity(abs(value), axis)}"
             for axis, value, positive, negative in (("x", step.x, "forward", "back"), ("y", step.y, "left", "right"),
                                                     ("z", step.z, "up", "down")) if value]
    return "flying " + " and ".join(moves)


def _goto_words(step: PlanStep) -> str:
    height = f", {step.z:g}" if math.isfinite(step.z) else ""      # NaN: the grammar's "at the current height"
    return f"flying to {step.x:g}, {step.y:g}{height}"


def _rotate_words(step: PlanStep) -> str:
    return f"turning {'left' if step.yaw_deg > 0 else 'right'} {_quantity(abs(step.yaw_deg), 'yaw_deg')}"


def _follow_words(step: PlanStep) -> str:
    return f"following {f'track {step.target_track_id}' if step.target_track_id >= 0 else f'the {step.target_class}'}"


# ---------------------------------------------------------------------------------------------- the actions
@dataclass(frozen=True)
class Action:
    type: ActionType
    name: str                            # in an LLM's JSON plan
    arguments: tuple[str, ...]           # the step fields it takes; any other is an error
    required: tuple[str, ...]            # the arguments an LLM's plan must give
    words: Callable[[PlanStep], str]     # one step, spoken: "flying forward 2 meters"
    shown: tuple[str, ...]               # the arguments the panel shows...
    shows_defaults: bool = False         # ...even at their default (coordinates, where 0 means something)


ACTIONS = {action.type: action for action in (
    Action(ActionType.TAKEOFF, "takeoff", ("z",), (), _takeoff_words, shown=("z",)),
    Action(ActionType.LAND, "land", (), (), lambda step: "landing", shown=()),
    Action(ActionType.HOVER, "hover", ("duration_s",), (), _hover_words, shown=("duration_s",)),
    Action(ActionType.MOVE_BY, "move_by", ("x", "y", "z", "speed"), (), _move_by_words, shown=("x", "y", "z"),
           shows_defaults=True),
    Action(ActionType.GOTO, "goto", ("x", "y", "z", "speed"), ("x", "y", "z"), _goto_words, shown=("x", "y", "z"),
           shows_defaults=True),
    Action(ActionType.ROTATE, "rotate", ("yaw_deg",), ("yaw_deg",), _rotate_words, shown=("yaw_deg",)),
    Action(ActionType.FOLLOW, "follow", ("target_class", "target_track_id"), ("target_class",), _follow_words,
           shown=("target_track_id", "target_class")),
    Action(ActionType.RETURN_HOME, "return_home", ("speed",), (), lambda step: "coming back home", shown=()),
    Action(ActionType.STOP, "stop", (), (), lambda step: "stopping", shown=()),
)}
ACTIONS_BY_NAME = {action.name: action for action in ACTIONS.values()}


def describe(steps: list[PlanStep]) -> str:
    """A short spoken description of a plan: "taking off, then flying forward 2 meters, then landing"."""
    text = ", then ".join(ACTIONS[ActionType(step.type)].words(step) for step in steps)
    return text[:1].upper() + text[1:] if text else ""
