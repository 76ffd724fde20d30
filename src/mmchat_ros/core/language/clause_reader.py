"""Reading one clause into plan steps: the intent and the slots anywhere in the clause (directions, distances and
angles with units, durations, speeds, hedges, absolute heights, coordinates, follow targets), and what a reading
yields (``ParseResult``). A clause understood but lacking a detail raises ``Ambiguous`` with the question to ask.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from mmchat_ros.core.plan_vocabulary import ActionType, PlanStep
from mmchat_ros.core.language.lexicon import (DEFAULT_TURN_DEGREES, DIRECTIONS, HEDGE_DEGREES, HEDGE_METRES, HEDGES,
                                              TURN_SIDES, VERB_DIRECTIONS, phrase_spans, phrases_in, stem)
from mmchat_ros.core.language.numbers import (DEGREE_UNITS, SMALL_NUMBERS, TENS, UNITS_TO_METRES, NumberReader,
                                              Quantity)

# Words the slots below read (recognition_slips counts them as the command language's own words).
FOLLOW_CLASSES = {"car": "car", "cars": "car", "truck": "truck", "dog": "dog", "cat": "cat", "bicycle": "bicycle",
                  "bike": "bicycle", "cyclist": "bicycle", "ball": "sports ball", "horse": "horse",
                  "motorbike": "motorcycle", "motorcycle": "motorcycle", "bus": "bus", "boat": "boat",
                  "bird": "bird", "vehicle": "car"}
FOLLOW_NUMBER_WORDS = {"track", "number", "id", "person", "target", "no"}
FOLLOW_SELECTORS = {"leftmost", "rightmost"}
TURN_COUNT_WORDS = {"turn", "turns", "rotation", "rotations", "circle", "circles", "spin", "spins", "revolution",
                    "revolutions"}
COORDINATE_LINKS = ("equals", "is", "=", "of", ",")
REPEAT_WORDS = {"twice", "thrice", "times", "time"}


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
    goto_keep_position: set[int] = field(default_factory=set)       # GOTO steps that only set the height
    clarification: str = ""           # a question to ask instead of moving
    refusal: str = ""                 # why the command is refused outright
    unparsed: str = ""                # text the grammar could not read (for the LLM stage)
    unused: list[str] = field(default_factory=list)     # numbers, units, directions said but used by no step
    notes: list[str] = field(default_factory=list)     # the corrections a non-literal reading needed (repairs,
                                                         # intent by similarity): logs, bench, spoken read-back

    @property
    def complete(self) -> bool:
        return bool(self.steps) and not (self.clarification or self.refusal or self.unparsed)


class Ambiguous(Exception):
    """The command is understood but needs a detail the speaker did not give."""


@dataclass
class Clause:
    tokens: list[str]
    intent: str = ""
    intent_at: int = -1
    intent_len: int = 0


# "right here", "right now", "all right": "right" that only stresses
_STRESSED_BY_RIGHT = {"here", "there", "now", "away", "where", "then"}


def _outside_phrases(tokens: list[str]) -> list[int]:
    """Positions of the words that are not part of a phrase of the verb lexicon (the phrase owns them: "come back
    down" goes down, "back up a metre" goes back, "lift off" takes off)."""
    spans = [(a, b) for a, b, _ in phrase_spans(tokens) if b - a > 1]
    return [i for i in range(len(tokens)) if not any(a <= i < b for a, b in spans)]


def _free_directions(tokens: list[str]) -> list[tuple[int, str]]:
    """(position, word) of the direction words outside verb phrases."""
    return [(i, tokens[i]) for i in _outside_phrases(tokens) if tokens[i] in DIRECTIONS]


def _said_directions(tokens: list[str]) -> list[tuple[str, str]]:
    """(word, direction) of every way the words say to go: direction words outside verb phrases (not "right" as
    a stress) and verbs that carry their direction ("lift" goes up, "reverse" goes back)."""
    said = [(w, w) for i, w in _free_directions(tokens) if not _stress(tokens, i)]
    return said + [(tokens[i], VERB_DIRECTIONS[stem(tokens[i])]) for i in _outside_phrases(tokens)
                   if tokens[i] not in DIRECTIONS and stem(tokens[i]) in VERB_DIRECTIONS]


def _stress(tokens: list[str], i: int) -> bool:
    """Is the word at ``i`` "right" as a stress ("land right here", "all right")?"""
    return tokens[i] == "right" and (tokens[i + 1:i + 2] and tokens[i + 1] in _STRESSED_BY_RIGHT
                                     or tokens[i - 1:i] == ["all"])


def _goes(step: PlanStep, direction: str) -> bool:
    """Does ``step`` go the way ``direction`` says (a take-off goes up, going home goes back, a turn or a follow
    takes a side, a go-to a position anywhere)?"""
    ux, uy, uz = DIRECTIONS[direction]
    kind = ActionType(step.type)
    if kind == ActionType.MOVE_BY:
        return ux * step.x > 0 or uy * step.y > 0 or uz * step.z > 0
    if kind == ActionType.ROTATE:
        return direction in TURN_SIDES and TURN_SIDES[direction] * step.yaw_deg > 0
    return {ActionType.TAKEOFF: uz > 0, ActionType.LAND: uz < 0, ActionType.RETURN_HOME: ux < 0,
            ActionType.FOLLOW: direction in TURN_SIDES, ActionType.GOTO: True}.get(kind, False)


class ClauseReader:
    """Turns one clause into plan steps; raises Ambiguous for a missing detail, returns False if unreadable."""

    def __init__(self, result: ParseResult):
        self.result = result
        self._used: set[int] = set()        # where the quantities the steps took start (token index)

    def read(self, clause: Clause) -> bool:
        """Append the clause's steps (repeated when it says "twice" / "three times")."""
        before = len(self.result.steps)
        self._used = set()
        words = [t for t in clause.tokens if t not in (",", ".", ";")]
        quantities = NumberReader(words).quantities()
        if not self._read_once(clause, words, quantities):
            return False
        # A number the steps did not take ("turn right, one metre": a turn has no use for a length) says the words
        # and the reading disagree; a transcript with one is read back rather than flown (planner._speech_doubt).
        self.result.unused.extend(" ".join(words[q.start:q.end]) for q in quantities
                                  if q.start not in self._used and q.kind not in ("count", "speed"))
        # so does a unit with no number before it ("turn right one hundred and maybe degrees")
        self.result.unused.extend(w for i, w in enumerate(words) if (w in UNITS_TO_METRES or w in DEGREE_UNITS)
                                  and not any(q.start <= i < q.end for q in quantities))
        # and a direction no step goes ("climb that slide right a bit": a climb has no use for "right"; "stop on
        # lift": a stop does not go up)
        steps = self.result.steps[before:]
        self.result.unused.extend(word for word, direction in _said_directions(words)
                                  if not any(_goes(step, direction) for step in steps))
        tokens = clause.tokens
        counts = [q.value for q in NumberReader(tokens).quantities() if q.kind == "count"]
        repeat = int(counts[0]) if counts else (2 if "twice" in tokens else 3 if "thrice" in tokens else 1)
        if repeat > 1:
            once = self.result.steps[before:]
            for _ in range(min(repeat, 100) - 1):
                self.result.steps.extend(once)
        return True

    def _read_once(self, clause: Clause, tokens: list[str], quantities: list[Quantity]) -> bool:
        """The clause's steps once; ``tokens``: its words without punctuation, ``quantities``: their numbers."""
        text = " ".join(tokens)
        hedged = any(re.search(rf"\b{h}\b", text) for h in HEDGES)
        # Direction words inside a verb phrase belong to the verb ("come back down" goes down, "back up a metre"
        # goes back): phrases with a built-in direction give it, the others none.
        directions = _free_directions(tokens) + [(a, VERB_DIRECTIONS[phrase]) for a, b, phrase in phrase_spans(tokens)
                                                 if b - a > 1 and phrase in VERB_DIRECTIONS]
        directions.sort()
        lengths = [q for q in quantities if q.kind == "length"]
        angles = [q for q in quantities if q.kind == "angle"]
        times = [q for q in quantities if q.kind == "time"]
        speeds = [q for q in quantities if q.kind == "speed"]
        bare = [q for q in quantities if q.kind == "number"]
        speed = speeds[0].value if speeds else 0.0
        intent = clause.intent
        steps = self.result.steps
        if intent == "home" and directions and (lengths or bare) and not re.search(r"\b(home|base|start)", text):
            intent = "move"              # "come back down two meters" is a move, not going home

        if intent == "takeoff":
            height = self._use((lengths or bare or [None])[0])
            steps.append(PlanStep(ActionType.TAKEOFF, z=height.value if height else 0.0))
            return True
        if intent == "land":
            place = re.search(r"\b(on|onto|at|near|beside|next to|by|in|inside|behind|under) (the|a|that|this|"
                              r"my|your) (\w+)", text)
            if place and place.group(3) not in ("ground", "spot", "floor", "place", "pad", "launch", "start"):
                raise Ambiguous(f"I can only land straight down where I am; I can't find the {place.group(3)}. "
                                 "Say 'land' to land here.")
            steps.append(PlanStep(ActionType.LAND))
            return True
        if intent in ("unfollow", "stop"):
            steps.append(PlanStep(ActionType.STOP))
            return True
        if intent == "hover":
            seconds = self._use((times or bare or [None])[0])
            steps.append(PlanStep(ActionType.HOVER, duration_s=seconds.value if seconds else 0.0))
            return True
        if intent == "home":
            steps.append(PlanStep(ActionType.RETURN_HOME, speed=speed))
            return True
        if intent == "follow":
            return self._follow(tokens)
        if intent == "goto" or (intent == "move" and self._has_coordinates(tokens)):
            if self._goto(tokens):
                return True
            if intent == "goto":
                raise Ambiguous("Go to which position? Say x, y and optionally the height.")
        if not intent and angles and any(t in TURN_SIDES for t in tokens):
            intent = "turn"                  # "right thirty degrees": an angle makes it a turn
        if intent == "turn":
            return self._turn(tokens, angles + [q for q in bare if not self._turn_fraction(tokens, q)], hedged)
        implied = [VERB_DIRECTIONS[p] for p in phrases_in(tokens) if p in VERB_DIRECTIONS and " " not in p]
        if not directions and implied:
            directions = [(clause.intent_at if clause.intent_at >= 0 else 0, implied[0])]
        vertical = [d for _, d in directions if DIRECTIONS[d][2]]
        if intent in ("climb", "descend", "altitude") or (directions and len(vertical) == len(directions)):
            sign = DIRECTIONS[vertical[0]][2] if vertical else {"climb": 1, "descend": -1}.get(intent, 0)
            absolute = self._absolute_height(tokens, lengths + bare)
            if absolute is not None:
                self._height(self._use(absolute).value, speed)
                return True
            amount = self._use((lengths or bare or [None])[0])
            metres = amount.value if amount else (HEDGE_METRES if hedged else None)
            if metres is None:
                what = {1: "climb", -1: "descend"}.get(sign)
                raise Ambiguous(f"How far should I {what}?" if what else "To what height?")
            if not sign:
                raise Ambiguous("Up or down?")
            steps.append(PlanStep(ActionType.MOVE_BY, z=sign * abs(metres), speed=speed))
            return True
        if intent == "move" or (not intent and directions):
            if not directions:
                if lengths or bare:
                    raise Ambiguous("Which way should I go: forward, back, left, right, up or down?")
                return False
            return self._moves(tokens, directions, lengths + bare, hedged, speed)
        return False

    def _moves(self, tokens, directions, amounts: list[Quantity], hedged: bool, speed: float) -> bool:
        """One MOVE_BY per direction, each with the nearest distance after it (else before it)."""
        # Direction words naming the same way with nothing between them count once ("straight ahead").
        unique: list[tuple[int, str]] = []
        for position, word in directions:
            if unique and DIRECTIONS[unique[-1][1]] == DIRECTIONS[word] and not any(
                    unique[-1][0] < q.start < position for q in amounts):
                continue
            unique.append((position, word))
        groups = []
        used: set[int] = set()
        for index, (position, word) in enumerate(unique):
            next_position = unique[index + 1][0] if index + 1 < len(unique) else len(tokens)
            candidates = [q for q in amounts if position < q.start < next_position and id(q) not in used] \
                or [q for q in amounts if q.end <= position and id(q) not in used]
            amount = self._use(candidates[0] if candidates else None)
            if amount is not None:
                used.add(id(amount))
            groups.append((word, amount))
        for word, amount in groups:
            metres = amount.value if amount else (HEDGE_METRES if hedged else None)
            if metres is None:
                raise Ambiguous(f"How far should I go {word}?")
            ux, uy, uz = DIRECTIONS[word]
            self.result.steps.append(PlanStep(ActionType.MOVE_BY, x=ux * abs(metres), y=uy * abs(metres),
                                              z=uz * abs(metres), speed=speed))
        return True

    def _use(self, quantity: Quantity | None) -> Quantity | None:
        """``quantity``, noted as taken by a step."""
        if quantity is not None:
            self._used.add(quantity.start)
        return quantity

    @staticmethod
    def _absolute_height(tokens: list[str], amounts: list[Quantity]) -> Quantity | None:
        """ "to five metres", "an altitude of 3 m", "at a height of four meters" → the height; else None."""
        for amount in amounts:
            before = tokens[max(0, amount.start - 4):amount.start]
            if before and before[-1] == "by":
                continue                     # "increase your height by one meter" is relative
            if before and (before[-1] in ("to", "at") or {"altitude", "height", "elevation"} & set(before)):
                return amount
        return None

    def _height(self, height: float, speed: float) -> None:
        index = len(self.result.steps)
        self.result.goto_keep_position.add(index)
        self.result.steps.append(PlanStep(ActionType.GOTO, x=math.nan, y=math.nan, z=height, speed=speed))

    @staticmethod
    def _turn_fraction(tokens: list[str], quantity: Quantity) -> bool:
        """ "a quarter turn", "half a turn", "two turns": the number counts turns, not degrees."""
        after = tokens[quantity.end:quantity.end + 2]
        return bool(set(after) & TURN_COUNT_WORDS)

    def _turn(self, tokens: list[str], angles: list[Quantity], hedged: bool) -> bool:
        text = " ".join(tokens)
        sides = [TURN_SIDES[t] for t in tokens if t in TURN_SIDES]
        turns = [q for q in NumberReader(tokens).quantities() if self._turn_fraction(tokens, q)]
        angle = None
        if angles:
            angle = abs(self._use(angles[0]).value)
        elif turns:
            angle = abs(self._use(turns[0]).value) * 360.0
        elif re.search(r"\b(full (turn|circle|rotation|spin)|all the way around|complete (turn|circle|rotation)|"
                       r"spin (a)?round|once around|whole (turn|circle)|full spin|(a)?round once)\b", text):
            angle = 360.0
        elif re.search(r"\b(around|round|about face|about)\b", text):
            angle = 180.0
        elif hedged:
            angle = HEDGE_DEGREES
        if sides:
            sign = sides[0]
        elif angle is not None and angle in (180.0, 360.0):
            sign = 1.0
        else:
            raise Ambiguous("Which way should I turn, left or right?")
        if angle is None:
            angle = DEFAULT_TURN_DEGREES
        self.result.steps.append(PlanStep(ActionType.ROTATE, yaw_deg=sign * angle))
        return True

    def _follow(self, tokens: list[str]) -> bool:
        target = FollowTarget()
        words = set(tokens)
        for token in tokens:
            if token in FOLLOW_CLASSES:
                target.target_class = FOLLOW_CLASSES[token]
                break
        if words & {"left", "leftmost"}:
            target.selector = "left"
        elif words & {"right", "rightmost"}:
            target.selector = "right"
        reader = NumberReader(tokens)
        numbers = [q for q in reader.quantities() if q.kind == "number"]
        if numbers and words & FOLLOW_NUMBER_WORDS:
            target.selector, target.track_id = "track", int(self._use(numbers[0]).value)
        elif words & {"track", "id"} and "number" in words and not numbers:
            raise Ambiguous("Which track number should I follow?")
        self.result.follow[len(self.result.steps)] = target
        self.result.steps.append(PlanStep(ActionType.FOLLOW, target_track_id=target.track_id,
                                          target_class=target.target_class))
        return True

    @staticmethod
    def _has_coordinates(tokens: list[str]) -> bool:
        text = " ".join(tokens)
        return ("x" in tokens or "y" in tokens) or bool(
            {"coordinates", "coordinate", "position", "waypoint", "location"} & set(tokens)) \
            or bool(re.search(r"\b(the|a|to) point\b", text)) \
            or len([q for q in NumberReader(tokens).quantities() if q.kind in ("number", "length")]) >= 2 \
            and bool(re.search(r"\bto (minus )?[\d.]|\bto (minus )?(" + "|".join(list(SMALL_NUMBERS) + list(TENS))
                               + r")\b", text)) and not any(t in DIRECTIONS for t in tokens)

    def _goto(self, tokens: list[str]) -> bool:
        reader = NumberReader(tokens)
        coords: dict[str, float] = {}
        ordered: list[tuple[float, int]] = []          # (value, where its number starts)
        height = None
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token in ("x", "y", "z") and token not in coords:
                reader.pos = i + 1
                while reader.peek() in COORDINATE_LINKS:
                    reader.pos += 1
                start = reader.pos
                value = reader.number()
                if value is None:
                    raise Ambiguous(f"What {token} coordinate should I go to?")
                if reader.peek() in UNITS_TO_METRES:
                    value *= UNITS_TO_METRES[reader.peek()]
                    reader.pos += 1
                coords[token] = value
                self._used.add(start)
                i = reader.pos
                continue
            reader.pos = i
            value = reader.number()
            if value is not None:
                unit = reader.peek()
                before = tokens[max(0, i - 3):i]
                if unit in UNITS_TO_METRES:
                    value *= UNITS_TO_METRES[unit]
                    reader.pos += 1
                if ("at" in before or "altitude" in before or "height" in before) and len(ordered) >= 2:
                    height = (value, i)
                else:
                    ordered.append((value, i))
                i = reader.pos
                continue
            i += 1
        for axis, (value, start) in zip(("x", "y", "z"), ordered):
            if axis not in coords:
                coords[axis] = value
                self._used.add(start)
        if height is not None and "z" not in coords:
            coords["z"] = height[0]
            self._used.add(height[1])
        if not coords:
            return False
        if "x" not in coords or "y" not in coords:
            raise Ambiguous("Go to which position? Say x, y and optionally the height.")
        index = len(self.result.steps)
        if "z" not in coords:
            self.result.goto_keep_altitude.add(index)
        self.result.steps.append(PlanStep(ActionType.GOTO, x=coords["x"], y=coords["y"],
                                          z=coords.get("z", math.nan)))
        return True
