"""The ASR adapter's text generator (train/asr_adapter/phrases.py) and voice split (make_data.py): properties only."""
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

ADAPTER_DIR = Path(__file__).resolve().parents[2] / "train" / "asr_adapter"
sys.path.insert(0, str(ADAPTER_DIR))

import phrases  # noqa: E402

from mmchat_ros.core.language.lexicon import INTENT_PHRASES  # noqa: E402
from mmchat_ros.core.language.normalise import normalise  # noqa: E402

TEXTS = phrases.generate(3000, seed=7)


def test_deterministic_for_a_seed_and_different_across_seeds():
    assert phrases.generate(200, seed=7) == TEXTS[:200]
    assert phrases.generate(200, seed=8) != TEXTS[:200]


def test_transcripts_are_sentence_case_with_a_final_stop_or_question_mark_and_no_digits():
    for text in TEXTS:
        assert text[0].isupper() and text[-1] in ".?", text
        assert not re.search(r"\d", text), text


def test_teens_and_tens_of_each_digit_are_both_common():
    words = Counter(word for text in TEXTS for word in re.findall(r"[a-z]+", text.lower()))
    for teen, tens in zip(phrases.TEENS, phrases.TENS_WORDS):
        assert words[teen] >= 30 and words[tens] >= 30, (teen, words[teen], tens, words[tens])
        assert 0.5 < words[teen] / words[tens] < 2.0, (teen, words[teen], tens, words[tens])


def test_number_words():
    assert phrases.number_words(0) == "zero"
    assert phrases.number_words(15) == "fifteen"
    assert phrases.number_words(50) == "fifty"
    assert phrases.number_words(42) == "forty-two"
    assert phrases.number_words(140) == "one hundred and forty"
    assert phrases.number_words(300) == "three hundred"
    with pytest.raises(ValueError):
        phrases.number_words(1000)


@pytest.mark.parametrize("needle", [
    "take off", "land", "hover", "stop", "follow me", "stop following", "return home", "go to x", "quarter turn",
    "turn around", "clockwise", "anticlockwise", "counter-clockwise", "degrees", "metres", "meters", "centimetres",
    "feet", "point", "and a half", "half a", "a little", "a bit", "please", "could you", "um,", "okay drone",
    " then ", " and ", "after that", "and finally", "battery", "altitude", "operator", "what can i say",
    "what do you see", "describe the scene", "geofence", "face check", "hello", "thank",
])
def test_the_command_language_is_covered(needle):
    assert any(needle in text.lower() for text in TEXTS), needle


def test_about_a_quarter_are_not_about_drones():
    everyday = set(phrases._FIXED_ENGLISH) | {text for text in TEXTS
                                              if text.split()[0] in {s.split()[0] for s in phrases._SUBJECTS}}
    share = sum(text in everyday or re.search(r"(people|chairs|pages|minutes|apples|students) ", text) is not None
                for text in TEXTS) / len(TEXTS)
    assert 0.19 < share < 0.31, share


def test_action_synonyms_are_phrases_the_lexicon_reads_as_that_action():
    groups = {"takeoff": phrases.TAKEOFF, "land": phrases.LAND, "hover": phrases.HOVER, "stop": phrases.STOP}
    for intent, synonyms in groups.items():
        for synonym in synonyms:
            assert INTENT_PHRASES.get(" ".join(normalise(synonym)), ("",))[0] == intent, synonym
    for verb in (*phrases.MOVE_VERBS, *phrases.TURN_VERBS, *phrases.DIRECTIONAL_VERBS):
        assert verb in INTENT_PHRASES, verb


def test_voice_split_is_disjoint_and_avoids_the_evaluation_voices():
    import make_data
    train, val = make_data.split_combinations(seed=1)
    assert train and val and not set(train) & set(val)
    evaluation = {("en-us", "m3"), ("en", "f4"), ("en-gb", "f4"), ("en-us", ""), ("en-gb", "f3"), ("en", "f3")}
    for voice, variant in train + val:
        assert (voice, variant) not in evaluation
        assert "scotland" not in voice and variant not in ("m3", "f3", "f4")
