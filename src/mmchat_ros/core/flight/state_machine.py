"""Flight modes and the transitions between them, as a table with guards.

    LANDED ──ARM──> ARMED ──TAKEOFF──> TAKING_OFF ──TAKEOFF_COMPLETE──> HOVER <──> VELOCITY / POSITION
      ^               │                    │                              │
      │            DISARM                 LAND                          LAND
      │               v                    v                              v
      └───────────── LANDED <──TOUCHDOWN── LANDING <──────────────────────┘

    any mode ──EMERGENCY──> EMERGENCY (motors cut) ──RESET, on the ground──> LANDED

Every refused request returns the reason. The machine itself is pure: the caller supplies the facts the guards
need (authorisation, odometry, battery, ground contact) in a ``GuardContext``.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable


class FlightMode(str, Enum):
    LANDED = "LANDED"            # on the ground, motors off
    ARMED = "ARMED"              # on the ground, motors armed, waiting to take off
    TAKING_OFF = "TAKING_OFF"
    HOVER = "HOVER"              # holding position, no motion command in force
    VELOCITY = "VELOCITY"        # tracking a velocity command
    POSITION = "POSITION"        # tracking a position command (operator or plan)
    LANDING = "LANDING"
    EMERGENCY = "EMERGENCY"      # motors cut

    def __str__(self) -> str:
        return self.value


class FlightEvent(str, Enum):
    ARM = "ARM"
    DISARM = "DISARM"
    TAKEOFF = "TAKEOFF"
    TAKEOFF_COMPLETE = "TAKEOFF_COMPLETE"
    HOVER = "HOVER"
    VELOCITY = "VELOCITY"
    POSITION = "POSITION"
    LAND = "LAND"
    TOUCHDOWN = "TOUCHDOWN"
    EMERGENCY = "EMERGENCY"
    RESET = "RESET"

    def __str__(self) -> str:
        return self.value


AIRBORNE_MODES = frozenset({FlightMode.TAKING_OFF, FlightMode.HOVER, FlightMode.VELOCITY, FlightMode.POSITION,
                            FlightMode.LANDING})
FLYING_MODES = frozenset({FlightMode.HOVER, FlightMode.VELOCITY, FlightMode.POSITION})   # accept motion commands
MOTORS_ON_MODES = frozenset({FlightMode.ARMED, *AIRBORNE_MODES})


@dataclass(frozen=True)
class GuardContext:
    """Facts the guards check; the flight core fills it from its latest inputs."""
    authorised: bool = False         # an operator is authorised (or authorisation is not required)
    odometry_ok: bool = False        # odometry is fresh and finite
    battery_ok: bool = True          # battery above the low threshold (or unknown)
    on_ground: bool = True           # at rest on the ground


@dataclass(frozen=True)
class Transition:
    accepted: bool
    mode: FlightMode                 # the mode after the request (unchanged when refused)
    previous: FlightMode
    reason: str = ""                 # why it was refused; empty when accepted

    def __bool__(self) -> bool:
        return self.accepted


Guard = Callable[[GuardContext], "str | None"]


def _needs_authorisation(ctx: GuardContext) -> str | None:
    return None if ctx.authorised else "no authorised operator"


def _needs_odometry(ctx: GuardContext) -> str | None:
    return None if ctx.odometry_ok else "no valid odometry"


def _needs_battery(ctx: GuardContext) -> str | None:
    return None if ctx.battery_ok else "battery low"


def _needs_ground(ctx: GuardContext) -> str | None:
    return None if ctx.on_ground else "vehicle is not confirmed at rest on the ground"


_M, _E = FlightMode, FlightEvent
_LAUNCH_GUARDS: tuple[Guard, ...] = (_needs_authorisation, _needs_odometry, _needs_battery)

# (mode, event) -> (next mode, guards). Anything absent is refused with an explanation.
TRANSITIONS: dict[tuple[FlightMode, FlightEvent], tuple[FlightMode, tuple[Guard, ...]]] = {
    (_M.LANDED, _E.ARM): (_M.ARMED, (*_LAUNCH_GUARDS, _needs_ground)),
    (_M.LANDED, _E.DISARM): (_M.LANDED, ()),
    (_M.LANDED, _E.LAND): (_M.LANDED, ()),
    (_M.ARMED, _E.DISARM): (_M.LANDED, ()),
    (_M.ARMED, _E.LAND): (_M.LANDED, ()),            # already down: landing means disarming
    (_M.ARMED, _E.TAKEOFF): (_M.TAKING_OFF, _LAUNCH_GUARDS),
    (_M.TAKING_OFF, _E.TAKEOFF_COMPLETE): (_M.HOVER, ()),
    (_M.TAKING_OFF, _E.HOVER): (_M.HOVER, ()),       # "stop" during the climb: hold where it is
    (_M.TAKING_OFF, _E.LAND): (_M.LANDING, ()),
    (_M.LANDING, _E.LAND): (_M.LANDING, ()),
    (_M.LANDING, _E.TOUCHDOWN): (_M.LANDED, ()),
    (_M.EMERGENCY, _E.EMERGENCY): (_M.EMERGENCY, ()),
    (_M.EMERGENCY, _E.LAND): (_M.EMERGENCY, ()),     # motors are already cut; landing asks for nothing more
    (_M.EMERGENCY, _E.RESET): (_M.LANDED, (_needs_ground,)),
}
for _flying in FLYING_MODES:
    TRANSITIONS[(_flying, _E.HOVER)] = (_M.HOVER, ())
    TRANSITIONS[(_flying, _E.VELOCITY)] = (_M.VELOCITY, (_needs_authorisation,))
    TRANSITIONS[(_flying, _E.POSITION)] = (_M.POSITION, (_needs_authorisation,))
    TRANSITIONS[(_flying, _E.LAND)] = (_M.LANDING, ())
for _mode in FlightMode:
    if _mode is not _M.EMERGENCY:
        TRANSITIONS[(_mode, _E.EMERGENCY)] = (_M.EMERGENCY, ())   # the emergency stop is never refused

# Why a request with no table entry is refused, when something better than "not allowed" can be said.
_REFUSALS: dict[tuple[FlightMode, FlightEvent], str] = {
    (_M.LANDED, _E.TAKEOFF): "not armed",
    (_M.TAKING_OFF, _E.VELOCITY): "taking off: motion commands wait until the climb is complete",
    (_M.TAKING_OFF, _E.POSITION): "taking off: motion commands wait until the climb is complete",
    (_M.LANDING, _E.VELOCITY): "landing in progress",
    (_M.LANDING, _E.POSITION): "landing in progress",
    (_M.LANDING, _E.HOVER): "landing in progress",
    (_M.LANDING, _E.TAKEOFF): "landing in progress: take off again once landed",
    (_M.EMERGENCY, _E.ARM): "emergency stop latched: reset it on the ground first",
    (_M.EMERGENCY, _E.TAKEOFF): "emergency stop latched: reset it on the ground first",
}
for _mode in AIRBORNE_MODES:
    _REFUSALS[(_mode, _E.DISARM)] = "refusing to disarm in the air: land, or use the emergency stop"
    _REFUSALS[(_mode, _E.ARM)] = "already armed"
    _REFUSALS.setdefault((_mode, _E.TAKEOFF), "already flying")
    _REFUSALS[(_mode, _E.RESET)] = "nothing to reset: no emergency stop latched"
for _mode in FLYING_MODES:
    _REFUSALS[(_mode, _E.TOUCHDOWN)] = "touchdown is only expected while landing"


class FlightStateMachine:
    """Holds the flight mode and applies events through the transition table."""

    def __init__(self, initial: FlightMode = FlightMode.LANDED):
        self._mode = FlightMode(initial)
        self.last_refusal = ""

    @property
    def mode(self) -> FlightMode:
        return self._mode

    @property
    def armed(self) -> bool:
        """Motors may spin: armed on the ground or in the air (not LANDED, not EMERGENCY)."""
        return self._mode in MOTORS_ON_MODES

    @property
    def airborne(self) -> bool:
        return self._mode in AIRBORNE_MODES

    @property
    def flying(self) -> bool:
        """In a mode that takes motion commands (HOVER, VELOCITY, POSITION)."""
        return self._mode in FLYING_MODES

    def check(self, event: FlightEvent, context: GuardContext) -> Transition:
        """What ``request`` would do, without doing it."""
        event = FlightEvent(event)
        entry = TRANSITIONS.get((self._mode, event))
        if entry is None:
            reason = _REFUSALS.get((self._mode, event), f"{event} is not allowed in {self._mode}")
            return Transition(False, self._mode, self._mode, f"{event} refused: {reason}")
        target, guards = entry
        for guard in guards:
            reason = guard(context)
            if reason:
                return Transition(False, self._mode, self._mode, f"{event} refused in {self._mode}: {reason}")
        return Transition(True, target, self._mode)

    def request(self, event: FlightEvent, context: GuardContext) -> Transition:
        """Apply an event; returns the transition, or the refusal with its reason."""
        result = self.check(event, context)
        if result.accepted:
            self._mode = result.mode
        else:
            self.last_refusal = result.reason
        return result
