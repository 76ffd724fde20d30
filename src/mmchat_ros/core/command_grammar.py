"""The deterministic command grammar: the common spoken vocabulary → plan steps, without an LLM.

Covers take off / land / hover / stop, move forward|back|left|right|up|down by a distance, turn left|right by an
angle, go to x y z, follow the person (left / right / nearest / a track id), come back home; numbers in digits or
words ("two", "one and a half", "two point five", "a hundred and twenty"), units (m, cm, feet, degrees), and
sequences joined by "then", "and", "after that" or commas. What it cannot parse goes to the LLM stage; what it can
parse but is ambiguous ("fly forward" with no distance) becomes a clarifying question, never motion.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from mmchat_ros.core.flight.plan import ActionType, PlanStep

UNITS_TO_METRES = {
    "m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0,
    "cm": 0.01, "centimeter": 0.01, "centimeters": 0.01, "centimetre": 0.01, "centimetres": 0.01,
    "ft": 0.3048, "foot": 0.3048, "feet": 0.3048,
}
DEGREE_UNITS = {"degree", "degrees", "deg", "degs", "°"}
SMALL_NUMBERS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
        "ninety": 90}
# Recognisers mishear a few number words as other words: "to"/"too" for two is not included on purpose (it is
# also the preposition), but "for" is only ever read as four after a movement verb and direction.
CONNECTORS = {"then", "and", "after", "that", "next", "finally", "also", "afterwards", "please", "now"}
FILLERS = {"please", "the", "drone", "robot", "okay", "ok", "hey", "now", "quickly", "slowly", "just", "can", "you",
           "could", "would", "kindly", "a", "bit", "little", "by", "of", "about", "around", "approximately", "go",
           "to", "then", "and"}

MOVE_VERBS = {"move", "fly", "go", "head", "travel", "drive", "step", "slide", "strafe", "come"}
DIRECTIONS = {
    "forward": (1, 0, 0), "forwards": (1, 0, 0), "ahead": (1, 0, 0), "straight": (1, 0, 0),
    "back": (-1, 0, 0), "backward": (-1, 0, 0), "backwards": (-1, 0, 0), "backwards.": (-1, 0, 0),
    "left": (0, 1, 0), "right": (0, -1, 0), "up": (0, 0, 1), "upward": (0, 0, 1), "upwards": (0, 0, 1),
    "down": (0, 0, -1), "downward": (0, 0, -1), "downwards": (0, 0, -1),
}
CLIMB_VERBS = {"climb": 1, "ascend": 1, "rise": 1, "raise": 1, "higher": 1, "descend": -1, "drop": -1, "lower": -1,
               "sink": -1}
TURN_VERBS = {"turn", "rotate", "yaw", "spin", "face"}
SAFETY_PATTERNS = [
    r"\bignore (all |your |the )?(rules|instructions|limits|safety)", r"\b(disable|turn off|switch off|remove|bypass|"
    r"override|deactivate|raise|increase|lift|change|extend|expand)\b.*\b(geofence|fence|safety|limit|limits|"
    r"ceiling|altitude limit|speed limit|envelope|authori[sz]ation|auth)\b", r"\bauthori[sz]e (me|him|her|them|"
    r"everyone|anyone)\b", r"\b(grant|give) (me )?(access|control|authori[sz]ation)\b", r"\bno (limits|rules)\b",
    r"\bjailbreak\b", r"\bdeveloper mode\b",
]


@dataclass
class FollowTarget:
    """Who to follow, resolved against the tracker's detections by the planner."""
    target_class: str = "person"
    selector: str = "largest"        # largest | left | right | track
    track_id: int = -1


@dataclass
class ParseResult:
    steps: list[PlanStep] = field(default_factory=list)
    follow: dict[int, FollowTarget] = field(default_factory=dict)   # step index → target to resolve
    goto_keep_altitude: set[int] = field(default_factory=set)       # GOTO steps given without z
    clarification: str = ""           # a question to ask instead of moving
    refusal: str = ""                 # why the command is refused outright
    unparsed: str = ""                # text the grammar could not read (for the LLM stage)

    @property
    def complete(self) -> bool:
        return bool(self.steps) and not (self.clarification or self.refusal or self.unparsed)


class _Ambiguous(Exception):
    """The command is understood but needs a detail the speaker did not give."""


def normalise(text: str) -> list[str]:
    text = text.lower().replace("°", " degrees ").replace("-", " ")
    text = re.sub(r"(\d)(m|cm|ft)\b", r"\1 \2", text)        # "2m" → "2 m"
    text = re.sub(r"[^a-z0-9.,;]+", " ", text)
    text = re.sub(r"(?<!\d)[.](?!\d)", " . ", text)             # sentence dots, not decimal points
    text = text.replace(",", " , ").replace(";", " ; ")
    return text.split()


def refusal_for(text: str) -> str:
    """A reason to refuse when the command asks to change safety limits or authorisation (or to drop rules)."""
    lowered = text.lower()
    for pattern in SAFETY_PATTERNS:
        if re.search(pattern, lowered):
            return ("I can't change safety limits, the geofence or who is authorised, and I don't ignore my rules; "
                    "that has to be done by an engineer in the configuration")
    return ""


class _Parser:
    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.pos = 0

    # ------------------------------------------------------------------------------------------- token access
    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else ""

    def take(self) -> str:
        token = self.peek()
        self.pos += 1
        return token

    def accept(self, *words: str) -> bool:
        if self.peek() in words:
            self.pos += 1
            return True
        return False

    def skip(self, words: set[str]) -> None:
        while self.peek() in words:
            self.pos += 1

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    # ------------------------------------------------------------------------------------------------ numbers
    def number(self) -> float | None:
        """Digits ("2", "2.5", "-1") or number words; consumes nothing when there is no number. A comma right
        before the number is skipped: speech recognition writes a pause as one ("turn right, ninety degrees")."""
        if self.peek() == "," and self.peek(1) != ",":
            self.pos += 1
            value = self.number()
            if value is None:
                self.pos -= 1
            return value
        start = self.pos
        token = self.peek()
        if token == "minus" or token == "negative":
            self.pos += 1
            value = self.number()
            if value is None:
                self.pos = start
                return None
            return -value
        if re.fullmatch(r"-?\d+(\.\d+)?", token):
            self.pos += 1
            value = float(token)
            if self.peek() == "and" and self.peek(1) == "a" and self.peek(2) == "half":
                self.pos += 3
                value += 0.5
            return value
        value = self._word_number()
        if value is None:
            self.pos = start
        return value

    def _word_number(self) -> float | None:
        total = 0.0
        current = 0.0
        seen = False
        if self.peek() in ("a", "an") and self.peek(1) in ("hundred", "thousand", "half", "quarter"):
            self.pos += 1
            if self.peek() == "half":
                self.pos += 1
                return 0.5
            if self.peek() == "quarter":
                self.pos += 1
                return 0.25
            current = 1.0
            seen = True
        if self.peek() == "half" and not seen:
            self.pos += 1
            self.accept("a", "an")     # "half a meter"
            return 0.5
        while True:
            token = self.peek()
            if token in SMALL_NUMBERS:
                current += SMALL_NUMBERS[token]
            elif token in TENS:
                current += TENS[token]
            elif token == "hundred" and seen:
                current = max(current, 1.0) * 100
            elif token == "thousand" and seen:
                total += max(current, 1.0) * 1000
                current = 0.0
            elif token == "and" and seen and (self.peek(1) in SMALL_NUMBERS or self.peek(1) in TENS):
                pass                                           # "a hundred and twenty"
            elif token == "and" and seen and self.peek(1) == "a" and self.peek(2) == "half":
                self.pos += 3
                return total + current + 0.5
            elif token == "point" and seen:
                self.pos += 1
                digits = ""
                while self.peek() in SMALL_NUMBERS and SMALL_NUMBERS[self.peek()] < 10:
                    digits += str(SMALL_NUMBERS[self.take()])
                if not digits:
                    self.pos -= 1
                    break
                return total + current + float("0." + digits)
            else:
                break
            seen = True
            self.pos += 1
        return total + current if seen else None

    def distance(self) -> float | None:
        """A number with an optional length unit, in metres."""
        value = self.number()
        if value is None:
            return None
        unit = self.peek()
        if unit in UNITS_TO_METRES:
            self.pos += 1
            return value * UNITS_TO_METRES[unit]
        return value

    def angle(self) -> float | None:
        value = self.number()
        if value is None:
            return None
        self.accept(*DEGREE_UNITS)
        return value

    # ----------------------------------------------------------------------------------------------- commands
    def command(self, result: ParseResult) -> bool:
        """Parse one command at the current position into result; False when nothing here is a known command."""
        self.skip(FILLERS - {"go", "to", "and", "then", "a"})
        token = self.peek()
        nxt = self.peek(1)
        start = self.pos

        if (token == "take" and nxt == "off") or token in ("takeoff", "launch") or (token == "lift" and nxt == "off"):
            self.pos += 2 if token in ("take", "lift") else 1
            height = 0.0
            if self.accept("to", "at"):
                height = self.distance() or 0.0
                if height <= 0:
                    raise _Ambiguous("To what height should I take off?")
            result.steps.append(PlanStep(ActionType.TAKEOFF, z=height))
            return True
        if token == "land" or (token == "touch" and nxt == "down"):
            self.pos += 1 if token == "land" else 2
            self.accept("now", "here", "immediately")
            result.steps.append(PlanStep(ActionType.LAND))
            return True
        if token in ("stop", "halt", "freeze", "brake") or (token == "stay" and nxt in ("there", "put")):
            self.pos += 1
            self.skip({"there", "put", "moving", "now", "right", "here"})
            result.steps.append(PlanStep(ActionType.STOP))
            return True
        if token in ("hover", "hold", "wait", "stay", "pause"):
            self.pos += 1
            self.skip({"position", "here", "there", "still", "for"})
            seconds = self.number()
            if seconds is not None:
                self.accept("second", "seconds", "sec", "secs", "s")
            result.steps.append(PlanStep(ActionType.HOVER, duration_s=seconds or 0.0))
            return True
        if self._home(result):
            return True
        if self._follow(result):
            return True
        if self._goto(result):
            return True
        if token in TURN_VERBS:
            self.pos += 1
            return self._turn(result)
        if token in CLIMB_VERBS:
            self.pos += 1
            sign = CLIMB_VERBS[token]
            self.skip({"by", "up", "down", "another", "to"})
            metres = self.distance()
            if metres is None:
                raise _Ambiguous(f"How far should I {'climb' if sign > 0 else 'descend'}?")
            result.steps.append(PlanStep(ActionType.MOVE_BY, z=sign * metres))
            return True
        if token in MOVE_VERBS or token in DIRECTIONS:
            if token in MOVE_VERBS:
                self.pos += 1
            self.skip({"to", "the", "towards", "toward"})
            direction = self.peek()
            if direction not in DIRECTIONS:
                self.pos = start
                return False
            self.pos += 1
            self.skip({"by", "for", "about", "around", "another"})
            metres = self.distance()
            if metres is None and self.peek() in ("for", "four"):     # "fly forward for two meters"
                self.pos += 1
                metres = self.distance()
            if metres is None:
                raise _Ambiguous(f"How far should I go {direction}?")
            ux, uy, uz = DIRECTIONS[direction]
            result.steps.append(PlanStep(ActionType.MOVE_BY, x=ux * metres, y=uy * metres, z=uz * metres))
            return True
        self.pos = start
        return False

    def _turn(self, result: ParseResult) -> bool:
        self.skip({"to", "the", "by", "towards", "toward"})
        if self.accept("around"):
            result.steps.append(PlanStep(ActionType.ROTATE, yaw_deg=180.0))
            return True
        side = self.peek()
        angle = None
        if side not in ("left", "right", "clockwise", "counterclockwise", "anticlockwise"):
            angle = self.angle()            # "turn 90 degrees left"
            side = self.peek()
        if side not in ("left", "right", "clockwise", "counterclockwise", "anticlockwise"):
            raise _Ambiguous("Which way should I turn, left or right?")
        self.pos += 1
        if angle is None:
            self.skip({"by", "for", "about", "around"})
            angle = self.angle()
        if angle is None:
            angle = 90.0                    # "turn left" means a quarter turn
        sign = 1.0 if side in ("left", "counterclockwise", "anticlockwise") else -1.0
        result.steps.append(PlanStep(ActionType.ROTATE, yaw_deg=sign * angle))
        return True

    def _home(self, result: ParseResult) -> bool:
        start = self.pos
        words = []
        while len(words) < 5 and not self.at_end():
            words.append(self.take())
            phrase = " ".join(words)
            if phrase in ("come back", "come back home", "return home", "return to home", "go home", "go back home",
                          "return to launch", "fly home", "head home", "return to base", "come home",
                          "return to start", "rtl", "rth", "return"):
                # Greedy: take "home" / "to launch" if they follow.
                if phrase in ("come back", "return") and self.peek() in ("home", "to"):
                    continue
                if phrase == "return to" and self.peek() in ("home", "launch", "base", "start"):
                    continue
                if phrase == "return" and not (self.at_end() or self.peek() in CONNECTORS | {",", "."}):
                    break
                result.steps.append(PlanStep(ActionType.RETURN_HOME))
                return True
        self.pos = start
        return False

    def _follow(self, result: ParseResult) -> bool:
        if self.peek() not in ("follow", "track", "chase"):
            return False
        self.pos += 1
        target = FollowTarget()
        self.skip({"the", "that", "this"})
        if self.accept("me", "us"):
            target.selector = "largest"        # the operator: the largest person in view
        else:
            if self.peek() in ("person", "man", "woman", "guy", "people", "pedestrian", "human"):
                self.pos += 1
            elif self.peek() in ("car", "dog", "cat", "bicycle", "bike", "ball"):
                target.target_class = {"bike": "bicycle", "ball": "sports ball"}.get(self.peek(), self.peek())
                self.pos += 1
            elif self.peek() in ("track", "target", "number", "id"):
                pass
            self.skip({"on", "the", "to", "at"})
            if self.accept("left", "leftmost"):
                target.selector = "left"
            elif self.accept("right", "rightmost"):
                target.selector = "right"
            elif self.accept("nearest", "closest", "biggest", "largest"):
                target.selector = "largest"
            elif self.peek() in ("track", "number", "id", "target"):
                self.pos += 1
                self.skip({"number", "id"})
                track = self.number()
                if track is None:
                    raise _Ambiguous("Which track number should I follow?")
                target.selector, target.track_id = "track", int(track)
            else:
                track = self.number()       # "follow person 3"
                if track is not None:
                    target.selector, target.track_id = "track", int(track)
            self.skip({"side", "one", "in", "view"})
        result.follow[len(result.steps)] = target
        result.steps.append(PlanStep(ActionType.FOLLOW, target_track_id=target.track_id,
                                     target_class=target.target_class))
        return True

    def _goto(self, result: ParseResult) -> bool:
        start = self.pos
        if self.peek() in ("go", "fly", "move", "head", "navigate") and self.peek(1) == "to":
            self.pos += 2
        elif self.peek() == "goto":
            self.pos += 1
        else:
            return False
        self.skip({"the", "position", "point", "coordinates", "coordinate", "location", "waypoint"})
        coords: dict[str, float] = {}
        ordered: list[float] = []
        while len(ordered) + len(coords) < 3:
            axis = self.peek() if self.peek() in ("x", "y", "z") else None
            if axis:
                self.pos += 1
                self.accept("equals", "is", "=")
            self.accept(",")
            value = self.distance()
            if value is None:
                if axis:
                    raise _Ambiguous(f"What {axis} coordinate should I go to?")
                break
            if axis:
                coords[axis] = value
            else:
                ordered.append(value)
            self.accept(",")
        if not coords and not ordered:
            self.pos = start
            return False
        for axis, value in zip(("x", "y", "z"), ordered):
            coords.setdefault(axis, value)
        if "x" not in coords or "y" not in coords:
            raise _Ambiguous("Go to which position? Say x, y and optionally the height.")
        index = len(result.steps)
        if "z" not in coords:
            result.goto_keep_altitude.add(index)
        result.steps.append(PlanStep(ActionType.GOTO, x=coords["x"], y=coords["y"], z=coords.get("z", math.nan)))
        return True


def parse_command(text: str) -> ParseResult:
    """Parse one utterance. Never raises for odd input: the result says what to do with it."""
    result = ParseResult()
    refusal = refusal_for(text)
    if refusal:
        result.refusal = refusal
        return result
    parser = _Parser(normalise(text))
    try:
        while not parser.at_end():
            parser.skip(CONNECTORS | {",", ";", "."})
            if parser.at_end():
                break
            if not parser.command(result):
                result.unparsed = " ".join(parser.tokens[parser.pos:])
                break
    except _Ambiguous as question:
        result.clarification = str(question)
        result.steps.clear()
    return result
