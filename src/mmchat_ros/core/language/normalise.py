"""From an utterance to the tokens the reader works on: lower case, punctuation to the separators "," "." ";",
units split from their numbers ("2m" → "2 m"), signs kept on numbers, words a recogniser split in two joined
("dis able"), idioms that only mean "do it" dropped, and number homophones ("to", "for", "won") read as numbers
where a unit follows them. ``FILLERS`` are the tokens that carry no meaning for the reading.
"""
from __future__ import annotations

import re

from mmchat_ros.core.language.numbers import (DEGREE_UNITS, NUMBER_HOMOPHONES, SECOND_UNITS, UNITS_TO_METRES,
                                              is_number_word)

# Idioms that only mean "do it" ("go ahead and take off", "let's go and land").
IDIOMS = (("go", "ahead", "and"), ("go", "on", "and"), ("lets", "go", "and"), ("come", "on", "and"),
          ("lets", "get", "going"), ("get", "going"), ("lets", "go"), ("here", "we", "go"))

# Tokens that carry no meaning for the reading (politeness, hedges of attention, articles).
FILLERS = {"please", "the", "drone", "robot", "okay", "ok", "hey", "now", "quickly", "slowly", "just", "can", "you",
           "could", "would", "kindly", "um", "uh", "er", "erm", "hmm", "like", "so", "well", "alright", "right",
           "i", "id", "want", "wed", "we", "lets", "let", "us", "need", "to", "yourself", "your", "yours", "it",
           "a", "an", "of", "by", "about", "around", "approximately", "roughly", "some", "go", "and", "then",
           "buddy", "mate", "little", "guy", "there", "here", "gently", "carefully", "immediately", "again",
           "for", "me", "do", "me", "make", "another", "more", "further", "other", "way", "same", "be", "will",
           "im", "going", "gonna", "ask", "like", "tell", "that", "this", "is", "with", "my", "our", "in", "on",
           "at", "towards", "toward", "into", "onto", "over", "off", "out", "as", "if", "mind", "maybe"}


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
        if token in NUMBER_HOMOPHONES and joined[i + 1] in units and not (i > 0 and is_number_word(joined[i - 1])):
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
