"""Splitting an utterance into clauses: hard separators ("then", "after that", "next", "finally") always split;
soft ones ("and", commas, full stops) split only where both pieces can stand as a command by themselves, so
"move, left, one meter" and "a metre and a half" stay whole while "fly forward two meters and right one meter" is
two moves. A turn said in two pieces ("turn 90 degrees, turn left") is joined again.
"""
from __future__ import annotations

from mmchat_ros.core.language.lexicon import DIRECTIONS, TURN_SIDES, find_intent
from mmchat_ros.core.language.normalise import FILLERS
from mmchat_ros.core.language.numbers import NumberReader

HARD_SEPARATORS = {"then", "afterwards", "afterward", "next", "finally", "lastly", "later"}
SOFT_SEPARATORS = {"and", ",", ".", ";", "also", "plus"}


def _standalone(tokens: list[str]) -> bool:
    """Can this piece be a command by itself (a verb, or a direction with its distance)?"""
    content = [t for t in tokens if t not in FILLERS or t in DIRECTIONS]
    if not content:
        return False
    if find_intent(tokens)[0]:
        return True
    reader = NumberReader(tokens)
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


def merge_split_turns(clauses: list[list[str]]) -> list[list[str]]:
    """ "turn 90 degrees, turn left": an angle without a side and a side without an angle are one turn."""
    merged: list[list[str]] = []
    for clause in clauses:
        if merged and find_intent(merged[-1])[0] == "turn" and find_intent(clause)[0] == "turn":
            prev_angle = any(q.kind == "angle" for q in NumberReader(merged[-1]).quantities())
            prev_side = any(t in TURN_SIDES for t in merged[-1])
            side = any(t in TURN_SIDES for t in clause)
            angle = bool(NumberReader(clause).quantities())
            if (prev_angle and not prev_side and side and not angle) or (prev_side and not prev_angle and angle
                                                                           and not side):
                merged[-1] = merged[-1] + clause
                continue
        merged.append(clause)
    return merged
