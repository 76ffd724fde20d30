"""Which node parameters may change while the node runs, and whether a new value is acceptable. Pure Python.

A node reads most parameters once, at start-up; setting one of those later would report success and change
nothing, so such a set is refused with the reason. A *live* parameter is checked (finite, inside its range, the
parameter's own check) before the node applies it; a refused value leaves everything as it was.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

READ_AT_START_UP = "{name} is read at start-up only: restart the node with the new value"


@dataclass(frozen=True)
class LiveRule:
    """How a parameter may change at run time. ``value_range``: inclusive bounds of a number, or of every number
    of an array; ``check``: the parameter's own test, returning why a value is refused (None = fine)."""
    live: bool = False
    value_range: tuple[float, float] | None = None
    check: Callable[[Any], str | None] | None = None

    def constraints(self) -> str:
        """One line for the parameter descriptor (``ros2 param describe`` shows it)."""
        bounds = f"; range {_show(self.value_range[0])}..{_show(self.value_range[1])}" if self.value_range else ""
        return ("live: may be set while the node runs" if self.live else "read at start-up only") + bounds


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _numbers(value: Any) -> list[float]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    return [v for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]


def range_problem(name: str, value: Any, value_range: tuple[float, float] | None) -> str | None:
    """Why ``value`` (a number or an array of numbers) is outside ``value_range`` or not finite; None if fine."""
    for number in _numbers(value):
        if not math.isfinite(number):
            return f"{name}={_show(value)}: {_show(number)} is not a finite number"
        if value_range is not None and not value_range[0] <= number <= value_range[1]:
            return (f"{name}={_show(value)} is outside its range "
                    f"{_show(value_range[0])}..{_show(value_range[1])}")
    return None


def change_problem(name: str, value: Any, rule: LiveRule) -> str | None:
    """Why setting ``name`` to ``value`` at run time is refused; None when it may be applied."""
    if not rule.live:
        return READ_AT_START_UP.format(name=name)
    return range_problem(name, value, rule.value_range) or (rule.check(value) if rule.check else None)


def changes_problem(changes: Mapping[str, Any], rules: Mapping[str, LiveRule]) -> str | None:
    """The first refusal among several changes made together (all or none apply); names without a rule are
    someone else's (rclpy's own parameters) and pass."""
    for name, value in changes.items():
        if name in rules:
            problem = change_problem(name, value, rules[name])
            if problem:
                return problem
    return None


def three_numbers(name: str) -> Callable[[Any], str | None]:
    """A check for an x, y, z array parameter."""
    def check(value: Any) -> str | None:
        if not isinstance(value, (list, tuple)) or len(value) != 3 or len(_numbers(value)) != 3:
            return f"{name} must be three numbers x, y, z, got {_show(value)}"
        return None
    return check
