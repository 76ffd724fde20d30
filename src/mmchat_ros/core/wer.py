"""Word error rate, with the text normalisation that makes recogniser output comparable to a reference.

Normalisation: lower case; punctuation dropped (hyphens and slashes split words, apostrophes inside words kept, a
decimal point between digits kept); British spellings and compounds folded (metres -> meters, takeoff -> take off);
"°" -> degrees; spelled-out numbers become digits ("forty five" -> 45, "one hundred and twenty" -> 120, "one point
five" -> 1.5, "1,000" -> 1000), so "turn 90 degrees" and "turn ninety degrees" are the same words. Homophones such as
"to"/"two" are *not* folded: telling them apart is the recogniser's job.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

UNITS = {"zero": 0, "oh": None, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
         "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
         "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
        "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000}

# Spelling variants and compounds that name the same thing; keys are whole normalised words.
WORD_VARIANTS = {
    "metres": "meters", "metre": "meter", "centimetres": "centimeters", "centimetre": "centimeter",
    "takeoff": "take off", "okay": "ok", "°": "degrees", "colour": "color", "grey": "gray",
}


def _split_words(text: str) -> list[str]:
    text = text.lower().replace("°", " ° ")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)           # 1,000 -> 1000
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)              # keep 1.5, drop sentence dots
    text = re.sub(r"[^\w\s'.°]", " ", text)                      # other punctuation (hyphens, slashes) splits
    words = []
    for word in text.split():
        word = word.strip("'")
        if word:
            words.extend(WORD_VARIANTS.get(word, word).split())
    return words


def _is_number_word(word: str) -> bool:
    return word in TENS or word in SCALES or (word in UNITS and UNITS[word] is not None)


def _parse_number(words: list[str], i: int) -> tuple[str, int] | None:
    """The number spelled from words[i:], as (digits, words consumed); None when words[i] starts no number."""
    if not _is_number_word(words[i]) or words[i] in SCALES:
        return None
    total, current, j, last = 0, 0, i, None
    while j < len(words):
        word = words[j]
        if word == "and" and last in SCALES and j + 1 < len(words) and \
                (words[j + 1] in TENS or UNITS.get(words[j + 1]) is not None):
            j += 1
            continue
        if word in UNITS and UNITS[word] is not None:
            if last in UNITS or last in TENS and UNITS[word] >= 10 or last == "teen":
                break            # "two three" is two numbers; "twenty twelve" too
            current += UNITS[word]
            last = word if UNITS[word] < 10 else "teen"
        elif word in TENS:
            if last in UNITS or last in TENS or last == "teen":
                break
            current += TENS[word]
            last = word
        elif word in SCALES:
            scale = SCALES[word]
            if current == 0:
                break
            if scale == 100:
                current *= 100
            else:
                total += current * scale
                current = 0
            last = word
        else:
            break
        j += 1
    value = total + current
    digits = str(value)
    # decimals: "one point five" -> 1.5 (digit by digit after the point)
    if j + 1 < len(words) and words[j] == "point" and UNITS.get(words[j + 1]) is not None \
            and UNITS[words[j + 1]] < 10:
        decimals = []
        j += 1
        while j < len(words) and UNITS.get(words[j]) is not None and UNITS[words[j]] < 10:
            decimals.append(str(UNITS[words[j]]))
            j += 1
        digits += "." + "".join(decimals)
    return digits, j - i


def normalise(text: str) -> list[str]:
    """The comparable words of ``text``."""
    words = _split_words(text)
    out: list[str] = []
    i = 0
    while i < len(words):
        parsed = _parse_number(words, i)
        if parsed is None:
            out.append(words[i])
            i += 1
        else:
            out.append(parsed[0])
            i += parsed[1]
    return out


@dataclass(frozen=True)
class WerResult:
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        if self.reference_words == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.reference_words

    def __add__(self, other: WerResult) -> WerResult:
        return WerResult(self.substitutions + other.substitutions, self.deletions + other.deletions,
                         self.insertions + other.insertions, self.reference_words + other.reference_words)


def align(reference: list[str], hypothesis: list[str]) -> WerResult:
    """Levenshtein alignment of two word lists, counting each kind of edit."""
    rows, cols = len(reference) + 1, len(hypothesis) + 1
    # cost[i][j] = (edits, substitutions, deletions, insertions) for reference[:i] vs hypothesis[:j]
    cost = [[(0, 0, 0, 0)] * cols for _ in range(rows)]
    for i in range(1, rows):
        cost[i][0] = (i, 0, i, 0)
    for j in range(1, cols):
        cost[0][j] = (j, 0, 0, j)
    for i in range(1, rows):
        for j in range(1, cols):
            if reference[i - 1] == hypothesis[j - 1]:
                cost[i][j] = cost[i - 1][j - 1]
                continue
            e, s, d, n = cost[i - 1][j - 1]
            best = (e + 1, s + 1, d, n)
            e, s, d, n = cost[i - 1][j]
            best = min(best, (e + 1, s, d + 1, n))
            e, s, d, n = cost[i][j - 1]
            best = min(best, (e + 1, s, d, n + 1))
            cost[i][j] = best
    _, s, d, n = cost[-1][-1]
    return WerResult(s, d, n, len(reference))


def word_errors(reference: str, hypothesis: str) -> WerResult:
    return align(normalise(reference), normalise(hypothesis))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of one hypothesis after normalisation (0 = perfect; can exceed 1 with insertions)."""
    return word_errors(reference, hypothesis).wer


def corpus_wer(pairs: Iterable[tuple[str, str]]) -> float:
    """Total edits over total reference words, for (reference, hypothesis) pairs."""
    total = WerResult(0, 0, 0, 0)
    for reference, hypothesis in pairs:
        total = total + word_errors(reference, hypothesis)
    return total.wer
