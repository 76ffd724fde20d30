"""The words of commands: the verb lexicon (phrase → intent and how specific it is), the directions and turn sides,
verbs that carry their direction, hedges ("a bit") and the amounts they mean, and finding the lexicon phrases and
the most specific intent in a clause (inflected verbs too: "following" → follow).
"""
from __future__ import annotations

from mmchat_ros.core.language.numbers import NumberReader

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
_lexicon("altitude", 6, "altitude", "height", "elevation")
_lexicon("goto", 6, "go to x", "position", "coordinates", "coordinate", "waypoint", "point x", "location")

# Verbs that carry their direction ("advance two metres", "reverse three metres").
VERB_DIRECTIONS = {"advance": "forward", "proceed": "forward", "reverse": "back", "retreat": "back",
                   "back up": "back", "back off": "back", "back away": "back", "climb": "up", "ascend": "up",
                   "rise": "up", "raise": "up", "elevate": "up", "gain": "up", "lift": "up", "soar": "up",
                   "mount": "up", "descend": "down", "drop": "down", "lower": "down", "sink": "down", "lose": "down",
                   "dip": "down", "come down": "down", "go down": "down", "go higher": "up", "fly higher": "up",
                   "get higher": "up", "go lower": "down", "fly lower": "down", "get lower": "down",
                   "increase altitude": "up", "decrease altitude": "down", "increase": "up", "decrease": "down",
                   "reduce": "down"}

# How much a hedge without a number means ("a little to the left"): documented in docs/understanding.md.
HEDGE_METRES = 0.5
HEDGE_DEGREES = 15.0
DEFAULT_TURN_DEGREES = 90.0
HEDGES = ("a little bit", "a little", "a bit", "a tad", "a touch", "slightly", "a smidge", "just a bit",
          "a few centimeters", "a few centimetres", "a few inches")


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
    has_numbers = bool(NumberReader(tokens).quantities())
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


def find_intent(tokens: list[str]) -> tuple[str, int, int]:
    """(intent, position, length) of the most specific lexicon phrase in the tokens; ("", -1, 0) when none."""
    best = ("", -1, 0, -1)
    for start, end, phrase in phrase_spans(tokens):
        intent, rank = INTENT_PHRASES[phrase]
        score = rank * 10 + (end - start)
        if score > best[3]:
            best = (intent, start, end - start, score)
    return best[0], best[1], best[2]


def phrases_in(tokens: list[str]) -> list[str]:
    """Lexicon phrases present in the tokens, in order."""
    return [phrase for _, _, phrase in phrase_spans(tokens)]
