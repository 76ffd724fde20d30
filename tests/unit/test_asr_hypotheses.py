"""WhisperRecognizer's hypotheses: the first n-best hypothesis the command language reads cleanly is taken; a wider
escalation and the longer encoder window are paid for only when none does. The model is replaced by a script of
what each decode returns, so the choices are checked without loading Whisper."""
import numpy as np
import pytest

from mmchat_ros.backends.asr import Decode, WhisperRecognizer, planner_reads_cleanly, reads_as_complete_utterance

ACCEPTED = {"take off", "land now"}


class ScriptedRecognizer(WhisperRecognizer):
    """The decode logic of WhisperRecognizer over scripted decodes: ``script[(window, width)]`` lists the texts a
    decode with that encoder window and beam width (= hypotheses) returns, best first."""

    def __init__(self, script: dict, **options):   # not super().__init__(): that loads a model
        self.script = script
        self.calls: list[tuple] = []
        self.beam_size, self.window_s, self.hypotheses = 1, 20.0, options.get("hypotheses", 5)
        self.escalate_beam_size = options.get("escalate_beam_size", 0)
        self.fast_window_s, self.fast_min_confidence = options.get("fast_window_s", 0.0), 0.5
        self.fallback_beam_size, self.no_speech_threshold, self.logprob_threshold = 5, 0.8, -1.0
        self.compression_ratio_threshold, self.language = 2.4, "en"
        self.accept = options.get("accept", ACCEPTED.__contains__)

    def _loops(self, text, audio_s):
        return False

    def _encode(self, audio, window_s):
        self.calls.append(("encode", window_s))
        return window_s

    def _generate(self, encoded, audio_s, beam_size, hypotheses=1, language=""):
        width = max(beam_size, hypotheses)
        self.calls.append(("decode", encoded, width))
        alternatives = [(text, -0.2 - 0.1 * i) for i, text in enumerate(self.script[(encoded, width)])]
        return Decode(*alternatives[0], "en", 0.01, alternatives)


AUDIO = np.full(16000 * 2, 1000, dtype=np.int16)


def test_the_best_scored_hypothesis_that_reads_cleanly_stands():
    recognizer = ScriptedRecognizer({(20.0, 5): ["take off", "take of"]}, escalate_beam_size=12)
    result = recognizer.transcribe(AUDIO)
    assert (result.text, result.passes, result.hypotheses) == ("take off", 1, ("take off", "take of"))
    assert recognizer.calls == [("encode", 20.0), ("decode", 20.0, 5)]


def test_otherwise_the_first_hypothesis_that_reads_cleanly():
    recognizer = ScriptedRecognizer({(20.0, 5): ["take of", "take-off", "take off"]}, escalate_beam_size=12)
    result = recognizer.transcribe(AUDIO)
    assert (result.text, result.passes) == ("take off", 1)
    assert result.confidence == pytest.approx(np.exp(-0.4))     # the chosen hypothesis's own score
    assert recognizer.calls == [("encode", 20.0), ("decode", 20.0, 5)]


def test_a_wider_search_of_the_same_encoding_only_when_no_hypothesis_reads():
    script = {(20.0, 5): ["lend now", "lent now"], (20.0, 12): ["lent no", "land now"]}
    recognizer = ScriptedRecognizer(script, escalate_beam_size=12)
    result = recognizer.transcribe(AUDIO)
    assert (result.text, result.passes) == ("land now", 2)
    assert recognizer.calls == [("encode", 20.0), ("decode", 20.0, 5), ("decode", 20.0, 12)]
    script[(20.0, 12)] = ["lent no"]
    result = ScriptedRecognizer(script, escalate_beam_size=12).transcribe(AUDIO)
    assert (result.text, result.passes) == ("lend now", 2)                    # none reads: the best-scored
    assert ScriptedRecognizer(script).transcribe(AUDIO).passes == 1          # no escalation configured


def test_without_an_acceptance_test_the_best_scored_hypothesis_is_the_transcript():
    recognizer = ScriptedRecognizer({(20.0, 5): ["take of", "take off"]}, accept=None, fast_window_s=10.0)
    assert recognizer.transcribe(AUDIO).text == "take of"
    assert recognizer.calls == [("encode", 20.0), ("decode", 20.0, 5)]


@pytest.mark.parametrize("fast_texts,calls", [
    (["land now", "lend now"], [("encode", 10.0), ("decode", 10.0, 5)]),
    # only its best-scored hypothesis: further down, a short window's list holds clean but wrong readings
    (["lend now", "land now"], [("encode", 10.0), ("decode", 10.0, 5), ("encode", 20.0), ("decode", 20.0, 5)]),
])
def test_the_short_window_stands_only_when_its_best_hypothesis_reads_cleanly(fast_texts, calls):
    recognizer = ScriptedRecognizer({(10.0, 5): fast_texts, (20.0, 5): ["land now"]}, fast_window_s=10.0)
    result = recognizer.transcribe(AUDIO)
    assert result.text == "land now" and recognizer.calls == calls
    assert result.window_s == calls[-1][1]


def test_the_planner_reads_commands_cleanly_and_not_slips():
    assert planner_reads_cleanly("Take off.") and planner_reads_cleanly("Fly forward two metres.")
    assert not planner_reads_cleanly("Take of the blue fence.") and not planner_reads_cleanly("")


@pytest.mark.parametrize("text,complete", [
    ("Take off.", True), ("Turn left ninety degrees.", True), ("What's your battery?", True),
    ("Fly forward,", False),                  # Whisper heard more coming
    ("Fly forward.", False),                  # how far? a question back, so wait for the rest
    ("Take off and.", False), ("Hover for.", False), ("Fly forward two point.", False),
    ("Take of the blue fence.", False), ("", False),
])
def test_a_complete_utterance_is_closed_read_cleanly_and_leaves_nothing_hanging(text, complete):
    assert reads_as_complete_utterance(text) is complete
