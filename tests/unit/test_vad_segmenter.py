"""core.vad_segmenter: the streaming segmenter state machine and the robot's-own-voice gate, driven by a level
classifier (a test double for Silero, whose real behaviour is tested in test_speech_backends.py)."""
import numpy as np
import pytest

from mmchat_ros.core.vad_segmenter import (SegmentTruncated, SegmenterConfig, SelfSpeechConfig, SelfSpeechGate,
                                           SpeechEnded, SpeechPaused, SpeechStarted, VadSegmenter, rms_dbfs)

RATE = 16000
WINDOW = 512
WINDOW_S = WINDOW / RATE
T0 = 1000.0   # capture time of the first sample


def level_classifier(window: np.ndarray) -> float:
    """'Speech' is anything above -50 dBFS: probability 0.95, else 0.02."""
    return 0.95 if rms_dbfs(window) > -50.0 else 0.02


def noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0.0, 32768 * 10 ** (dbfs / 20), int(round(seconds * RATE))), -32768, 32767
                   ).astype(np.int16)


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * RATE)), dtype=np.int16)


def run(segmenter: VadSegmenter, audio: np.ndarray, chunk: int = WINDOW, t0: float = T0, flush: bool = False):
    events = []
    for offset in range(0, audio.size, chunk):
        events += [(offset / RATE, e) for e in segmenter.push(audio[offset:offset + chunk], t0 + offset / RATE)]
    if flush:
        events += [(audio.size / RATE, e) for e in segmenter.flush()]
    return events


def segments(events):
    found = []
    for _, event in events:
        if isinstance(event, SegmentTruncated):
            found.append(event.segment)
        elif isinstance(event, SpeechEnded) and event.segment is not None:
            found.append(event.segment)
    return found


def test_two_utterances_in_silence_become_two_segments_with_pre_roll():
    config = SegmenterConfig(pre_roll_s=0.25, post_roll_s=0.1, speech_end_s=0.3)
    audio = np.concatenate([quiet(1.0), noise(0.8, -20), quiet(1.0), noise(1.2, -20, seed=1), quiet(1.0)])
    events = run(VadSegmenter(level_classifier, config), audio)
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == ["SpeechStarted", "SpeechPaused", "SpeechEnded"] * 2
    first, second = segments(events)
    # the speech starts at 1.0 s and 2.8 s; segments open a pre-roll earlier (to the window)
    assert first.start == pytest.approx(T0 + 1.0 - 0.25, abs=WINDOW_S)
    assert second.start == pytest.approx(T0 + 2.8 - 0.25, abs=WINDOW_S)
    assert first.speech_end == pytest.approx(T0 + 1.8, abs=WINDOW_S)
    assert second.speech_end == pytest.approx(T0 + 4.0, abs=WINDOW_S)
    # speech + pre-roll + post-roll, each rounded up to whole windows
    assert 0.8 + 0.25 + 0.1 <= first.duration_s <= 0.8 + 0.25 + 0.1 + 3 * WINDOW_S
    assert first.samples.size == round((first.end - first.start) * RATE) + 1
    assert not first.truncated and not first.barge_in
    started = [e for _, e in events if isinstance(e, SpeechStarted)]
    assert started[0].time == pytest.approx(T0 + 1.0, abs=WINDOW_S)
    # the speech is detected speech_end_s after it ended, not later
    ended_at = [at for at, e in events if isinstance(e, SpeechEnded)]
    assert ended_at[0] == pytest.approx(1.8 + 0.3, abs=2 * WINDOW_S)


def test_pre_roll_keeps_the_quiet_onset_of_the_first_syllable():
    onset = noise(0.1, -60, seed=3)          # too quiet to count as speech, but part of the word
    audio = np.concatenate([quiet(1.0), onset, noise(0.5, -20), quiet(1.0)])
    (segment,) = segments(run(VadSegmenter(level_classifier, SegmenterConfig(pre_roll_s=0.2)), audio))
    start_index = int(round((segment.start - T0) * RATE))
    assert start_index <= RATE * 1.0          # the quiet onset at 1.0..1.1 s is inside the segment
    assert np.array_equal(segment.samples, audio[start_index:start_index + segment.samples.size])


def test_clicks_and_short_blips_are_not_speech():
    config = SegmenterConfig(speech_start_s=0.1, min_speech_s=0.2)
    blip = noise(0.05, -20)                   # shorter than speech_start_s: never opens a segment
    click = noise(0.15, -20, seed=2)          # opens one, but has less speech than min_speech_s
    events = run(VadSegmenter(level_classifier, config), np.concatenate([quiet(0.5), blip, quiet(1.0), click,
                                                                        quiet(1.0)]))
    assert [type(e).__name__ for _, e in events] == ["SpeechStarted", "SpeechEnded"]
    assert events[-1][1].segment is None and "shorter than 0.2 s" in events[-1][1].reason


def test_a_pause_shorter_than_the_end_delay_does_not_split_an_utterance():
    audio = np.concatenate([quiet(0.5), noise(0.6, -20), quiet(0.2), noise(0.6, -20, seed=1), quiet(1.0)])
    (segment,) = segments(run(VadSegmenter(level_classifier, SegmenterConfig(speech_end_s=0.3)), audio))
    assert segment.speech_end - T0 == pytest.approx(1.9, abs=WINDOW_S)


def test_a_pause_offers_the_segment_early_exactly_as_it_will_end():
    config = SegmenterConfig(speech_end_s=0.3, post_roll_s=0.1)
    audio = np.concatenate([quiet(0.5), noise(0.8, -20), quiet(1.0)])
    events = run(VadSegmenter(level_classifier, config), audio)
    (paused_at, paused), (ended_at, ended) = [(at, e) for at, e in events if isinstance(e, (SpeechPaused, SpeechEnded))]
    assert isinstance(paused, SpeechPaused) and isinstance(ended, SpeechEnded)
    assert ended_at - paused_at == pytest.approx(0.3 - 0.1, abs=2 * WINDOW_S)   # the head start recognition gets
    assert np.array_equal(paused.segment.samples, ended.segment.samples)
    assert (paused.segment.start, paused.segment.end) == (ended.segment.start, ended.segment.end)
    # speech resuming after the pause: the early segment is not what ends, a later pause offers the real one
    audio = np.concatenate([quiet(0.5), noise(0.8, -20), quiet(0.2), noise(0.5, -20, seed=1), quiet(1.0)])
    events = run(VadSegmenter(level_classifier, config), audio)
    paused = [e.segment for _, e in events if isinstance(e, SpeechPaused)]
    (ended,) = segments(events)
    assert len(paused) == 2 and paused[0].end < ended.end and np.array_equal(paused[1].samples, ended.samples)


def test_long_speech_is_cut_at_max_segment_length_and_announced_once():
    config = SegmenterConfig(max_segment_s=2.0, pre_roll_s=0.25)
    audio = np.concatenate([quiet(0.5), noise(5.0, -20), quiet(1.0)])
    events = run(VadSegmenter(level_classifier, config), audio)
    assert sum(isinstance(e, SpeechStarted) for _, e in events) == 1
    parts = segments(events)
    assert [p.truncated for p in parts] == [True, True, False]
    assert all(p.duration_s <= 2.0 + WINDOW_S for p in parts)
    # contiguous: each part starts one window after the previous ended, nothing lost or repeated
    for before, after in zip(parts, parts[1:]):
        assert after.start == pytest.approx(before.end + 1 / RATE, abs=1e-6)
    assert sum(p.samples.size for p in parts) == pytest.approx((5.0 + 0.25 + 0.1) * RATE, abs=2 * WINDOW)


@pytest.mark.parametrize("chunk", [160, 512, 1000, 4096])
def test_any_chunk_size_gives_the_same_segments(chunk):
    audio = np.concatenate([quiet(0.7), noise(0.9, -25), quiet(0.8), noise(0.4, -25, seed=5), quiet(0.6)])
    reference = segments(run(VadSegmenter(level_classifier), audio, chunk=WINDOW))
    got = segments(run(VadSegmenter(level_classifier), audio, chunk=chunk))
    assert len(got) == len(reference) == 2
    for a, b in zip(got, reference):
        assert a.start == pytest.approx(b.start, abs=1e-9) and np.array_equal(a.samples, b.samples)


def test_flush_closes_speech_that_runs_to_the_end_of_the_stream():
    events = run(VadSegmenter(level_classifier), np.concatenate([quiet(0.5), noise(0.7, -20)]), flush=True)
    (segment,) = segments(events)
    assert segment.speech_end == pytest.approx(T0 + 1.2, abs=WINDOW_S)
    # speech cut at max_segment_s right at the end of the stream still ends (so /speech/active goes false)
    segmenter = VadSegmenter(level_classifier, SegmenterConfig(max_segment_s=1.024, pre_roll_s=0.0))
    events = run(segmenter, noise(1.024, -20), flush=True)
    assert [type(e).__name__ for _, e in events] == ["SpeechStarted", "SegmentTruncated", "SpeechEnded"]
    assert events[-1][1].announced and not segmenter.speaking


def test_a_gap_in_capture_times_restarts_windowing():
    segmenter = VadSegmenter(level_classifier)
    segmenter.push(quiet(0.01), T0)                       # 160 samples wait for a whole window
    segmenter.push(quiet(0.1), T0 + 5.0)                  # 5 s later: the partial window is discarded
    assert segmenter.windows_processed == 3               # 1600 samples = 3 whole windows, not 3.4


def test_a_gap_closes_open_speech_and_forgets_the_old_pre_roll():
    segmenter = VadSegmenter(level_classifier)
    events = run(segmenter, np.concatenate([quiet(1.0), noise(0.6, -20)]))
    assert [type(e).__name__ for _, e in events] == ["SpeechStarted"]
    # the stream resumes 10 s later (a restarted microphone): the speech before the gap ends where the audio did
    later = run(segmenter, np.concatenate([quiet(0.1), noise(0.6, -20, seed=4), quiet(1.0)]), t0=T0 + 11.6)
    ended = [e for _, e in later if isinstance(e, SpeechEnded)]
    assert ended[0].time == pytest.approx(T0 + 1.6, abs=1e-6) and ended[0].segment.end < T0 + 1.6
    second = ended[1].segment
    assert second.start >= T0 + 11.6 and second.samples.size == round((second.end - second.start) * RATE) + 1


def test_bad_input_is_refused_clearly():
    segmenter = VadSegmenter(level_classifier)
    with pytest.raises(ValueError, match="1-D int16"):
        segmenter.push(np.zeros(512, dtype=np.float32), T0)
    with pytest.raises(ValueError, match="hysteresis"):
        SegmenterConfig(threshold=0.3, hysteresis=0.4)
    with pytest.raises(ValueError, match="max_segment_s"):
        SegmenterConfig(max_segment_s=0.1)


# ------------------------------------------------------------------------------------------- own voice, barge-in
def gated(robot_speaking_from: float, robot_speaking_to: float | None, **gate):
    speech_gate = SelfSpeechGate(SelfSpeechConfig(**gate))
    speech_gate.set_robot_speaking(True, T0 + robot_speaking_from)
    if robot_speaking_to is not None:
        speech_gate.set_robot_speaking(False, T0 + robot_speaking_to)
    return VadSegmenter(level_classifier, SegmenterConfig(), speech_gate)


def test_the_robots_own_voice_at_echo_level_is_dropped_silently():
    # the loudspeaker's echo: speech-like to the classifier, but quieter than barge_in_min_dbfs
    audio = np.concatenate([quiet(0.5), noise(2.0, -42), quiet(1.0)])
    events = run(gated(0.4, 2.6, barge_in_min_dbfs=-35.0), audio)
    assert not any(isinstance(e, SpeechStarted) for _, e in events)
    (ended,) = [e for _, e in events if isinstance(e, SpeechEnded)]
    assert ended.segment is None and not ended.announced and "robot's own speech" in ended.reason


def test_echo_tail_counts_as_the_robot_speaking():
    audio = np.concatenate([quiet(0.75), noise(0.4, -42), quiet(1.0)])   # 0.05..0.45 s after the robot stopped
    events = run(gated(0.0, 0.7, echo_tail_s=0.5, barge_in_min_dbfs=-35.0), audio)
    assert segments(events) == [] and not any(isinstance(e, SpeechStarted) for _, e in events)


def test_user_talking_over_the_robot_is_a_barge_in_and_the_robots_part_is_cut_off():
    robot_echo = noise(1.0, -42)
    user = noise(1.0, -18, seed=7)
    audio = np.concatenate([quiet(0.5), robot_echo, user, quiet(1.0)])
    events = run(gated(0.4, None, barge_in_min_s=0.25, barge_in_min_dbfs=-35.0), audio)
    (started,) = [(at, e) for at, e in events if isinstance(e, SpeechStarted)]
    assert started[1].barge_in
    assert started[1].time == pytest.approx(T0 + 1.5, abs=WINDOW_S)          # where the user began
    assert started[0] == pytest.approx(1.5 + 0.25, abs=2 * WINDOW_S)         # confirmed after barge_in_min_s
    (segment,) = segments(events)
    assert segment.barge_in
    assert segment.start == pytest.approx(T0 + 1.5 - 0.25, abs=2 * WINDOW_S)   # pre-roll before the user, no more
    assert segment.speech_end == pytest.approx(T0 + 2.5, abs=WINDOW_S)


def test_speech_that_goes_on_after_the_robot_stops_is_confirmed_without_barge_in():
    # quiet talk (below the barge-in level) that starts over the robot's last words and continues after them
    audio = np.concatenate([quiet(0.5), noise(2.0, -42), quiet(1.0)])
    events = run(gated(0.0, 1.0, echo_tail_s=0.3, barge_in_min_dbfs=-35.0), audio)
    (started,) = [e for _, e in events if isinstance(e, SpeechStarted)]
    assert not started.barge_in and started.time == pytest.approx(T0 + 1.3, abs=WINDOW_S)
    (segment,) = segments(events)
    assert segment.start == pytest.approx(T0 + 1.3 - 0.25, abs=WINDOW_S)


def test_speech_that_began_before_the_robot_talked_stays_the_users():
    audio = np.concatenate([quiet(0.5), noise(2.0, -42), quiet(1.0)])
    events = run(gated(1.0, 3.0), audio)          # the robot starts while the user is already talking
    assert [type(e).__name__ for _, e in events] == ["SpeechStarted", "SpeechPaused", "SpeechEnded"]
    assert segments(events)[0].start == pytest.approx(T0 + 0.25, abs=WINDOW_S)


def test_gate_intervals():
    gate = SelfSpeechGate(SelfSpeechConfig(echo_tail_s=0.5))
    assert not gate.robot_speaking_at(10.0)
    gate.set_robot_speaking(True, 10.0)
    gate.set_robot_speaking(True, 11.0)           # repeated true: same interval
    assert gate.robot_speaking_at(100.0)          # still speaking
    gate.set_robot_speaking(False, 12.0)
    assert gate.robot_speaking_at(12.4) and not gate.robot_speaking_at(12.6) and not gate.robot_speaking_at(9.9)
    assert rms_dbfs(np.full(100, 32767 // 10, dtype=np.int16)) == pytest.approx(-20.0, abs=0.01)
