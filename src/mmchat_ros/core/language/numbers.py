"""Numbers as people say and recognisers write them: digits or words ("twenty two", "three sixty", "a hundred and
twenty"), fractions ("a half", "a metre and a half"), signs, counts ("three times"), and the units that follow them
(lengths, angles, durations, speeds) converted to metres, degrees, seconds and metres per second.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

UNITS_TO_METRES = {
    "m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0, "mtr": 1.0, "mtrs": 1.0,
    "cm": 0.01, "centimeter": 0.01, "centimeters": 0.01, "centimetre": 0.01, "centimetres": 0.01,
    "ft": 0.3048, "foot": 0.3048, "feet": 0.3048, "inch": 0.0254, "inches": 0.0254,
    "yard": 0.9144, "yards": 0.9144, "km": 1000.0, "kilometer": 1000.0, "kilometers": 1000.0, "kilometre": 1000.0,
    "kilometres": 1000.0, "mile": 1609.344, "miles": 1609.344,
}
SPEED_TIME_UNITS = {"second": 1.0, "sec": 1.0, "s": 1.0, "hour": 3600.0, "hr": 3600.0, "h": 3600.0,
                    "minute": 60.0, "min": 60.0}
DEGREE_UNITS = {"degree", "degrees", "deg", "degs"}
SECOND_UNITS = {"second": 1.0, "seconds": 1.0, "sec": 1.0, "secs": 1.0, "s": 1.0, "minute": 60.0, "minutes": 60.0}
SMALL_NUMBERS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
        "ninety": 90}
# English words a recogniser writes for a number word; read as the number only right before a unit.
NUMBER_HOMOPHONES = {"to": "two", "too": "two", "for": "four", "fore": "four", "won": "one", "tree": "three",
                     "ate": "eight", "free": "three", "tin": "ten", "sicks": "six", "fife": "five"}


def is_number_word(token: str) -> bool:
    """Digits ("12", "2.5") or one number word below a hundred ("seven", "forty")."""
    return token in SMALL_NUMBERS or token in TENS or bool(re.fullmatch(r"\d+(\.\d+)?", token))


AMOUNT_QUALIFIERS = ("more", "extra", "further", "additional", "full", "whole")


@dataclass
class Quantity:
    value: float
    kind: str           # "length" (m) | "angle" (deg) | "time" (s) | "speed" (m/s) | "count" | "number"
    start: int
    end: int


class NumberReader:
    """Number reading over a token list (digits or words, fractions, "and a half", units)."""

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.pos = 0

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.tokens[index] if 0 <= index < len(self.tokens) else ""

    def number(self) -> float | None:
        start = self.pos
        token = self.peek()
        if token in ("minus", "negative"):
            self.pos += 1
            value = self.number()
            if value is None:
                self.pos = start
                return None
            return -value
        if re.fullmatch(r"\d+(\.\d+)?|\.\d+", token):
            self.pos += 1
            value = float(token)
            # "100 20 degrees", "100 and 80 degrees": a recogniser's digits for "a hundred and twenty / eighty"
            link = 1 if self.peek() == "and" else 0
            if re.fullmatch(r"[1-9]00", token) and re.fullmatch(r"[1-9]\d?", self.peek(link)):
                value += float(self.peek(link))
                self.pos += link + 1
            if self.peek() == "and" and self.peek(1) in ("a", "one") and self.peek(2) == "half":
                self.pos += 3
                value += 0.5
            elif self.peek() == "point" and re.fullmatch(r"\d+", self.peek(1)):
                value = float(f"{token}.{self.peek(1)}")
                self.pos += 2
            return value
        value = self._word_number()
        if value is None:
            self.pos = start
        return value

    def _word_number(self) -> float | None:
        total = 0.0
        current = 0.0
        seen = False
        if self.peek() in ("a", "an", "one") and self.peek(1) in ("half", "quarter", "third"):
            fraction = {"half": 0.5, "quarter": 0.25, "third": 1 / 3}[self.peek(1)]
            self.pos += 2
            self._skip_of_a()
            return fraction
        if self.peek() in ("a", "an") and self.peek(1) in ("hundred", "thousand", "couple", "dozen"):
            self.pos += 1
            if self.peek() == "couple":
                self.pos += 1
                if self.peek() == "of":
                    self.pos += 1
                return 2.0
            if self.peek() == "dozen":
                self.pos += 1
                return 12.0
            current = 1.0
            seen = True
        if self.peek() == "half" and not seen:
            self.pos += 1
            self._skip_of_a()
            return 0.5
        if self.peek() in ("a", "an", "one", "another") and self.peek(1) in UNITS_TO_METRES | {k: 0 for k in DEGREE_UNITS}:
            self.pos += 1                               # "a metre", "a foot"
            return 1.0
        while True:
            token = self.peek()
            if token in SMALL_NUMBERS:
                if seen and (current % 100) and (current % 100 < 20 or current % 10):
                    break                           # "two two" is two numbers, "twenty two" one
                current += SMALL_NUMBERS[token]
            elif token in TENS:
                if seen and 0 < current < 10:
                    current *= 100                  # "three sixty", "one eighty": how people say 360, 180
                elif seen and current % 100:
                    break
                current += TENS[token]
            elif token == "hundred" and seen:
                current = max(current, 1.0) * 100
            elif token == "thousand" and seen:
                total += max(current, 1.0) * 1000
                current = 0.0
            elif token == "and" and seen and (self.peek(1) in SMALL_NUMBERS or self.peek(1) in TENS) \
                    and current >= 100:
                pass                                           # "a hundred and twenty"
            elif token == "and" and seen and self.peek(1) in ("a", "one") and self.peek(2) == "half":
                self.pos += 3
                return total + current + 0.5
            elif token == "point" and seen:
                self.pos += 1
                digits = ""
                while self.peek() in SMALL_NUMBERS and SMALL_NUMBERS[self.peek()] < 10:
                    digits += str(SMALL_NUMBERS[self.peek()])
                    self.pos += 1
                if not digits:
                    self.pos -= 1
                    break
                return total + current + float("0." + digits)
            else:
                break
            seen = True
            self.pos += 1
        return total + current if seen else None

    def _skip_of_a(self) -> None:
        if self.peek() == "of":
            self.pos += 1
        if self.peek() in ("a", "an"):
            self.pos += 1

    def quantities(self) -> list[Quantity]:
        """Every number in the tokens with the unit that follows it (a metre and a half = 1.5 m)."""
        found: list[Quantity] = []
        self.pos = 0
        while self.pos < len(self.tokens):
            start = self.pos
            value = self.number()
            if value is None:
                # "a metre" / "a foot" / "a degree" without a number word
                self.pos = start + 1
                continue
            # "two more metres", "one extra meter", "a full metre": a word that qualifies the amount may stand
            # between the number and its unit
            if self.peek() in AMOUNT_QUALIFIERS and (self.peek(1) in UNITS_TO_METRES or self.peek(1) in DEGREE_UNITS
                                                     or self.peek(1) in SECOND_UNITS):
                self.pos += 1
            unit = self.peek()
            kind, scale = "number", 1.0
            if unit in UNITS_TO_METRES:
                kind, scale = "length", UNITS_TO_METRES[unit]
                self.pos += 1
                # "a metre and a half", "two meters and a half"
                if self.peek() == "and" and self.peek(1) in ("a", "one") and self.peek(2) == "half":
                    value += 0.5
                    self.pos += 3
            elif unit in DEGREE_UNITS:
                kind = "angle"
                self.pos += 1
            elif unit in ("times", "time", "x") and value == int(value) and value > 0:
                kind = "count"
                self.pos += 1
            elif unit in SECOND_UNITS:
                kind, scale = "time", SECOND_UNITS[unit]
                self.pos += 1
            if kind == "length" and self.peek() in ("per", "a", "an", "each", "every") \
                    and self.peek(1) in SPEED_TIME_UNITS:
                kind, scale = "speed", scale / SPEED_TIME_UNITS[self.peek(1)]
                self.pos += 2
            elif unit in ("mps", "ms"):
                kind = "speed"
                self.pos += 1
            found.append(Quantity(value * scale, kind, start, self.pos))
        return found
