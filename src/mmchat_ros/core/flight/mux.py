"""One command mux for every source that may move the vehicle.

Each source (operator UI, plan executor, gesture teleop, follow) keeps at most one live motion command. The
highest-priority source whose command has not timed out is in control; when every command has expired the
flight core hovers (the watchdog). Motion commands are accepted only while an operator is authorised; land and
emergency stop are always accepted, from any source, and flush every pending motion command.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Union

DEFAULT_SOURCES: tuple[str, ...] = ("operator", "plan", "teleop", "follow")      # highest priority first
DEFAULT_TIMEOUTS_S: dict[str, float] = {"operator": 1.0, "plan": 0.5, "teleop": 0.5, "follow": 0.5}
DEFAULT_TIMEOUT_S = 0.5


# ------------------------------------------------------------------------------------------------ commands
@dataclass(frozen=True)
class VelocityCommand:
    """World-frame velocity (m/s) and yaw rate (rad/s, positive = counter-clockwise seen from above)."""
    vx: float
    vy: float
    vz: float
    yaw_rate: float = 0.0


@dataclass(frozen=True)
class PositionCommand:
    """World-frame position (m) and heading (rad); v* (m/s), a* (m/s²) and yaw_rate (rad/s) are feed-forward of a
    moving reference (zero for a fixed target)."""
    x: float
    y: float
    z: float
    yaw: float
    vx: float = 0.0
    vy: float = 0.0
    vz: float = 0.0
    yaw_rate: float = 0.0
    ax: float = 0.0
    ay: float = 0.0
    az: float = 0.0


@dataclass(frozen=True)
class HoverCommand:
    """Stop and hold the current position."""


@dataclass(frozen=True)
class LandCommand:
    """Land where the vehicle is."""


@dataclass(frozen=True)
class EmergencyStopCommand:
    """Cut the motors now."""


MotionCommand = Union[VelocityCommand, PositionCommand, HoverCommand]
Command = Union[VelocityCommand, PositionCommand, HoverCommand, LandCommand, EmergencyStopCommand]
_MOTION_TYPES = (VelocityCommand, PositionCommand)          # need an authorised operator
_ALWAYS_ACCEPTED = (HoverCommand, LandCommand, EmergencyStopCommand)   # making the vehicle safer is never refused


@dataclass(frozen=True)
class Decision:
    """Outcome of a command: accepted, or refused with the reason."""
    accepted: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.accepted


ACCEPTED = Decision(True)


@dataclass(frozen=True)
class ActiveCommand:
    source: str
    command: MotionCommand
    stamp: float                 # `now` of its submission


# ----------------------------------------------------------------------------------------------------- mux
@dataclass(frozen=True)
class SourceConfig:
    priority: int                # larger wins
    timeout_s: float


class CommandMux:
    """Priority mux with per-source timeouts and authorisation gating. Every method takes ``now`` explicitly."""

    def __init__(self, priorities: Sequence[str] | Mapping[str, int] = DEFAULT_SOURCES,
                 timeouts_s: Mapping[str, float] | None = None, require_authorisation: bool = True,
                 default_timeout_s: float = DEFAULT_TIMEOUT_S):
        if isinstance(priorities, Mapping):
            ranks = {str(k): int(v) for k, v in priorities.items()}
        else:
            names = [str(p) for p in priorities]
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate source in priorities {names}")
            ranks = {name: len(names) - i for i, name in enumerate(names)}
        if not ranks:
            raise ValueError("the mux needs at least one source")
        if timeouts_s is None:
            timeouts = {name: t for name, t in DEFAULT_TIMEOUTS_S.items() if name in ranks}
        else:
            timeouts = dict(timeouts_s)
        unknown = set(timeouts) - set(ranks)
        if unknown:
            raise ValueError(f"timeouts given for unknown sources {sorted(unknown)}")
        self.sources: dict[str, SourceConfig] = {}
        for name, rank in ranks.items():
            timeout = float(timeouts.get(name, default_timeout_s))
            if not (math.isfinite(timeout) and timeout > 0.0):
                raise ValueError(f"source '{name}': timeout must be a positive number of seconds, got {timeout}")
            self.sources[name] = SourceConfig(rank, timeout)
        self.require_authorisation = bool(require_authorisation)
        self._authorised = False
        self._slots: dict[str, ActiveCommand] = {}
        self.rejections: Counter[str] = Counter()
        self.last_rejection = ""
        self.last_rejection_code = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None,
                    default_timeout_s: float | None = None) -> "CommandMux":
        """From ``{"sources": {name: {"priority": int, "timeout_s": float}}, "require_authorisation": bool}``.

        Without "sources": the default sources and priorities, each with ``default_timeout_s`` if given, else
        its default timeout. A source without "timeout_s" gets ``default_timeout_s`` (or 0.5 s).
        """
        config = dict(config or {})
        unknown = set(config) - {"sources", "require_authorisation"}
        if unknown:
            raise ValueError(f"unknown mux keys {sorted(unknown)}")
        fallback = DEFAULT_TIMEOUT_S if default_timeout_s is None else float(default_timeout_s)
        sources = config.get("sources")
        if sources:
            priorities: Sequence[str] | dict[str, int] = {name: int(spec["priority"]) for name, spec in sources.items()}
            timeouts = {name: float(spec.get("timeout_s", fallback)) for name, spec in sources.items()}
        else:
            priorities = DEFAULT_SOURCES
            timeouts = None if default_timeout_s is None else {name: fallback for name in DEFAULT_SOURCES}
        return cls(priorities, timeouts, bool(config.get("require_authorisation", True)), fallback)

    # -- authorisation -------------------------------------------------------------------------------------
    @property
    def authorised(self) -> bool:
        """Whether motion commands are accepted now."""
        return self._authorised or not self.require_authorisation

    @property
    def operator_authorised(self) -> bool:
        return self._authorised

    def set_authorised(self, authorised: bool) -> None:
        self._authorised = bool(authorised)
        if not self.authorised:
            # Losing the operator voids every pending motion command: the vehicle falls back to hover.
            self._slots = {s: c for s, c in self._slots.items() if isinstance(c.command, HoverCommand)}

    # -- commands ------------------------------------------------------------------------------------------
    def submit(self, source: str, command: Command, now: float) -> Decision:
        """Offer a command; motion commands go into the source's slot, land / e-stop flush every slot."""
        if isinstance(command, (LandCommand, EmergencyStopCommand)):
            self._slots.clear()
            return ACCEPTED
        if not isinstance(now, (int, float)) or not math.isfinite(now):
            return self._reject("bad_time", f"command from '{source}' rejected: time {now!r} is not finite")
        if source not in self.sources:
            return self._reject("unknown_source", f"command from unknown source '{source}' rejected; "
                                                  f"known: {', '.join(self.sources)}")
        if isinstance(command, HoverCommand):
            self._slots[source] = ActiveCommand(source, command, float(now))
            return ACCEPTED
        if not isinstance(command, _MOTION_TYPES):
            return self._reject("bad_command", f"command from '{source}' rejected: unsupported {command!r}")
        bad = _first_non_finite(command)
        if bad:
            return self._reject("non_finite", f"{type(command).__name__} from '{source}' rejected: {bad}")
        if not self.authorised:
            return self._reject("unauthorised", f"motion command from '{source}' rejected: no authorised operator")
        previous = self._slots.get(source)
        if previous is not None and now < previous.stamp:
            return self._reject("stale", f"command from '{source}' rejected: stamped {now:.3f} s, older than the "
                                         f"last one ({previous.stamp:.3f} s)")
        self._slots[source] = ActiveCommand(source, command, float(now))
        return ACCEPTED

    def active(self, now: float) -> ActiveCommand | None:
        """The highest-priority unexpired command, or None (nothing in force: hover)."""
        best: ActiveCommand | None = None
        for source, entry in list(self._slots.items()):
            age = now - entry.stamp
            # A command older than its timeout has expired; one far in the future means the clock was reset.
            if age > self.sources[source].timeout_s or age < -self.sources[source].timeout_s:
                del self._slots[source]
                continue
            if best is None or self.sources[source].priority > self.sources[best.source].priority:
                best = entry
        return best

    def clear(self, source: str | None = None) -> None:
        """Drop one source's command, or every command."""
        if source is None:
            self._slots.clear()
        else:
            self._slots.pop(source, None)

    def pending_sources(self) -> list[str]:
        return list(self._slots)

    @property
    def rejection_count(self) -> int:
        return sum(self.rejections.values())

    def _reject(self, code: str, reason: str) -> Decision:
        self.rejections[code] += 1
        self.last_rejection = reason
        self.last_rejection_code = code
        return Decision(False, reason)


def _first_non_finite(command: Any) -> str | None:
    for name, value in vars(command).items():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{name}={value!r} is not a finite number"
    return None
