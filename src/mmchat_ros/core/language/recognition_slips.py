"""Speech-recognition slips: a coarse sound-alike key, the vocabulary of the command language, the words of a
transcript it does not account for (a sign the recogniser misheard), numbers a recogniser confuses ("thirteen" for
"thirty") and a phrase it repeats at the end (a decoder loop), and the phonetic repair that reads a misheard word as
the command word it sounds like ("write" → right, "this end" → descend).
"""
from __future__ import annotations

import re

from mmchat_ros.core.language.clause_reader import (COORDINATE_LINKS, FOLLOW_CLASSES, FOLLOW_NUMBER_WORDS,
                                                    FOLLOW_SELECTORS, REPEAT_WORDS, TURN_COUNT_WORDS)
from mmchat_ros.core.language.clauses import HARD_SEPARATORS, SOFT_SEPARATORS
from mmchat_ros.core.language.lexicon import DIRECTIONS, HEDGES, INTENT_PHRASES, TURN_SIDES
from mmchat_ros.core.language.normalise import FILLERS, normalise
from mmchat_ros.core.language.numbers import (DEGREE_UNITS, SECOND_UNITS, SMALL_NUMBERS, TENS, UNITS_TO_METRES,
                                              is_number_word)


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
    # a leading vowel is kept as a vowel, not which one: recognisers swap them ("into clockwise" ~ anticlockwise)
    head, tail = "a" if word[0] in "aeiou" else word[0], re.sub(r"[aeiouw]", "", word[1:])
    key = head + tail
    return re.sub(r"(.)\1+", r"\1", key)


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
    for phrase in list(INTENT_PHRASES) + list(HEDGES):
        words.update(phrase.split())
    # the words the slots read: follow targets, track numbers, turn counts, coordinates, repetitions
    words |= set(FOLLOW_CLASSES) | FOLLOW_NUMBER_WORDS | FOLLOW_SELECTORS | TURN_COUNT_WORDS | set(COORDINATE_LINKS) \
        | REPEAT_WORDS
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
            and w not in VOCABULARY and not is_number_word(w)]


# A quick "-ty" comes out of the recogniser as "-teen" ("thirty" → thirteen, "fifty" → fifteen: every such slip on
# the dev split's voices went that way), so a "-teen" in a transcript may be its "-ty".
_TEEN_TO_TY = {word: next(t for t, v in TENS.items() if v == 10 * (value - 10))
               for word, value in SMALL_NUMBERS.items() if 13 <= value <= 19}
_TEEN_TO_TY.update({str(SMALL_NUMBERS[word]): str(TENS[tens]) for word, tens in _TEEN_TO_TY.items()})


def confusable_numbers(text: str) -> list[tuple[str, str]]:
    """(heard, may have been said) for each number of ``text`` a recogniser confuses with another: ("thirteen",
    "thirty"), ("15", "50")."""
    return [(w, _TEEN_TO_TY[w]) for w in normalise(text) if w in _TEEN_TO_TY]


def repeated_phrase(text: str) -> str:
    """The phrase of two or more words that ends ``text`` twice in a row ("fly forward two meters, fly forward two
    metres": a recogniser's decoder looping at the end), or ""; units count as the same in any spelling."""
    words = [w for w in normalise(text) if w not in (",", ".", ";")]
    same = [str(UNITS_TO_METRES[w]) if w in UNITS_TO_METRES else w for w in words]
    return next((" ".join(words[-length:]) for length in range(len(same) // 2, 1, -1)
                 if same[-2 * length:-length] == same[-length:]), "")


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
            if len(window) < n or any(w in (",", ".", ";") or is_number_word(w) for w in window):
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
            if n == 2 and window[0] not in VOCABULARY and _PHONETIC_TARGETS.get(phonetic_key(window[0])) == target:
                continue                    # the misheard word alone sounds like it: "write a tad" keeps its "a"
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
