"""The deterministic command reader: an utterance → clauses → (intent, slots) → plan steps, without an LLM.

How it reads, in order (each stage general, none keyed to a particular sentence):
1. ``normalise``: lower case, punctuation to separators, "2m" → "2 m", "take-off" → "take off", signs kept on
   numbers, number homophones that speech recognition writes ("to", "too", "for", "won", "tree", "ate") read as
   numbers only where a unit follows them.
2. Clauses: hard separators ("then", "after that", "next", "finally") always split; soft ones ("and", commas,
   full stops) split only where the next piece can stand as a command by itself, so "move, left, one meter" and
   "a metre and a half" stay whole while "fly forward two meters and right one meter" is two moves.
3. Per clause, the intent comes from the verb lexicon below (the most specific match wins: "head back to where
   you started" is going home, not moving back), and the slots anywhere in the clause: directions, distances and
   angles with units, durations, speeds, hedges ("a bit" → a documented small amount), absolute heights
   ("to five metres"), coordinates, follow targets.
4. A clause with no intent gets a phonetic second look (speech recognition slips: "this end" → descend,
   "write" → right) and, when the caller gives one, an intent classifier (sentence embeddings, see
   core/understanding.py) fills the intent; the slots still come from the words.
What cannot be read stays ``unparsed`` (for the LLM stage); what is understood but lacks a detail becomes a
clarifying question, never motion.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mmchat_ros.core.flight.plan import ActionType, PlanStep

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
# How much a hedge without a number means ("a little to the left"): documented in docs/understanding.md.
HEDGE_METRES = 0.5
HEDGE_DEGREES = 15.0
DEFAULT_TURN_DEGREES = 90.0
HEDGES = ("a little bit", "a little", "a bit", "a tad", "a touch", "slightly", "a smidge", "just a bit",
          "a few centimeters", "a few centimetres", "a few inches")

# Direction words → unit vector in the heading frame (x forward, y left, z up).
DIRECTIONS = {
    "forward": (1, 0, 0), "forwards": (1, 0, 0), "ahead": (1, 0, 0), "straight": (1, 0, 0), "fwd": (1, 0, 0),
    "bwd": (-1, 0, 0), "bkwd": (-1, 0, 0),
    "back": (-1, 0, 0), "backward": (-1, 0, 0), "backwards": (-1, 0, 0), "behind": (-1, 0, 0),
    "left": (0, 1, 0), "right": (0, -1, 0),
    "up": (0, 0, 1), "upward": (0, 0, 1), "upwards": (0, 0, 1), "higher": (0, 0, 1), "above": (0, 0, 1),
    "down": (0, 0, -1), "downward": (0, 0, -1), "downwards": (0, 0, -1), "lower": (0, 0, -1), "below": (0, 0, -1),
}
TURN_SIDES = {"left": 1.0, "right": -1.0, "counterclockwise": 1.0, "anticlockwise": 1.0, "clockwise": -1.0,
              "port": 1.0, "starboard": -1.0}

# The verb lexicon: phrase → (intent, specificity). Intents: takeoff land hover stop unfollow home follow turn
# climb descend move altitude goto. A longer or more specific phrase outranks a generic verb in the same clause.
INTENT_PHRASES: dict[str, tuple[str, int]] = {}


def _lexicon(intent: str, rank: int, *phrases: str) -> None:
    for phrase in phrases:
        INTENT_PHRASES[phrase] = (intent, rank)


_lexicon("takeoff", 8, "take off", "takeoff", "lift off", "liftoff", "launch", "get airborne", "airborne",
         "get in the air", "get into the air", "start flying", "begin flying", "up you go", "become airborne",
         "leave the ground", "get off the ground")
_lexicon("land", 8, "land", "touch down", "touchdown", "put it down", "set down", "set it down", "put down",
         "make a landing", "landing", "come down and land", "bring it down", "get down on the ground")
_lexicon("hover", 4, "hover", "hold", "wait", "stay", "pause", "hang", "remain", "keep still", "dont move",
         "do not move", "stay put", "hold still", "hold position", "hold your position", "stand by", "standby",
         "loiter", "sit tight")
_lexicon("stop", 4, "stop", "halt", "freeze", "brake", "stop moving", "stop right there", "abort")
_lexicon("unfollow", 7, "stop following", "quit following", "stop tracking", "stop chasing", "dont follow",
         "do not follow", "cancel follow", "cancel following", "end follow", "end following", "unfollow",
         "stop follow", "follow mode off", "turn off follow", "disable follow", "leave me alone", "stop the follow",
         "no more following", "cease following", "cancel the follow", "exit follow", "stop track")
_lexicon("home", 6, "come back home", "return home", "return to home", "go home", "go back home",
         "return to launch", "fly home", "head home", "return to base", "come home", "return to start",
         "rtl", "rth", "return", "home", "where you started", "where you took off", "starting point",
         "start point", "starting position", "take off point", "takeoff point", "launch point", "launch pad",
         "launch site", "back to the start", "back to start", "to the start", "come back", "where you began",
         "where we started", "home point", "base", "back here", "back to me", "back to base")
_lexicon("follow", 5, "follow", "track", "chase", "come with me", "tail", "shadow", "keep up with")
_lexicon("turn", 4, "turn", "rotate", "yaw", "spin", "pivot", "face", "look", "veer", "swivel", "twist", "bank",
         "quarter turn", "half turn", "full turn", "three sixty", "about face")
_lexicon("climb", 3, "climb", "ascend", "rise", "raise", "elevate", "gain", "increase altitude", "go higher",
         "fly higher", "get higher", "lift", "mount", "soar", "increase")
_lexicon("descend", 3, "descend", "drop", "lower", "sink", "lose", "decrease altitude", "go lower", "fly lower",
         "get lower", "come down", "go down", "dip", "decrease", "reduce")
_lexicon("move", 2, "move", "fly", "go", "head", "travel", "drive", "step", "slide", "strafe", "shift", "come",
         "drift", "advance", "proceed", "inch", "nudge", "back up", "back off", "reverse", "retreat", "scoot",
         "creep", "glide", "cruise", "back away", "navigate", "manoeuvre", "maneuver", "fly over")
# Verbs that carry their direction ("advance two metres", "reverse three metres").
VERB_DIRECTIONS = {"advance": "forward", "proceed": "forward", "reverse": "back", "retreat": "back",
                   "back up": "back", "back off": "back", "back away": "back", "climb": "up", "ascend": "up",
                   "rise": "up", "raise": "up", "elevate": "up", "gain": "up", "lift": "up", "soar": "up",
                   "mount": "up", "descend": "down", "drop": "down", "lower": "down", "sink": "down", "lose": "down",
                   "dip": "down", "come down": "down", "go down": "down", "go higher": "up", "fly higher": "up",
                   "get higher": "up", "go lower": "down", "fly lower": "down", "get lower": "down",
                   "increase altitude": "up", "decrease altitude": "down", "increase": "up", "decrease": "down",
                   "reduce": "down"}
# Idioms that only mean "do it" ("go ahead and take off", "let's go and land").
IDIOMS = (("go", "ahead", "and"), ("go", "on", "and"), ("lets", "go", "and"), ("come", "on", "and"),
          ("lets", "get", "going"), ("get", "going"), ("lets", "go"), ("here", "we", "go"))
_lexicon("altitude", 6, "altitude", "height", "elevation")
_lexicon("goto", 6, "go to x", "position", "coordinates", "coordinate", "waypoint", "point x", "location")

# Tokens that carry no meaning for the reading (politeness, hedges of attention, articles).
FILLERS = {"please", "the", "drone", "robot", "okay", "ok", "hey", "now", "quickly", "slowly", "just", "can", "you",
           "could", "would", "kindly", "um", "uh", "er", "erm", "hmm", "like", "so", "well", "alright", "right",
           "i", "id", "want", "wed", "we", "lets", "let", "us", "need", "to", "yourself", "your", "yours", "it",
           "a", "an", "of", "by", "about", "around", "approximately", "roughly", "some", "go", "and", "then",
           "buddy", "mate", "little", "guy", "there", "here", "gently", "carefully", "immediately", "again",
           "for", "me", "do", "me", "make", "another", "more", "further", "other", "way", "same", "be", "will",
           "im", "going", "gonna", "ask", "like", "tell", "that", "this", "is", "with", "my", "our", "in", "on",
           "at", "towards", "toward", "into", "onto", "over", "off", "out", "as", "if", "mind", "maybe"}

HARD_SEPARATORS = {"then", "afterwards", "afterward", "next", "finally", "lastly", "later"}
SOFT_SEPARATORS = {"and", ",", ".", ";", "also", "plus"}

SAFETY_OBJECTS = (r"geo ?fence|fence|safety|safeties|limit|limits|ceiling|envelope|authori[sz]ation|"
                  r"authenticat\w*|auth|face (check|checks|recognition|id|detection|verification|scan)|facial \w+|"
                  r"operators?|pilot|obstacle (avoidance|detection)|collision \w+|low battery \w*|battery (check|"
                  r"failsafe|protection)|failsafe|fail safe|max(imum)? (speed|altitude|height)|speed cap|"
                  r"altitude cap|restrictions?|protections?|rules|guard ?rails?|watchdog|kill switch|"
                  r"who (i am|is flying|can fly)|identity|security|permissions?|access control|kill switch|safe (zone|area|"
                  r"height)|no fly zones?|boundary|boundaries|perimeter|border|(my|the|your) face|face scan|"
                  r"range limit|speed governor|authori[sz]\w*|authenticat\w*|battery warnings?|warnings?|geo ?fenc\w*|"
                  r"checks|obstacle \w+|sensors?|(allowed|permitted|flying|flight|operating|safe) (\w+ )?(area|zone|space|"
                  r"region|volume|radius|box)")
# Where the vehicle may not go ("past the fence", "higher than the ceiling").
_BOUNDS = r"(fence|geofence|geo fence|ceiling|safe (zone|area)|boundary|boundaries|limits?|perimeter|border|" \
          r"no fly zone|allowed (area|zone|height|altitude))"
_OTHERS = r"(anyone|everyone|anybody|everybody|others|strangers|someone else|somebody else|other people|" \
          r"the public|all|him|her|them|my \w+|\w+ else)"
SAFETY_PATTERNS = [
    r"\b(ignore|forget|disregard|override|drop|abandon)\b.*\b(rules|instructions|limits|safety|programming|"
    r"restrictions|training|guidelines|constraints|prompt)\b",
    r"\b(disable|turn off|switch off|shut off|shut down|remove|bypass|override|deactivate|raise|increase|lift|"
    r"change|extend|expand|loosen|relax|skip|suspend|get rid of|kill|unlock|lower|reduce|reset|edit|modify|"
    r"adjust|set|boost|double|stop|without|no longer need|dont need|do not need|dont use|ignore)\b.*\b("
    + SAFETY_OBJECTS + r")\b",
    r"\bauthori[sz]e\b", r"\b(grant|give) (me |him |her |them |everyone |anyone )?(access|control|authori[sz]ation|"
    r"permission|admin)\b", r"\bno (limits|rules|restrictions)\b", r"\bjailbreak\b", r"\b(developer|god|admin|"
    r"debug|unrestricted|maintenance) mode\b",
    r"\b(make|set|add|register|enroll|enrol|appoint) \w+( \w+)? (as )?(the |an |a )?(new )?(operator|pilot|admin)\b",
    r"\blet (anyone|everyone|everybody|anybody|him|her|them|others|strangers|my \w+) (control|fly|command|use)\b",
    r"\b(anyone|everyone|anybody|everybody) (can|may|should be able to) (control|fly|command)\b",
    r"\bstop (checking|verifying|recogni[sz]ing|scanning|watching) (who|my|me|faces|the face)\b",
    r"\b(you are|youre) (now )?(free|unrestricted|unlimited|in \w+ mode)\b",
    r"\bpretend\b.*\b(no|without)\b",
    r"\b(no|zero|without any) (safety|limits?|rules|restrictions|checks|geo ?fence|fence|ceiling|failsafes?)\b",
    r"\bunrestricted\b|\bunlimited\b|\bno holds barred\b",
    r"\b(dont|do not|never|stop) (land|return|come back|descend)\w*\b.*\b(battery|low|fence|geofence|limit|signal)",
    r"\b(rules?|warnings?|limits?|restrictions?|checks?|failsafes?|fence|geofence)\b.*\b(no longer|dont|do not|doesnt|"
    r"does not|never|wont|will not) (apply|matter|count|exist)",
    r"\b(switch|swap|replace|transfer|change|hand over|move) (the )?(operator|pilot|control|controls|admin)\b",
    r"\btake over\b.*\b(control|controls|operator|pilot)?",
    r"\b(turn|switch|shut) of\b.*\b(" + SAFETY_OBJECTS + r")\b",
    r"\b(fly|go|move|head|climb|rise|ascend|travel|cross)\b.*\b(past|beyond|outside|over|above|through|higher than|"
    r"out of|across|farther than|further than)\b.*\b" + _BOUNDS + r"\b",
    r"\b(allow|let|permit|enable)\b.*\b(fly|control|command|pilot|operate|steer)\b.*\b(you|it|the drone)\b",
    r"\b(accept|take|obey|follow|listen to|respond to)\b.*\b(commands|orders|instructions|control)\b.*\b" + _OTHERS,
    r"\btrust (everyone|everybody|anyone|anybody|all|strangers|him|her|them|\w+ else)\b",
    r"\b(no need|dont need|do not need|neednt|no longer need) (for|to)\b.*\b(check|verify|scan|recogni[sz]e|"
    r"authenticat\w*|identif\w*|face|faces|limits?|fence|geofence|safety)",
    r"\bwithout (the |a |any |my |your )?(face|authori|authenticat|identity|verification|check|limits?|geo ?fence|"
    r"fence|restrictions|rules|safety)",
    r"\b(unlimited|unrestricted|infinite|limitless|maximum|max) (range|speed|altitude|height|power|thrust)\b.*"
    r"\b(mode|on|unlock|enable)?",
    r"\bunlock\b",
    r"\b(switch|turn|shut|take|knock|power)\b.*\b(" + SAFETY_OBJECTS + r")\b.*\b(off|down|out)\b",
    # Handing over authority: "give dave control", "hand the controls to my friend", "treat eve as the pilot".
    r"\b(give|grant|hand|pass|transfer|share|lend|assign)\b.*\b(control|controls|access|permission|permissions|"
    r"rights|authority|command|privileges|the keys)\b",
    r"\b(accept|recogni[sz]e|treat|consider|trust|register|enroll|enrol|add|make)\b.*\bas (the |an |a |my )?"
    r"(new |second |another )?(operator|pilot|admin|owner|user|master|controller)\b",
    r"\b(allow|let|permit|enable)\b (?!me\b|us\b)\w+( \w+)? (to )?(fly|control|command|pilot|operate|steer|use|"
    r"take over)\b",
    r"\b(new|another|different|second) (operator|pilot|admin|owner)\b",
    r"\b(operator|pilot|admin|owner) (is|should be|will be) (now )?(\w+)\b(?<!\bme)",
    r"\b(dont|do not|stop|never) (verify|check|scan|recogni[sz]e|authenticat\w*|identify|look at) (my|me|faces?|"
    r"the face|who)\b",
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
    goto_keep_position: set[int] = field(default_factory=set)       # GOTO steps that only set the height
    clarification: str = ""           # a question to ask instead of moving
    refusal: str = ""                 # why the command is refused outright
    unparsed: str = ""                # text the grammar could not read (for the LLM stage)
    notes: list[str] = field(default_factory=list)                 # how it was read (logs, bench)

    @property
    def complete(self) -> bool:
        return bool(self.steps) and not (self.clarification or self.refusal or self.unparsed)


class _Ambiguous(Exception):
    """The command is understood but needs a detail the speaker did not give."""


# ------------------------------------------------------------------------------------------------ normalising
def normalise(text: str) -> list[str]:
    """Lower-case tokens; punctuation becomes the separators "," "." ";"; numbers keep their sign and decimals."""
    text = text.lower().replace("°", " degrees ").replace("’", "'")
    text = re.sub(r"\b(m|km|ft|mi)\s*/\s*(s|h|hr|sec)\b", r"\1 per \2", text)  # "m/s" → "m per s"
    text = re.sub(r"\bslash\b", " per ", text)                            # recognisers spell "m/s" out
    text = re.sub(r"\b([xyz])(-?\d)", r"\1 \2", text)                     # "x3, y2" → "x 3, y 2"
    text = re.sub(r"\bmph\b", "miles per hour", text)
    text = re.sub(r"\b(kph|kmh)\b", "km per hour", text)
    text = re.sub(r"(\d)\s*(m|cm|ft|s|deg|km)\b", r"\1 \2", text)        # "2m" → "2 m"
    text = re.sub(r"'s\b", "s", text)                                        # "meter's" → "meters"
    text = re.sub(r"(?<![\w.])-(?=\d)", " minus ", text)                     # "-3" → "minus 3"
    text = text.replace("-", " ").replace("'", "")                          # "take-off", "don't" → "dont"
    text = re.sub(r"(\d),(\d{3})\b", r"\1\2", text)                           # "1,000"
    text = re.sub(r"[^a-z0-9.,;?!]+", " ", text)
    text = re.sub(r"[?!]", " . ", text)
    text = re.sub(r"(?<!\d)[.](?!\d)|(?<=\d)[.](?!\d)|(?<!\d)[.](?=\d)", " . ", text)   # sentence dots, not decimals
    text = text.replace(",", " , ").replace(";", " ; ")
    tokens = text.split()
    # "anti clockwise", "counter clockwise" → one word
    joined: list[str] = []
    for token in tokens:
        if token == "clockwise" and joined and joined[-1] in ("anti", "counter"):
            joined[-1] = joined[-1] + "clockwise"
        else:
            joined.append(token)
    # A word the recogniser split in two ("dis able", "de activate"): joined where the pieces are not words.
    joined = _join_split_words(joined)
    for idiom in IDIOMS:                                  # "go ahead and take off" → "take off"
        n = len(idiom)
        joined = [t for i, t in enumerate(joined) if not any(
            tuple(joined[j:j + n]) == idiom for j in range(max(0, i - n + 1), i + 1))]
    # Number homophones right before a unit ("fly forward to meters"): the recogniser's spelling of the number.
    units = set(UNITS_TO_METRES) | DEGREE_UNITS | set(SECOND_UNITS) - {"s", "m"}
    for i, token in enumerate(joined[:-1]):
        if token in NUMBER_HOMOPHONES and joined[i + 1] in units and not (i > 0 and _is_number_word(joined[i - 1])):
            joined[i] = NUMBER_HOMOPHONES[token]
    return joined


_SPLIT_PREFIXES = {"dis", "de", "un", "re", "over", "by", "en", "in", "pre", "de", "auto", "geo", "take", "touch"}
_JOINABLE = {"disable", "deactivate", "unlock", "override", "bypass", "enable", "reactivate", "geofence",
             "takeoff", "touchdown", "autopilot", "unfollow", "disarm", "unrestricted", "unlimited"}


def _join_split_words(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for token in tokens:
        if out and out[-1] in _SPLIT_PREFIXES and out[-1] + token in _JOINABLE:
            out[-1] = out[-1] + token
        else:
            out.append(token)
    return out


def _is_number_word(token: str) -> bool:
    return token in SMALL_NUMBERS or token in TENS or bool(re.fullmatch(r"\d+(\.\d+)?", token))


# The words safety requests are made of, for recognising them through recognition slips ("bipass", "geo fents").
SAFETY_WORDS = ("bypass", "disable", "override", "deactivate", "authentication", "authorisation", "authorization",
                "authorise", "authorize", "geofence", "fence", "ceiling", "operator", "pilot", "failsafe", "unlock",
                "unrestricted", "unlimited", "restrictions", "safety", "limits", "identity", "verify", "permission")


def refusal_for(text: str) -> str:
    """A reason to refuse when the command asks to change safety limits or authorisation (or to drop rules).
    Checked on the words as heard and with unknown words read as the safety word they sound like."""
    tokens = [t for t in normalise(text) if t not in (",", ".", ";")]
    heard = [" ".join(tokens), " ".join(_safety_sound_alikes(tokens))]
    for pattern in SAFETY_PATTERNS:
        if any(re.search(pattern, words) for words in heard):
            return SAFETY_REFUSAL
    return ""


def _safety_sound_alikes(tokens: list[str]) -> list[str]:
    out = []
    for token in tokens:
        if token in VOCABULARY or _is_number_word(token) or len(token) < 4:
            out.append(token)
            continue
        key = phonetic_key(token)
        out.append(next((w for w in SAFETY_WORDS if phonetic_key(w) == key), token))
    return out


# What keeps the vehicle safe or decides who commands it, by name: the safety patterns' objects and the domain's
# other words for them (a request that names one and is no plain command is refused, core/understanding.py).
PROTECTED_THINGS = SAFETY_OBJECTS + r"|limiters?|liveness|fail ?safes?|battery|edge|speed limits?|orders|admin|" \
    r"authori[sz]ed|allowed"
# Saying the vehicle should keep within a protected thing is compliance, not a request to change it.
_COMPLIANCE = re.compile(r"\b((stay|staying|keep|keeping|remain|remaining)( well)? |(that is|thats|which is|its)"
                         r"( well)? )?(under|below|beneath|inside|within|in) (the |your |my )?(" + PROTECTED_THINGS
                         + r")\b|\b(for|because of) (your |my |our )?safety\b")


def without_compliance(text: str) -> str:
    """``text`` with its "stay under the ceiling" / "inside the limits" phrases taken out (normalised words)."""
    words = " ".join(t for t in normalise(text))
    return re.sub(r"\s+", " ", _COMPLIANCE.sub(" ", words)).strip(" ,")


def names_protected_thing(text: str) -> str:
    """The protected thing (geofence, ceiling, limits, failsafe, face check, operator, ...) the text names outside
    a compliance phrase, or ""."""
    words = without_compliance(text).replace(",", " ").replace(".", " ").replace(";", " ")
    found = re.search(r"\b(" + PROTECTED_THINGS + r")\b", words)
    return found.group(0) if found else ""


SAFETY_REFUSAL = ("I can't change safety limits, the geofence or who is authorised, and I don't ignore my rules; "
                  "that has to be done by an engineer in the configuration")


# -------------------------------------------------------------------------------------------------- phonetics
def phonetic_key(text: str) -> str:
    """A coarse sound-alike key (a simplified metaphone): "write" ~ "right", "this end" ~ "descend",
    "a cent" ~ "ascend", "hoover" ~ "hover", "for word" ~ "forward". Spaces are ignored."""
    word = re.sub(r"[^a-z]", "", text.lower())
    if not word:
        return ""
    for pattern, repl in (("^wr", "r"), ("^kn", "n"), ("^wh", "w"), ("ph", "f"), ("gh", ""), ("ck", "k"),
                          ("sch", "sk"), ("th", "t"), ("c(?=[eiy])", "s"), ("sc(?=[eiy])", "s"), ("c", "k"),
                          ("q", "k"), ("x", "ks"), ("z", "s"), ("v", "f"), ("d", "t"), ("b", "p"), ("g", "k"),
                          ("y", "")):
        word = re.sub(pattern, repl, word)
    if not word:
        return ""
    head, tail = word[0], re.sub(r"[aeiouw]", "", word[1:])
    key = head + tail
    return re.sub(r"(.)\1+", r"\1", key)


# ----------------------------------------------------------------------------------------------------- parser
@dataclass
class Quantity:
    value: float
    kind: str           # "length" (m) | "angle" (deg) | "time" (s) | "speed" (m/s) | "number"
    start: int
    end: int


class _Tokens:
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
            # "100 20 degrees": a recogniser's digits for "a hundred and twenty"
            if re.fullmatch(r"[1-9]00", token) and re.fullmatch(r"[1-9]\d?", self.peek()):
                value += float(self.peek())
                self.pos += 1
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


@dataclass
class Clause:
    tokens: list[str]
    intent: str = ""
    intent_at: int = -1
    intent_len: int = 0


def stem(token: str) -> str:
    """The lexicon form of an inflected verb: "following" → "follow", "turning" → "turn", "landed" → "land"."""
    for suffix, repl in (("ying", "y"), ("ing", ""), ("ied", "y"), ("ed", ""), ("es", ""), ("s", "")):
        if len(token) > len(suffix) + 2 and token.endswith(suffix):
            base = token[:-len(suffix)] + repl
            for candidate in (base, base + "e", base[:-1] if len(base) > 2 and base[-1] == base[-2] else base):
                if candidate in INTENT_PHRASES or candidate in DIRECTIONS:
                    return candidate
    return token


# Intents that need numbers to mean anything ("hold your position" is not a go-to).
_NEEDS_NUMBERS = {"goto", "altitude"}


def phrase_spans(tokens: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, phrase) of the lexicon phrases in the tokens (stems too), without those lying inside a
    longer one ("take off" inside "take off point", "launch" inside "return to launch")."""
    has_numbers = bool(_Tokens(tokens).quantities())
    stems = [stem(t) for t in tokens]
    spans: set[tuple[int, int, str]] = set()
    for words in (tokens, stems):
        for n in (4, 3, 2, 1):
            for i in range(len(words) - n + 1):
                phrase = " ".join(words[i:i + n])
                if phrase in INTENT_PHRASES and not (INTENT_PHRASES[phrase][0] in _NEEDS_NUMBERS and not has_numbers):
                    spans.add((i, i + n, phrase))
    return sorted((a for a in spans if not any(b[0] <= a[0] and a[1] <= b[1] and (b[1] - b[0]) > (a[1] - a[0])
                                                for b in spans)), key=lambda span: span[0])


def _find_intent(tokens: list[str]) -> tuple[str, int, int]:
    """(intent, position, length) of the most specific lexicon phrase in the tokens; ("", -1, 0) when none."""
    best = ("", -1, 0, -1)
    for start, end, phrase in phrase_spans(tokens):
        intent, rank = INTENT_PHRASES[phrase]
        score = rank * 10 + (end - start)
        if score > best[3]:
            best = (intent, start, end - start, score)
    return best[0], best[1], best[2]


def _phrases_in(tokens: list[str]) -> list[str]:
    """Lexicon phrases present in the tokens, in order."""
    return [phrase for _, _, phrase in phrase_spans(tokens)]


def _standalone(tokens: list[str]) -> bool:
    """Can this piece be a command by itself (a verb, or a direction with its distance)?"""
    content = [t for t in tokens if t not in FILLERS or t in DIRECTIONS]
    if not content:
        return False
    if _find_intent(tokens)[0]:
        return True
    reader = _Tokens(tokens)
    has_quantity = bool(reader.quantities())
    return any(t in DIRECTIONS for t in tokens) and has_quantity


def split_clauses(tokens: list[str]) -> list[list[str]]:
    hard: list[list[str]] = [[]]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in HARD_SEPARATORS or (token == "after" and tokens[i + 1:i + 2] == ["that"]) \
                or (token == "first" and i == 0):
            hard.append([])
            i += 2 if token == "after" else 1
            continue
        if token == "and" and tokens[i + 1:i + 2] in (["then"], ["finally"], ["after"]):
            i += 1
            continue
        hard[-1].append(token)
        i += 1
    clauses: list[list[str]] = []
    for segment in hard:
        pieces: list[tuple[str, list[str]]] = [("", [])]
        for token in segment:
            if token in SOFT_SEPARATORS:
                pieces.append((token, []))
            else:
                pieces[-1][1].append(token)
        current: list[str] = []
        for separator, piece in pieces:
            if not piece:
                continue
            if current and _standalone(piece) and _standalone(current):
                clauses.append(current)
                current = list(piece)
            elif current and _standalone(piece) and not _standalone(current):
                # A leading fragment without a verb ("first", "okay so") joins the command that follows.
                current = current + piece
            else:
                current = current + ([separator] if current and separator else []) + piece
        if current:
            clauses.append(current)
    return clauses


def _merge_split_turns(clauses: list[list[str]]) -> list[list[str]]:
    """ "turn 90 degrees, turn left": an angle without a side and a side without an angle are one turn."""
    merged: list[list[str]] = []
    for clause in clauses:
        if merged and _find_intent(merged[-1])[0] == "turn" and _find_intent(clause)[0] == "turn":
            prev_angle = any(q.kind == "angle" for q in _Tokens(merged[-1]).quantities())
            prev_side = any(t in TURN_SIDES for t in merged[-1])
            side = any(t in TURN_SIDES for t in clause)
            angle = bool(_Tokens(clause).quantities())
            if (prev_angle and not prev_side and side and not angle) or (prev_side and not prev_angle and angle
                                                                           and not side):
                merged[-1] = merged[-1] + clause
                continue
        merged.append(clause)
    return merged


class ClauseReader:
    """Turns one clause into plan steps; raises _Ambiguous for a missing detail, returns False if unreadable."""

    def __init__(self, result: ParseResult):
        self.result = result

    def read(self, clause: Clause) -> bool:
        """Append the clause's steps (repeated when it says "twice" / "three times")."""
        before = len(self.result.steps)
        if not self._read_once(clause):
            return False
        tokens = clause.tokens
        counts = [q.value for q in _Tokens(tokens).quantities() if q.kind == "count"]
        repeat = int(counts[0]) if counts else (2 if "twice" in tokens else 3 if "thrice" in tokens else 1)
        if repeat > 1:
            once = self.result.steps[before:]
            for _ in range(min(repeat, 100) - 1):
                self.result.steps.extend(once)
        return True

    def _read_once(self, clause: Clause) -> bool:
        tokens = [t for t in clause.tokens if t not in (",", ".", ";")]
        text = " ".join(tokens)
        quantities = _Tokens(tokens).quantities()
        hedged = any(re.search(rf"\b{h}\b", text) for h in HEDGES)
        # Direction words inside a verb phrase belong to the verb ("come back down" goes down, "back up a metre"
        # goes back): phrases with a built-in direction give it, the others none.
        spans = [span for span in phrase_spans(tokens) if span[1] - span[0] > 1]
        directions = [(i, t) for i, t in enumerate(tokens) if t in DIRECTIONS
                      and not any(a <= i < b for a, b, _ in spans)]
        for a, _, phrase in spans:
            if phrase in VERB_DIRECTIONS:
                directions.append((a, VERB_DIRECTIONS[phrase]))
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
            height = (lengths or bare or [None])[0]
            steps.append(PlanStep(ActionType.TAKEOFF, z=height.value if height else 0.0))
            return True
        if intent == "land":
            place = re.search(r"\b(on|onto|at|near|beside|next to|by|in|inside|behind|under) (the|a|that|this|"
                              r"my|your) (\w+)", text)
            if place and place.group(3) not in ("ground", "spot", "floor", "place", "pad", "launch", "start"):
                raise _Ambiguous(f"I can only land straight down where I am; I can't find the {place.group(3)}. "
                                 "Say 'land' to land here.")
            steps.append(PlanStep(ActionType.LAND))
            return True
        if intent in ("unfollow", "stop"):
            steps.append(PlanStep(ActionType.STOP))
            return True
        if intent == "hover":
            seconds = (times or bare or [None])[0]
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
                raise _Ambiguous("Go to which position? Say x, y and optionally the height.")
        if not intent and angles and any(t in TURN_SIDES for t in tokens):
            intent = "turn"                  # "right thirty degrees": an angle makes it a turn
        if intent == "turn":
            return self._turn(tokens, angles + [q for q in bare if not self._turn_fraction(tokens, q)], hedged)
        implied = [VERB_DIRECTIONS[p] for p in _phrases_in(tokens) if p in VERB_DIRECTIONS and " " not in p]
        if not directions and implied:
            directions = [(clause.intent_at if clause.intent_at >= 0 else 0, implied[0])]
        vertical = [d for _, d in directions if DIRECTIONS[d][2]]
        if intent in ("climb", "descend", "altitude") or (directions and len(vertical) == len(directions)):
            sign = DIRECTIONS[vertical[0]][2] if vertical else {"climb": 1, "descend": -1}.get(intent, 0)
            absolute = self._absolute_height(tokens, lengths + bare)
            if absolute is not None:
                self._height(absolute, speed)
                return True
            amount = (lengths or bare or [None])[0]
            metres = amount.value if amount else (HEDGE_METRES if hedged else None)
            if metres is None:
                what = {1: "climb", -1: "descend"}.get(sign)
                raise _Ambiguous(f"How far should I {what}?" if what else "To what height?")
            if not sign:
                raise _Ambiguous("Up or down?")
            steps.append(PlanStep(ActionType.MOVE_BY, z=sign * abs(metres), speed=speed))
            return True
        if intent == "move" or (not intent and directions):
            if not directions:
                if lengths or bare:
                    raise _Ambiguous("Which way should I go: forward, back, left, right, up or down?")
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
            amount = candidates[0] if candidates else None
            if amount is not None:
                used.add(id(amount))
            groups.append((word, amount))
        for word, amount in groups:
            metres = amount.value if amount else (HEDGE_METRES if hedged else None)
            if metres is None:
                raise _Ambiguous(f"How far should I go {word}?")
            ux, uy, uz = DIRECTIONS[word]
            self.result.steps.append(PlanStep(ActionType.MOVE_BY, x=ux * abs(metres), y=uy * abs(metres),
                                              z=uz * abs(metres), speed=speed))
        return True

    @staticmethod
    def _absolute_height(tokens: list[str], amounts: list[Quantity]) -> float | None:
        """ "to five metres", "an altitude of 3 m", "at a height of four meters" → the height; else None."""
        for amount in amounts:
            before = tokens[max(0, amount.start - 4):amount.start]
            if before and before[-1] == "by":
                continue                     # "increase your height by one meter" is relative
            if before and (before[-1] in ("to", "at") or {"altitude", "height", "elevation"} & set(before)):
                return amount.value
        return None

    def _height(self, height: float, speed: float) -> None:
        index = len(self.result.steps)
        self.result.goto_keep_position.add(index)
        self.result.steps.append(PlanStep(ActionType.GOTO, x=math.nan, y=math.nan, z=height, speed=speed))

    @staticmethod
    def _turn_fraction(tokens: list[str], quantity: Quantity) -> bool:
        """ "a quarter turn", "half a turn", "two turns": the number counts turns, not degrees."""
        after = tokens[quantity.end:quantity.end + 2]
        return bool(set(after) & {"turn", "turns", "rotation", "rotations", "circle", "circles", "spin", "spins",
                                  "revolution", "revolutions"})

    def _turn(self, tokens: list[str], angles: list[Quantity], hedged: bool) -> bool:
        text = " ".join(tokens)
        sides = [TURN_SIDES[t] for t in tokens if t in TURN_SIDES]
        turns = [q for q in _Tokens(tokens).quantities() if self._turn_fraction(tokens, q)]
        angle = None
        if angles:
            angle = abs(angles[0].value)
        elif turns:
            angle = abs(turns[0].value) * 360.0
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
            raise _Ambiguous("Which way should I turn, left or right?")
        if angle is None:
            angle = DEFAULT_TURN_DEGREES
        self.result.steps.append(PlanStep(ActionType.ROTATE, yaw_deg=sign * angle))
        return True

    def _follow(self, tokens: list[str]) -> bool:
        target = FollowTarget()
        words = set(tokens)
        classes = {"car": "car", "cars": "car", "truck": "truck", "dog": "dog", "cat": "cat", "bicycle": "bicycle",
                   "bike": "bicycle", "cyclist": "bicycle", "ball": "sports ball", "horse": "horse",
                   "motorbike": "motorcycle", "motorcycle": "motorcycle", "bus": "bus", "boat": "boat",
                   "bird": "bird", "vehicle": "car"}
        for token in tokens:
            if token in classes:
                target.target_class = classes[token]
                break
        if words & {"left", "leftmost"}:
            target.selector = "left"
        elif words & {"right", "rightmost"}:
            target.selector = "right"
        reader = _Tokens(tokens)
        numbers = [q for q in reader.quantities() if q.kind == "number"]
        if numbers and words & {"track", "number", "id", "person", "target", "no"}:
            target.selector, target.track_id = "track", int(numbers[0].value)
        elif words & {"track", "id"} and "number" in words and not numbers:
            raise _Ambiguous("Which track number should I follow?")
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
            or len([q for q in _Tokens(tokens).quantities() if q.kind in ("number", "length")]) >= 2 \
            and bool(re.search(r"\bto (minus )?[\d.]|\bto (minus )?(" + "|".join(list(SMALL_NUMBERS) + list(TENS))
                               + r")\b", text)) and not any(t in DIRECTIONS for t in tokens)

    def _goto(self, tokens: list[str]) -> bool:
        reader = _Tokens(tokens)
        coords: dict[str, float] = {}
        ordered: list[float] = []
        height = None
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token in ("x", "y", "z") and token not in coords:
                reader.pos = i + 1
                while reader.peek() in ("equals", "is", "=", "of", ","):
                    reader.pos += 1
                value = reader.number()
                if value is None:
                    raise _Ambiguous(f"What {token} coordinate should I go to?")
                if reader.peek() in UNITS_TO_METRES:
                    value *= UNITS_TO_METRES[reader.peek()]
                    reader.pos += 1
                coords[token] = value
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
                    height = value
                else:
                    ordered.append(value)
                i = reader.pos
                continue
            i += 1
        for axis, value in zip(("x", "y", "z"), ordered):
            coords.setdefault(axis, value)
        if height is not None:
            coords.setdefault("z", height)
        if not coords:
            return False
        if "x" not in coords or "y" not in coords:
            raise _Ambiguous("Go to which position? Say x, y and optionally the height.")
        index = len(self.result.steps)
        if "z" not in coords:
            self.result.goto_keep_altitude.add(index)
        self.result.steps.append(PlanStep(ActionType.GOTO, x=coords["x"], y=coords["y"],
                                          z=coords.get("z", math.nan)))
        return True


IntentClassifier = Callable[[str], "tuple[str, float] | None"]

# Everyday words that are never a misheard command word (the phonetic repair leaves them alone).
COMMON_WORDS = set("""what whats when where which who whos whom why how is are am was were be been being do does did
have has had i you he she it we they me him her us them my your his its our their this that these those there here
not no yes all any some every each much many more most less few very too also just only even still already yet
in on at by for with about against between into through during before after above below from up down out off over
under again further once same so than then now today tonight tomorrow anyone everyone someone nobody people person
thing things way time battery see say can could would should will shall may might must know think want like tell
show give take make get go come look find keep let put seem feel try leave call ask need use work good great nice
fine well ok okay sure thanks thank hello hi hey please sorry doing going flying camera picture photo speed altitude
height position mode operator help while until because if or but nor as of the a an and""".split())


def _vocabulary() -> set[str]:
    words = set(FILLERS) | set(DIRECTIONS) | set(TURN_SIDES) | set(UNITS_TO_METRES) | DEGREE_UNITS \
        | set(SECOND_UNITS) | set(SMALL_NUMBERS) | set(TENS) | HARD_SEPARATORS | SOFT_SEPARATORS | COMMON_WORDS
    for phrase in INTENT_PHRASES:
        words.update(phrase.split())
    words.update({"hundred", "thousand", "half", "quarter", "point", "minus", "x", "y", "z", "per", "person", "me",
                  "car", "number", "started", "took", "around", "meters", "following", "turning", "landing"})
    return words


VOCABULARY = _vocabulary()
# Sound-alike targets: directions and turn sides first (they are the commonest slips), then the lexicon; not
# acronyms ("rth" would swallow "right").
_PHONETIC_TARGETS: dict[str, str] = {}
for _phrase in list(DIRECTIONS) + list(TURN_SIDES) + list(INTENT_PHRASES):
    _key = phonetic_key(_phrase)
    if len(_key) >= 2 and _phrase not in ("rtl", "rth"):
        _PHONETIC_TARGETS.setdefault(_key, _phrase)


def unexplained_words(text: str) -> list[str]:
    """Words of ``text`` that no part of the command language accounts for (not a command word, slot, number,
    unit, filler or common word). In a transcript they are a sign the recogniser misheard: "Treaty of our pilot
    from home" still reads as "return home", but 'treaty' and 'pilot' say the reading is a guess."""
    return [w for w in normalise(text) if w not in HARD_SEPARATORS and w not in SOFT_SEPARATORS
            and w not in VOCABULARY and not _is_number_word(w)]


_DETERMINERS = {"a", "an", "the", "this", "that", "these", "those", "my", "your", "his", "her", "our", "their",
                "some", "any", "another", "every", "each", "no"}


def phonetic_repair(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Replace words the recogniser may have misheard by the command word that sounds the same ("write" →
    right, "this end" → descend, "take of" → take off). Only windows holding a word outside the vocabulary, or
    a pair of function words that sounds like one command word, are touched; never numbers or separators."""
    out: list[str] = []
    notes: list[str] = []
    i = 0
    while i < len(tokens):
        replaced = False
        for n in (2, 1):
            window = tokens[i:i + n]
            if len(window) < n or any(w in (",", ".", ";") or _is_number_word(w) for w in window):
                continue
            phrase = " ".join(window)
            if phrase in INTENT_PHRASES or phrase in DIRECTIONS:
                continue
            unknown = [w for w in window if w not in VOCABULARY]
            if not unknown and not (n == 2 and not any(w in DIRECTIONS or w in INTENT_PHRASES for w in window[1:])
                                    and window[0] not in DIRECTIONS):
                continue
            key = phonetic_key("".join(window))
            target = _PHONETIC_TARGETS.get(key)
            if target in INTENT_PHRASES and i > 0 and tokens[i - 1] in _DETERMINERS:
                continue                    # "do a trick" is a noun after "a", not the verb "track"
            if target and len(key) >= 2 and target != phrase and (unknown or len(key) >= 3):
                out.extend(target.split())
                notes.append(f"heard '{phrase}' as '{target}'")
                i += n
                replaced = True
                break
        if not replaced:
            out.append(tokens[i])
            i += 1
    return out, notes


def parse_command(text: str, classify: IntentClassifier | None = None) -> ParseResult:
    """Read one utterance. Never raises for odd input: the result says what to do with it."""
    result = ParseResult()
    refusal = refusal_for(text)
    if refusal:
        result.refusal = refusal
        return result
    tokens = normalise(text)
    clauses = _merge_split_turns([c for c in split_clauses(tokens)
                                  if [w for w in c if w not in FILLERS or w in DIRECTIONS]])
    try:
        for index, words in enumerate(clauses):
            intent = _find_intent(words)[0]
            quantities = _Tokens(words).quantities()
            nxt = _find_intent(clauses[index + 1])[0] if index + 1 < len(clauses) else ""
            # "come down and land", "descend and land": going down without a distance is part of the landing.
            if nxt == "land" and not quantities and (intent == "descend" or "down" in words):
                continue
            # A bare "go" / "let's move" beside real commands only says "do it".
            if intent == "move" and len(clauses) > 1 and not quantities and not any(
                    w in DIRECTIONS for w in words) and not any(stem(w) in VERB_DIRECTIONS for w in words):
                continue
            if not _read_best(words, classify, result):
                result.unparsed = " ".join(" ".join(c) for c in clauses[index:])
                break
            # The same one-shot action twice in a row ("bring it down and land") is one.
            if len(result.steps) >= 2 and result.steps[-1].type == result.steps[-2].type and \
                    result.steps[-1].type in (ActionType.LAND, ActionType.TAKEOFF, ActionType.RETURN_HOME,
                                              ActionType.FOLLOW) and result.steps[-1].z == result.steps[-2].z \
                    and result.steps[-1].target_track_id == result.steps[-2].target_track_id:
                follow = result.follow.pop(len(result.steps) - 1, None)
                result.steps.pop()
                if follow is not None:
                    result.follow[len(result.steps) - 1] = follow
    except _Ambiguous as question:
        result.clarification = str(question)
        result.steps.clear()
    return result


def _candidates(words: list[str], classify: IntentClassifier | None):
    """Readings of one clause, most literal first: as heard; with sound-alike repairs (only where a repaired word
    becomes the verb or a direction); with the intent from sentence similarity (only when no verb was heard)."""
    intent, at, length = _find_intent(words)
    yield Clause(words, intent, at, length), []
    repaired, repairs = phonetic_repair(words)
    if repairs:
        fixed_intent, fixed_at, fixed_length = _find_intent(repaired)
        verb = " ".join(repaired[fixed_at:fixed_at + fixed_length]) if fixed_at >= 0 else ""
        targets = [note.split("as '")[1].rstrip("'") for note in repairs]
        slots_only = all(t in DIRECTIONS or t in TURN_SIDES for t in targets)
        if slots_only and fixed_intent == intent or not intent and all(
                t in DIRECTIONS or t in TURN_SIDES or t == verb for t in targets):
            yield Clause(repaired, fixed_intent, fixed_at, fixed_length), repairs
    if classify is not None and not intent:
        content = [w for w in words if w not in (",", ".", ";") and (w not in FILLERS or w in DIRECTIONS)]
        guess = classify(" ".join(content)) if content else None
        if guess is not None:
            yield Clause(words, guess[0], -1, 0), [
                f"intent '{guess[0]}' by similarity {guess[1]:.2f}"]


def _read_best(words: list[str], classify: IntentClassifier | None, result: ParseResult) -> bool:
    """Read the clause into result with the first candidate reading that yields steps; a question from the
    literal reading is asked only when no other reading works."""
    question: _Ambiguous | None = None
    for clause, notes in _candidates(words, classify):
        trial = ParseResult()
        try:
            if not ClauseReader(trial).read(clause):
                continue
        except _Ambiguous as asked:
            question = question or asked
            continue
        offset = len(result.steps)
        result.steps.extend(trial.steps)
        result.follow.update({offset + i: t for i, t in trial.follow.items()})
        result.goto_keep_altitude.update(offset + i for i in trial.goto_keep_altitude)
        result.goto_keep_position.update(offset + i for i in trial.goto_keep_position)
        result.notes.extend(notes)
        return True
    if question is not None:
        raise question
    return False
