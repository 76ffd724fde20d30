"""Answers to the operator's questions, without ROS: battery, altitude, position, speed, mode, who the operator
is, what the drone is doing, what can be said, and what it sees.

- `question_topic(text)` tells whether an utterance is a question this module answers, and which topic
  (battery | altitude | position | speed | mode | operator | activity | help | scene | describe), by rules.
- `answer(topic, status)` builds the short spoken reply from a `Status` snapshot the planner node fills from
  /flight/state, /auth/state, the running plan's feedback and /detections. Numbers are rounded for speaking; what
  is not known yet is said plainly ("I don't know my battery level yet"), never made up.
- `describe_detections(...)` says what the tracker sees: classes and counts, where each object is (left / in the
  centre / on the right: the image's thirds of box-centre x) and how far it looks (the box height as a fraction of
  the image height — see `distance_word`).

Frames: world x, y, z in metres as the flight controller publishes them (z up, ground at 0 in the simulator).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from mmchat_ros.core.detections import TrackedObject

TOPICS = ("battery", "altitude", "position", "speed", "mode", "operator", "activity", "help", "scene", "describe")

HELP_TEXT = ("You can say: take off; land; hover or stop; fly forward, back, left, right, up or down some meters; "
             "turn left or right some degrees; go to x y; come back home; follow me, and stop following. "
             "You can ask: battery, altitude, position, speed, mode, who the operator is, what I'm doing, "
             "and what I see.")

# Apparent size → distance words: the box height as a fraction of the image height. A standing person filling
# half the frame or more is within ~2-3 m of a typical wide-angle drone camera; under a fifth of it, beyond ~6 m.
# The rule is per box, whatever the class: big objects (cars) read as nearer than they are, small ones as further.
NEAR_FRACTION = 0.5
FAR_FRACTION = 0.2


@dataclass
class Status:
    """What the drone knows about itself and its surroundings, for answers. None / "" = not known yet."""
    battery_fraction: float | None = None         # 0..1
    position: np.ndarray | None = None            # world x, y, z, m
    velocity: np.ndarray | None = None            # world m/s
    mode: str = ""                                # FlightState.mode: LANDED, ARMED, TAKING_OFF, HOVER, ...
    armed: bool = False
    operator: str = ""                            # display name of the recognised operator, "" = nobody
    authorised: bool = False
    activity: str = ""                            # the running plan step and its progress, "" when idle
    detections: list[TrackedObject] = field(default_factory=list)    # boxes in pixels
    image_width: float = 0.0                      # 0 = no /detections received yet
    image_height: float = 0.0
    home: np.ndarray | None = None                # take-off point, world m
    vision_description: str = ""                  # a vision model's description of the current frame, if any


# --------------------------------------------------------------------------------------------- speaking numbers
_SMALL = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")


def count_word(n: int) -> str:
    return _SMALL[n] if 0 <= n < len(_SMALL) else str(n)


def spoken_number(value: float, decimals: int = 1) -> str:
    """Rounded for speaking: 1.49 → "1.5", 2.0 → "2", -0.3 → "minus 0.3"."""
    rounded = round(float(value), decimals)
    if rounded == 0:
        rounded = 0.0                               # no "minus 0"
    text = f"{abs(rounded):.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{abs(rounded):.0f}"
    return ("minus " if rounded < 0 else "") + text


def _meters(value: float, decimals: int = 1, per: str = "") -> str:
    text = spoken_number(value, decimals)
    return f"{text} meter" + ("" if text == "1" else "s") + per


def _known(vector) -> bool:
    return vector is not None and len(vector) >= 3 and bool(np.all(np.isfinite(np.asarray(vector, dtype=float))))


# ------------------------------------------------------------------------------------------------ the scene
_PLURALS = {"person": "people", "mouse": "mice", "sheep": "sheep", "skis": "skis", "scissors": "scissors",
            "bus": "buses", "knife": "knives", "bench": "benches", "couch": "couches", "glass": "glasses",
            "wine glass": "wine glasses", "sandwich": "sandwiches", "toothbrush": "toothbrushes", "dish": "dishes"}


def plural(name: str) -> str:
    if name in _PLURALS:
        return _PLURALS[name]
    if name.endswith(("s", "x", "ch", "sh")):
        return name + "es"
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


def with_article(name: str) -> str:
    return ("an " if name[:1] in "aeiou" else "a ") + name


def side_word(center_x: float, image_width: float) -> str:
    """Left, centre or right third of the image (the drone's own left/right: the camera looks forward)."""
    if image_width <= 0:
        return ""
    fraction = center_x / image_width
    if fraction < 1 / 3:
        return "on the left"
    if fraction > 2 / 3:
        return "on the right"
    return "in the centre"


def distance_word(height: float, image_height: float) -> str:
    """"close" (box ≥ NEAR_FRACTION of the image height), "far away" (< FAR_FRACTION), else "a few meters away"."""
    if image_height <= 0 or height <= 0:
        return ""
    fraction = height / image_height
    if fraction >= NEAR_FRACTION:
        return "close"
    if fraction < FAR_FRACTION:
        return "far away"
    return "a few meters away"


def _where(seen: TrackedObject, image_width: float, image_height: float) -> str:
    return ", ".join(w for w in (side_word(seen.center_x, image_width), distance_word(seen.height, image_height))
                     if w)


def _join(items: list[str], separator: str) -> str:
    """"a and b" / "a, and b" when the items hold commas themselves / "a, b, and c"; separator "; " for lists of
    lists ("two people: one ..., and one ...; and a car ...")."""
    if len(items) == 1:
        return items[0]
    if len(items) == 2 and separator == ", " and not any("," in item for item in items):
        return f"{items[0]} and {items[1]}"
    return separator.join(items[:-1]) + separator + "and " + items[-1]


def merge_recent(frames: list[list[TrackedObject]]) -> list[TrackedObject]:
    """What is in view over a short window of /detections messages (oldest first): the newest box of every track,
    so one frame the detector missed does not empty the scene; untracked detections (track_id < 0) only from the
    newest message. Tracks in order of first appearance."""
    merged: dict[int, TrackedObject] = {}
    for frame in frames:
        for seen in frame:
            if seen.track_id >= 0:
                merged[seen.track_id] = seen
    untracked = [seen for seen in frames[-1] if seen.track_id < 0] if frames else []
    return list(merged.values()) + untracked


MAX_LISTED = 4          # objects of one class described one by one; more are counted


def describe_detections(detections: list[TrackedObject], image_width: float, image_height: float) -> str:
    """One sentence: "I see two people: one on the left, far away, and one in the centre, close; and a car on the
    right, far away." Classes with the most objects first; within a class, left to right."""
    if not detections:
        if image_width <= 0:
            return "I have no recent camera detections, so I can't tell what's around me."
        return "I don't see anything I recognise right now."
    groups: dict[str, list[TrackedObject]] = {}
    for seen in detections:
        groups.setdefault(seen.class_name or "object", []).append(seen)
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))     # stable: first seen first among equals
    parts = []
    for name, members in ordered:
        members = sorted(members, key=lambda s: s.center_x)
        if len(members) == 1:
            where = _where(members[0], image_width, image_height)
            parts.append(with_article(name) + (f" {where}" if where else ""))
            continue
        head = f"{count_word(len(members))} {plural(name)}"
        places = [_where(s, image_width, image_height) for s in members[:MAX_LISTED]]
        if not any(places):
            parts.append(head)
            continue
        listed = [f"one {p}" if p else "one" for p in places]
        if len(members) > MAX_LISTED:
            listed.append(f"{count_word(len(members) - MAX_LISTED)} more")
        parts.append(f"{head}: " + _join(listed, ", "))
    body = _join(parts, "; " if any("," in p for p in parts) else ", ")
    return f"I see {body}."


# ------------------------------------------------------------------------------------------------ the answers
_MODE_WORDS = {
    "LANDED": "I'm on the ground with the motors off.",
    "ARMED": "I'm on the ground, armed and ready to take off.",
    "TAKING_OFF": "I'm taking off.",
    "HOVER": "I'm flying, hovering in place.",
    "VELOCITY": "I'm flying under velocity control.",
    "POSITION": "I'm flying to a position.",
    "LANDING": "I'm landing.",
    "EMERGENCY": "I'm in emergency stop. The motors are cut until the emergency is reset.",
}
_FLYING = {"TAKING_OFF", "HOVER", "VELOCITY", "POSITION", "LANDING"}


def _battery(status: Status) -> str:
    fraction = status.battery_fraction
    if fraction is None or not math.isfinite(fraction):
        return "I don't know my battery level yet."
    percent = max(0, min(100, round(100 * fraction)))
    reply = f"My battery is at {percent} percent."
    if percent < 25:
        reply += " That's low; I should land soon."
    return reply


def _altitude(status: Status) -> str:
    if not _known(status.position):
        return "I don't know my altitude yet."
    z = float(status.position[2])
    if status.mode in ("LANDED", "ARMED") or (status.mode not in _FLYING and abs(z) < 0.15):
        return "I'm on the ground."
    return f"I'm {_meters(z)} up."


def _position(status: Status) -> str:
    if not _known(status.position):
        return "I don't know my position yet."
    x, y, z = (float(v) for v in status.position[:3])
    reply = f"I'm at x {spoken_number(x)}, y {spoken_number(y)}, {_meters(z)} up"
    if _known(status.home):
        distance = math.hypot(x - float(status.home[0]), y - float(status.home[1]))
        if distance < 0.3:
            reply += ", right above my take-off point" if z - float(status.home[2]) > 0.15 else \
                ", at my take-off point"
        else:
            reply += f", {_meters(distance)} from my take-off point"
    return reply + "."


def _speed(status: Status) -> str:
    if not _known(status.velocity):
        return "I don't know my speed yet."
    vx, vy, vz = (float(v) for v in status.velocity[:3])
    horizontal, vertical = math.hypot(vx, vy), vz
    if horizontal < 0.1 and abs(vertical) < 0.1:
        return "I'm not moving." if status.mode not in _FLYING else "I'm holding still."
    parts = []
    if horizontal >= 0.1:
        parts.append(f"moving at {_meters(horizontal, per=' per second')}")
    if abs(vertical) >= 0.1:
        parts.append(f"{'climbing' if vertical > 0 else 'descending'} at {_meters(abs(vertical), per=' per second')}")
    return "I'm " + " and ".join(parts) + "."


def _mode(status: Status) -> str:
    if not status.mode:
        return "I don't know my flight state yet."
    return _MODE_WORDS.get(status.mode, f"I'm in {status.mode.lower().replace('_', ' ')} mode.")


def _operator(status: Status) -> str:
    if status.operator and status.authorised:
        return f"{status.operator} is the operator, and is authorised to command me."
    if status.operator:
        return f"I recognise {status.operator}, but nobody is authorised to command me right now."
    if status.authorised:
        return "An operator is authorised, but I don't know their name."
    return "Nobody is authorised to command me right now."


def _activity(status: Status) -> str:
    if status.activity:
        return f"I'm {status.activity}."
    if status.mode in ("HOVER", "POSITION", "VELOCITY"):
        return "I'm flying and waiting for a command."
    if status.mode in _MODE_WORDS:
        return _MODE_WORDS[status.mode][:-1] + ", waiting for a command." if status.mode in ("LANDED", "ARMED") \
            else _MODE_WORDS[status.mode]
    return "Nothing right now; I'm waiting for a command."


def describe_activity(step: str, progress: float, index: int = 0, count: int = 1) -> str:
    """The running plan step for Status.activity: "flying forward 2 meters, 40 percent done (step 2 of 3)".
    ``step`` is plan_vocabulary.describe() of that one step; ``progress`` 0..1 as the plan action reports it."""
    step = step[:1].lower() + step[1:]
    text = step
    if math.isfinite(progress) and progress > 0:
        text += f", {max(0, min(100, round(100 * progress)))} percent done"
    if count > 1:
        text += f" (step {index + 1} of {count})"
    return text


def answer(topic: str, status: Status) -> str:
    """The spoken answer to a question on ``topic`` (one of TOPICS)."""
    if topic == "battery":
        return _battery(status)
    if topic == "altitude":
        return _altitude(status)
    if topic == "position":
        return _position(status)
    if topic == "speed":
        return _speed(status)
    if topic == "mode":
        return _mode(status)
    if topic == "operator":
        return _operator(status)
    if topic == "activity":
        return _activity(status)
    if topic == "help":
        return HELP_TEXT
    if topic == "describe" and status.vision_description:
        return status.vision_description
    if topic in ("scene", "describe"):
        return describe_detections(status.detections, status.image_width, status.image_height)
    raise ValueError(f"unknown question topic '{topic}' (one of {', '.join(TOPICS)})")


def spoken_vision_reply(text: str, max_sentences: int = 3, max_chars: int = 320) -> str:
    """A vision model's description made fit to speak: whitespace and markdown tidied, at most ``max_sentences``
    sentences and about ``max_chars`` characters (cut at a sentence or word boundary). "" when nothing is left."""
    text = re.sub(r"[*_#`]+", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    sentences = re.findall(r"[^.!?]+[.!?]*", text)
    kept = ""
    for sentence in sentences[:max_sentences]:
        candidate = (kept + " " + sentence.strip()).strip()
        if len(candidate) > max_chars and kept:
            break
        kept = candidate
    if len(kept) > max_chars:
        kept = kept[:max_chars].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    if kept and kept[-1] not in ".!?":
        kept += "."
    return kept


def vision_fallback(reason: str, status: Status) -> str:
    """What is said when the vision model gives no description: why, then what the tracker sees."""
    return (f"I couldn't get a description from the vision model ({reason}). "
            + describe_detections(status.detections, status.image_width, status.image_height))


# --------------------------------------------------------------------------------------- question detection
_QUESTION_START = re.compile(
    r"^(what|how|where|who|which|when|why|is|are|am|do|does|did|can|could|would|will|have|has|tell|give|report|"
    r"describe|show|let me know|any|anyone|anybody|somebody|someone|status|check|whats|wheres|whos)\b")

# (topic, pattern) in priority order: the first that matches wins; a topic may appear more than once. Patterns see
# the normalised text: lower case, contractions spelled out ("what's" → "what is"), no punctuation, fillers gone.
_RULES: list[tuple[str, str]] = [
    ("help", r"\bwhat (can|could|should|do) i (say|ask|tell you|do)\b|\bwhat can you do\b|"
             r"\bwhat (do|can) you understand\b|\bwhat ((kind|sort|type)s? of )?(commands|orders|instructions)\b|"
             r"\bwhich commands\b|"
             r"\b(list|give me|tell me) (the |your )?commands\b|\bhow do i (use|control|fly|command|talk to) you\b|"
             r"^help\b|\bhelp me\b|\bwhat are (my|the) options\b|\bwhat are you able to do\b"),
    ("describe", r"\bdescribe\b|\bwhat does (it|the scene|the view|everything|the area) look like\b|"
                 r"\bwhat is the (scene|view)( like)?\b|\bpaint (me )?a picture\b|\bwhat does the camera show\b"),
    ("scene", r"\bwhat (do |can |did )?you (see|spot|detect|notice|can see)\b|\bwhat are you (seeing|looking at)\b|"
              r"\b(do|can|did) you (see|spot|detect|notice)\b|\bsee any(one|body|thing)?\b|"
              r"\b(is|are) (there )?(any(one|body)?|some(one|body)|people|persons?)\b.*\b(there|here|around|"
              r"nearby|ahead|in (view|sight|front|the picture|the frame))\b|"
              r"\b(is|are) there (any |a |an |some )?(one|body|people|persons?|person|man|woman|car|cars|"
              r"anyone|anybody|someone|somebody)\b|"
              r"\b(any|some)(one|body|thing) (there|around|here|nearby|ahead|in (view|sight|front( of you)?))\b|"
              r"\bhow many\b(?! (meters|metres|percent|degrees|feet|seconds|minutes))|"
              r"\bwho (do you see|is (in front of|around|near|ahead of|there|here))\b|"
              r"\bwhat is (in front of|around|near|ahead of|below|under|behind) you\b|"
              r"\bwhat is (in|on) (the )?camera\b|\bwhat is in (view|sight)\b|\bwhat do you have in view\b"),
    ("operator", r"\bwho (is |are )?(in (control|charge|command)|the operator|operating|flying( you)?|controlling|"
                 r"commanding|piloting|your (operator|pilot|boss))\b|\bwho am i\b|"
                 r"\bam i (authori[sz]ed|the operator|in control|recogni[sz]ed|allowed)\b|"
                 r"\bwho (can|may) (command|control|fly) you\b|\bwho controls you\b|\bwho has control\b|"
                 r"\bwho (do you|are you) (listen|listening|obey|taking orders)\b|\boperator\b|"
                 r"\b(is|are) (anyone|anybody|someone|somebody|the operator) authori[sz]ed\b"),
    ("battery", r"\bbatter(y|ies)\b|\bcharge\b|\bpower (left|level|remaining)\b|\bhow much (power|juice|energy)\b|"
                r"\bjuice\b|\bhow long (can|will) you (fly|last|stay (up|in the air|airborne)|keep (flying|going))\b|"
                r"\bhow much (flight|flying) time\b"),
    ("altitude", r"\bhow (high|low)\b|\baltitude\b|\bheight\b|\bhow far (up|off the ground|above the ground)\b"),
    ("activity", r"\bwhere are you (going|heading|off to|flying to)\b"),
    ("position", r"\bwhere (are you|is the drone)\b|\bposition\b|\blocation\b|\bcoordinates\b|"
                 r"\bhow far (are you )?(away )?(from|to) (home|the start|your (take ?off|starting) (point|spot)|"
                 r"where you (started|took off))\b|\bhow far away are you\b|\bhow far is home\b|"
                 r"\bwhere (am i|are we)\b"),
    ("speed", r"\bhow fast\b|\bspeed\b|\bvelocity\b|\bhow quick(ly)?\b|\bare you moving\b"),
    ("mode", r"\bare you (flying|airborne|(up )?in the air|on the ground|sitting on the ground|landed|armed|hovering|"
             r"grounded)\b|\bare you (up|down)$|"
             r"\b(what|which) (flight )?(mode|state)\b|\bflight (mode|state)\b|\bstatus\b|\bare you ready\b|"
             r"\bhave you (landed|taken off)\b|\bdid you (land|take off)\b|\bare (the|your) motors (on|off|running)\b"),
    ("activity", r"\bwhat are you (doing|up to|working on|busy with)\b|\bwhat is (your )?(current )?(task|plan|"
                 r"step|job|mission)\b|\bare you busy\b|\bwhat is (happening|going on)\b|\bhow far along\b|"
                 r"\bare you done\b|\bhave you finished\b|\bwhat are you (going to do|about to do)\b"),
]
_COMPILED = [(topic, re.compile(pattern)) for topic, pattern in _RULES]

_FILLERS = re.compile(r"^((hey|hi|ok|okay|so|um|uh|er|well|excuse me|drone|robot|buddy)\b ?)+|"
                      r"\b(please|pls|plz|kindly|for me|right now|currently|at the moment|just)\b")

# Imperatives with a question's vocabulary are commands, not questions ("go to a height of 2 m", "change the
# operator"), and so are requests phrased as questions ("could you climb to a height of three meters?").
_COMMAND_VERBS = (r"(take|land|fly|go|move|climb|descend|rise|drop|turn|rotate|yaw|spin|hover|stop|hold|follow|"
                  r"come|return|head|set|change|switch|disable|enable|increase|decrease|raise|lower|reduce|ignore|"
                  r"slow|speed up|get|lift|back|reverse|gain|lose|ascend|keep|stay|make|let|start|cancel|abort|"
                  r"bring|put|track|circle|orbit|remove|relax|loosen|extend|widen|expand|lift|drop|add|allow|override|bypass|forget|register|enroll)")
_COMMAND_START = re.compile(r"^" + _COMMAND_VERBS + r"\b")
_POLITE_COMMAND = re.compile(r"^(can|could|would|will|why don't|won't) you (" + _COMMAND_VERBS[1:-1] + r")\b")


_CONTRACTIONS = [(re.compile(r"\b" + a + r"\b"), b) for a, b in (
    (r"what'?s", "what is"), (r"where'?s", "where is"), (r"who'?s", "who is"), (r"how'?s", "how is"),
    (r"i'm", "i am"), (r"you'?re", "you are"), (r"there'?s", "there is"), (r"it'?s", "it is"),
    (r"that'?s", "that is"), (r"what'?re", "what are"), (r"how'?re", "how are"))]


def normalise(text: str) -> str:
    """Lower case, contractions spelled out ("what's" → "what is"), punctuation and fillers removed."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    for pattern, full in _CONTRACTIONS:
        text = pattern.sub(full, text)
    text = _FILLERS.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


def question_topic(text: str) -> str | None:
    """The topic of a question this module answers, or None when ``text`` is not such a question (commands,
    chit-chat, questions about other things). A question opens with a question word or "tell me"/"report"-style
    request, or ends with "?"; an imperative ("go to a height of two meters", "set the speed to 1") is not one."""
    asked = text.strip().endswith("?")
    words = normalise(text)
    if not words:
        return None
    if (_COMMAND_START.match(words) or _POLITE_COMMAND.match(words)) and not re.match(r"^(get|let) me\b", words):
        return None
    if not (asked or _QUESTION_START.match(words) or len(words.split()) <= 2):
        return None
    for topic, pattern in _COMPILED:
        if pattern.search(words):
            return topic
    return None
