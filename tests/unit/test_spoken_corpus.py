"""bench/spoken_corpus.py, the spoken-corpus harness the understanding bench uses: every voice renders, utterances go
through the real Silero VAD + segmenter and faster-whisper, transcripts and timings come back, and both caches work."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import spoken_corpus  # noqa: E402
from spoken_corpus import DEFAULT_VOICES, VOICES, AsrSettings, render, transcribe_corpus  # noqa: E402

from mmchat_ros.core.wer import wer  # noqa: E402
from tests.helpers.speech import VOICES as TEST_VOICES  # noqa: E402

pytestmark = pytest.mark.slow


def test_voices_are_new_and_within_the_speed_range():
    assert len(DEFAULT_VOICES) >= 4 and set(DEFAULT_VOICES) <= set(VOICES)
    used_elsewhere = {(engine, name, speed) for engine, name, speed in TEST_VOICES.values()}
    new = [v for v in DEFAULT_VOICES
           if (VOICES[v].engine, VOICES[v].name, VOICES[v].wpm or 0) not in used_elsewhere
           and not (VOICES[v].engine == "piper" and VOICES[v].length_scale == 1.0)]
    assert len(new) >= 2
    for name in DEFAULT_VOICES:
        voice = VOICES[name]
        factor = voice.wpm / 175 if voice.engine == "espeak" else voice.length_scale   # espeak-ng default 175 wpm
        assert 0.9 <= factor <= 1.2, name
        assert voice.description


def test_every_voice_renders_speech_of_a_plausible_length(tmp_path):
    for name in VOICES:
        audio = render("fly forward two meters", name, tmp_path)
        assert audio.dtype == np.int16 and 0.8 < audio.size / 16000 < 3.5, name
        assert np.abs(audio).max() > 3000, name
    slow, fast = (render("fly forward two meters", v, tmp_path).size for v in ("piper-joe-slow", "piper-joe-fast"))
    assert slow / fast == pytest.approx(1.15 / 0.9, rel=0.2)        # length_scale is honoured
    assert len(list((tmp_path / "audio").glob("*.wav"))) == len(VOICES)


def test_transcribe_corpus_goes_through_vad_and_whisper_and_caches(tmp_path, monkeypatch):
    texts = ["take off", "turn left ninety degrees"]
    settings = AsrSettings(model="tiny.en")
    results = transcribe_corpus(texts, "piper-joe-slow", settings, cache_dir=tmp_path)
    assert [r.text for r in results] == texts
    for r in results:
        assert wer(r.text, r.transcript) <= 0.34, r
        assert len(r.segments) == 1 and not r.cached
        # the VAD's end delay: speech_end_s (0.3 s) in 32 ms chunks, after the true end of speech
        assert 250 <= r.vad_ms <= 600
        assert r.asr_ms > 0 and r.latency_ms >= r.vad_ms and r.latency_ms <= r.vad_ms + r.asr_ms + 1
        assert 0.3 < r.audio_s < 3 and 0 < r.confidence <= 1          # Piper samples noise: lengths vary
    lines = [json.loads(line) for path in (tmp_path / "transcripts").glob("*.jsonl")
             for line in path.read_text().splitlines()]
    assert [line["text"] for line in lines] == texts

    def no_recognition(*_args, **_kwargs):
        raise AssertionError("recognised again instead of using the cache")
    monkeypatch.setattr(spoken_corpus, "play", no_recognition)
    again = transcribe_corpus(texts, "piper-joe-slow", settings, cache_dir=tmp_path)
    assert [r.transcript for r in again] == [r.transcript for r in results] and all(r.cached for r in again)
    with pytest.raises(AssertionError, match="recognised again"):   # other ASR settings: another cache entry
        transcribe_corpus(texts[:1], "piper-joe-slow", AsrSettings(model="tiny.en", beam_size=2), cache_dir=tmp_path)


def test_a_pause_inside_an_utterance_gives_two_segments(tmp_path):
    """Speech, 0.8 s of silence, speech: the VAD closes the first segment, both are recognised and joined."""
    recognizer = spoken_corpus.recognizer_for(AsrSettings(model="tiny.en"))
    first, second = render("take off", "espeak-us-m3", tmp_path), render("land now", "espeak-us-m3", tmp_path)
    speech = np.concatenate([first, np.zeros(12800, np.int16), second])
    result = spoken_corpus.play(speech, recognizer, "take off land now", "espeak-us-m3")
    assert len(result.segments) == 2
    assert wer("take off land now", result.transcript) <= 0.25, result
