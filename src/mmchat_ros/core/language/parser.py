"""The command reader's entry point: one utterance → clauses → readings → plan steps (``parse_command``).

Safety requests are refused before anything is read; the clauses are read in order, each by its most literal
reading that yields steps (as heard, then with sound-alike repairs, then with the intent from the caller's
classifier when no verb was heard; a sound-alike slot that takes in a filler word comes before the literal reading,
which would have to drop that word); chained one-shot actions said twice are one.
"""
from __future__ import annotations

from collections.abc import Callable

from mmchat_ros.core.plan_vocabulary import ActionType
from mmchat_ros.core.language.clause_reader import Ambiguous, Clause, ClauseReader, ParseResult
from mmchat_ros.core.language.clauses import HARD_SEPARATORS, SOFT_SEPARATORS, merge_split_turns, split_clauses
from mmchat_ros.core.language.lexicon import DIRECTIONS, TURN_SIDES, VERB_DIRECTIONS, find_intent, stem
from mmchat_ros.core.language.normalise import FILLERS, normalise
from mmchat_ros.core.language.numbers import NumberReader
from mmchat_ros.core.language.recognition_slips import phonetic_repair
from mmchat_ros.core.language.safety import refusal_for

IntentClassifier = Callable[[str], "tuple[str, float] | None"]


def parse_command(text: str, classify: IntentClassifier | None = None) -> ParseResult:
    """Read one utterance. Never raises for odd input: the result says what to do with it."""
    result = ParseResult()
    refusal = refusal_for(text)
    if refusal:
        result.refusal = refusal
        return result
    tokens = normalise(text)
    clauses = merge_split_turns([c for c in split_clauses(tokens)
                                 if [w for w in c if w not in FILLERS or w in DIRECTIONS]])
    try:
        for index, words in enumerate(clauses):
            intent = find_intent(words)[0]
            quantities = NumberReader(words).quantities()
            nxt = find_intent(clauses[index + 1])[0] if index + 1 < len(clauses) else ""
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
    except Ambiguous as question:
        result.clarification = str(question)
        result.steps.clear()
    return result


def _candidates(words: list[str], classify: IntentClassifier | None):
    """Readings of one clause, most literal first: as heard; with sound-alike repairs (only where a repaired word
    becomes the verb or a direction; first where every repair reads a filler and a slot word as another slot);
    with the intent from sentence similarity (only when no verb was heard)."""
    intent, at, length = find_intent(words)
    literal = Clause(words, intent, at, length), []
    repaired, repairs = phonetic_repair(words)
    if not repairs:
        yield literal
    else:
        fixed_intent, fixed_at, fixed_length = find_intent(repaired)
        verb = " ".join(repaired[fixed_at:fixed_at + fixed_length]) if fixed_at >= 0 else ""
        targets = [note.split("as '")[1].rstrip("'") for note in repairs]
        slots_only = all(t in DIRECTIONS or t in TURN_SIDES for t in targets)
        sound_alike = Clause(repaired, fixed_intent, fixed_at, fixed_length), repairs
        # A slot heard as a filler and a slot word ("turn into clockwise" ~ anticlockwise): the literal reading has
        # to drop the filler, the sound-alike one places every word, so it comes first.
        if fixed_intent == intent and all(_filler_and_slot_as_another_slot(note) for note in repairs):
            yield sound_alike
            yield literal
        else:
            yield literal
            if slots_only and fixed_intent == intent or not intent and all(
                    t in DIRECTIONS or t in TURN_SIDES or t == verb for t in targets):
                yield sound_alike
    if classify is not None and not intent:
        content = [w for w in words if w not in (",", ".", ";") and (w not in FILLERS or w in DIRECTIONS)]
        guess = classify(" ".join(content)) if content else None
        if guess is not None:
            yield Clause(words, guess[0], -1, 0), [
                f"intent '{guess[0]}' by similarity {guess[1]:.2f}"]


def _filler_and_slot_as_another_slot(repair: str) -> bool:
    """Does the repair (a phonetic_repair note) read two words, a filler (not a clause separator) and a direction
    or turn side, as a direction or turn side that means something else ("into clockwise" → anticlockwise)?"""
    heard, target = repair.split("'")[1].split(), repair.split("as '")[1].rstrip("'")
    fillers = [w for w in heard if w in FILLERS and w not in SOFT_SEPARATORS and w not in HARD_SEPARATORS]
    slots = [w for w in heard if w in DIRECTIONS or w in TURN_SIDES]
    return len(heard) == 2 and len(fillers) == 1 and len(slots) == 1 and (target in DIRECTIONS or
                                                                           target in TURN_SIDES) \
        and (DIRECTIONS.get(target), TURN_SIDES.get(target)) != (DIRECTIONS.get(slots[0]), TURN_SIDES.get(slots[0]))


def _read_best(words: list[str], classify: IntentClassifier | None, result: ParseResult) -> bool:
    """Read the clause into result with the first candidate reading that yields steps; a question from the
    literal reading is asked only when no other reading works."""
    question: Ambiguous | None = None
    for clause, notes in _candidates(words, classify):
        trial = ParseResult()
        try:
            if not ClauseReader(trial).read(clause):
                continue
        except Ambiguous as asked:
            question = question or asked
            continue
        offset = len(result.steps)
        result.steps.extend(trial.steps)
        result.follow.update({offset + i: t for i, t in trial.follow.items()})
        result.goto_keep_altitude.update(offset + i for i in trial.goto_keep_altitude)
        result.goto_keep_position.update(offset + i for i in trial.goto_keep_position)
        result.notes.extend(notes)
        result.unused.extend(trial.unused)
        return True
    if question is not None:
        raise question
    return False
