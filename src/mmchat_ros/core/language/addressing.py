"""Which vehicle an utterance is for: "drone two, take off", "drone 2 land", "drone1: go up one metre",
"land, drone two".

The vehicles are a configured list of names (ROS namespaces: "drone1", "alpha"). A name that ends in a number is
addressed by its stem and that number as digits or a word ("drone2", "drone 2", "drone-2", "drone two", "drone
number two"); any other name by itself. The address leads the utterance or trails it, set off by a comma, colon or
nothing. An utterance that names no vehicle goes to the selected one: the one addressed last, at first the first of
the list. An address of the configured form that names no configured vehicle ("drone three" with drone1 and drone2)
is refused with the names there are, never sent to the selected vehicle.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mmchat_ros.core.language.numbers import SMALL_NUMBERS

_NUMBERED_NAME = re.compile(r"([a-z]+)[_-]?(\d+)")
_NUMBER_WORDS = "|".join(sorted(SMALL_NUMBERS, key=len, reverse=True))
_SEPARATOR = r"[\s,:;.!?-]*"
_GREETING = r"(?:(?:hey|ok|okay|hello)\b[\s,]*)?"


@dataclass(frozen=True)
class Route:
    """Where an utterance goes: ``vehicle`` flies ``command``; or, when ``refusal`` is set, nothing is flown and
    that is the reply."""
    vehicle: str
    command: str
    refusal: str = ""


class VehicleAddressing:
    """Splits a vehicle's address off utterances and keeps the selected vehicle."""

    def __init__(self, vehicles: Sequence[str]):
        if len(set(vehicles)) != len(vehicles):
            raise ValueError(f"vehicle names repeat: {list(vehicles)}")
        self.vehicles = list(vehicles)
        self.selected = self.vehicles[0] if self.vehicles else ""
        self._numbered: dict[tuple[str, int], str] = {}
        plain: list[str] = []
        for name in self.vehicles:
            match = _NUMBERED_NAME.fullmatch(name.lower())
            if match:
                self._numbered[(match.group(1), int(match.group(2)))] = name
            else:
                plain.append(name.lower())
        stems = sorted({stem for stem, _ in self._numbered}, key=len, reverse=True)
        forms = []
        if stems:
            forms.append(rf"(?P<stem>{'|'.join(map(re.escape, stems))})[\s_-]*(?:number\s+|no\.?\s*)?"
                         rf"(?P<number>\d+|{_NUMBER_WORDS})")
        if plain:
            forms.append(rf"(?P<plain>{'|'.join(map(re.escape, sorted(plain, key=len, reverse=True)))})")
        address = "|".join(forms)
        self._leading = re.compile(rf"^\s*{_GREETING}(?:{address})\b{_SEPARATOR}(?P<rest>.*)$",
                                   re.IGNORECASE | re.DOTALL) if forms else None
        self._trailing = re.compile(rf"^(?P<rest>.*?)[\s,;:]+(?:{address})\s*[.!?]*\s*$",
                                    re.IGNORECASE | re.DOTALL) if forms else None

    def route(self, text: str) -> Route:
        """The vehicle ``text`` is for and the command without its address (an address alone selects the
        vehicle and leaves the command empty)."""
        return self.addressed(text) or Route(self.selected, text.strip())

    def addressed(self, text: str) -> Route | None:
        """``route`` for a ``text`` that names a vehicle; None for one that names none."""
        for pattern in (self._leading, self._trailing):
            match = pattern.match(text) if pattern else None
            if match:
                return self._addressed(match, match.group("rest").strip())
        return None

    def _addressed(self, match: re.Match, command: str) -> Route:
        plain = match.groupdict().get("plain")
        if plain:
            name = next(v for v in self.vehicles if v.lower() == plain.lower())
        else:
            stem, number = match.group("stem").lower(), match.group("number").lower()
            number = int(number) if number.isdigit() else SMALL_NUMBERS[number]
            name = self._numbered.get((stem, number))
            if name is None:
                return Route("", command, unknown_vehicle_reply(f"{stem}{number}", self.vehicles))
        self.selected = name
        return Route(name, command)


def unknown_vehicle_reply(name: str, vehicles: Sequence[str]) -> str:
    known = ", ".join(vehicles[:-1]) + f" and {vehicles[-1]}" if len(vehicles) > 1 else vehicles[0]
    return f"There is no {name} here, so nothing will move. I fly {known}."
