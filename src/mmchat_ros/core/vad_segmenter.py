"""Cuts speech segments out of an audio stream from per-window speech probabilities (a streaming VAD state machine).

Pure logic: the speech-probability model (Silero in backends/vad.py) is passed in as a callable, so this module is
tested with any classifier. Audio arrives as chunks of any size stamped with the capture time of their first sample;
it is cut into fixed windows (512 samples at 16 kHz for Silero), each classified once.

State machine (thresholds with hysteresis, like Silero's own VADIterator):
  silence  --p >= threshold for speech_start_s-->  speech   (segment opens pre_roll_s before the first speech window,
                                                             so the first syllable's onset is not cut)
  speech   --p < threshold - hysteresis for speech_end_s-->  silence  (segment closes, keeping post_roll_s of the
                                                                        trailing silence)
  speech   --segment reaches max_segment_s-->  a truncated segment is emitted, the next one starts at once
Segments whose speech (pre-roll excluded) is shorter than min_speech_s are dropped as clicks and breaths.
Once the silence reaches post_roll_s, SpeechPaused carries the segment as it will be if the silence lasts to
speech_end_s (the same samples): recognition can start then and hide the end delay; if speech resumes, the segment
that eventually ends is longer and the early result is not used.

Our own voice (SelfSpeechGate): with a loudspeaker near the microphone the VAD hears the robot talk. While the robot
speaks (plus echo_tail_s for the output latency and room reverberation), speech that starts is *unconfirmed*: it is
neither announced (/speech/active) nor transcribed unless barge-in is detected — barge_in_min_s of consecutive
windows with p >= barge_in_threshold and a level of at least barge_in_min_dbfs. The echo of a loudspeaker reaches
the microphone attenuated (and without acoustic echo cancellation its level is what a deployment calibrates
barge_in_min_dbfs against), a person talking over the robot is close and loud. A confirmed barge-in segment is cut to
start pre_roll_s before the barge-in evidence began, so the robot's words before it are not transcribed. Speech that
started while the robot was silent stays confirmed if the robot starts talking during it.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmenterConfig:
    sample_rate: int = 16000
    window_samples: int = 512             # Silero at 16 kHz takes 512-sample windows
    threshold: float = 0.5                # speech probability that starts (and keeps) speech
    hysteresis: float = 0.15              # below threshold - hysteresis counts as silence
    speech_start_s: float = 0.064         # speech this long before a segment opens
    speech_end_s: float = 0.3             # silence this long closes a segment
    pre_roll_s: float = 0.25              # audio kept before the first speech window
    post_roll_s: float = 0.1              # trailing silence kept in a closed segment
    min_speech_s: float = 0.2             # shorter speech is dropped
    max_segment_s: float = 15.0           # longer segments are cut (truncated=True)

    def __post_init__(self):
        if self.sample_rate <= 0 or self.window_samples <= 0:
            raise ValueError("sample_rate and window_samples must be positive")
        if not 0.0 < self.threshold <= 1.0 or not 0.0 <= self.hysteresis < self.threshold:
            raise ValueError(f"need 0 < threshold <= 1 and 0 <= hysteresis < threshold "
                             f"(got {self.threshold}, {self.hysteresis})")
        for name in ("speech_start_s", "speech_end_s", "pre_roll_s", "post_roll_s", "min_speech_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.max_segment_s <= self.pre_roll_s + self.speech_start_s:
            raise ValueError("max_segment_s must exceed pre_roll_s + speech_start_s")

    @property
    def window_s(self) -> float:
        return self.window_samples / self.sample_rate

    def windows(self, seconds: float) -> int:
        """How many whole windows cover ``seconds`` (at least 1 for a positive duration)."""
        return max(1, math.ceil(seconds / self.window_s - 1e-9)) if seconds > 0 else 0


@dataclass(frozen=True)
class SelfSpeechConfig:
    echo_tail_s: float = 0.5              # after the robot stops talking its voice may still reach the microphone
    barge_in_threshold: float = 0.8       # speech probability that counts as the user talking over the robot
    barge_in_min_s: float = 0.25          # ... sustained this long
    barge_in_min_dbfs: float = -35.0      # ... at least this loud (RMS, dB full scale)


@dataclass
class Segment:
    samples: np.ndarray                   # int16 mono, pre-roll included
    start: float                          # capture time of the first sample, s
    end: float                            # capture time of the last sample, s
    speech_end: float                     # where the speech itself ended (start of the closing silence), s
    truncated: bool = False               # cut at max_segment_s
    barge_in: bool = False                # the user spoke over the robot

    @property
    def duration_s(self) -> float:
        return (self.end - self.start)


@dataclass(frozen=True)
class SpeechStarted:
    time: float                           # capture time of the first speech window (of the barge-in evidence)
    barge_in: bool = False                # the user started talking over the robot


@dataclass(frozen=True)
class SegmentTruncated:
    segment: Segment                      # cut at max_segment_s; speech goes on in a new segment


@dataclass(frozen=True)
class SpeechPaused:
    segment: Segment                      # what the segment will be if the silence goes on to speech_end_s: exactly
                                          # the samples of the SpeechEnded segment then (recognition can start now)


@dataclass(frozen=True)
class SpeechEnded:
    time: float                           # capture time where the speech ended
    segment: Segment | None               # None when dropped
    reason: str = ""                      # why it was dropped
    announced: bool = True                # a SpeechStarted was emitted for this speech


@dataclass
class _Window:
    samples: np.ndarray
    time: float
    probability: float
    dbfs: float


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level of int16 samples in dB relative to full scale (-inf for digital silence)."""
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64))))) / 32768.0
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


class SelfSpeechGate:
    """When the robot was talking (from /tts/speaking transitions), and whether speech over it is a barge-in."""

    def __init__(self, config: SelfSpeechConfig = SelfSpeechConfig()):
        self.config = config
        self._intervals: deque[list[float]] = deque(maxlen=64)   # [start, end]; end = inf while speaking

    def set_robot_speaking(self, speaking: bool, time: float) -> None:
        open_interval = bool(self._intervals) and math.isinf(self._intervals[-1][1])
        if speaking and not open_interval:
            self._intervals.append([time, math.inf])
        elif not speaking and open_interval:
            self._intervals[-1][1] = time

    def robot_speaking_at(self, time: float) -> bool:
        tail = self.config.echo_tail_s
        return any(start <= time <= end + tail for start, end in self._intervals)

    def is_barge_in_window(self, probability: float, dbfs: float) -> bool:
        return probability >= self.config.barge_in_threshold and dbfs >= self.config.barge_in_min_dbfs


MAX_STAMP_JITTER_S = 0.25   # capture times further off than this from the running sample count mean a gap


class VadSegmenter:
    """Feed audio with push(); get SpeechStarted / SpeechPaused / SegmentTruncated / SpeechEnded events back."""

    def __init__(self, classify: Callable[[np.ndarray], float], config: SegmenterConfig = SegmenterConfig(),
                 gate: SelfSpeechGate | None = None):
        self.classify = classify
        self.config = config
        self.gate = gate
        self._pending = np.zeros(0, dtype=np.int16)   # samples not yet making a whole window
        self._pending_time = 0.0
        self._next_time: float | None = None           # capture time the next sample should have
        self._pre_roll: deque[_Window] = deque(maxlen=config.windows(config.pre_roll_s))
        self._candidate: list[_Window] = []           # speech windows before speech_start_s is reached
        self._segment: list[_Window] = []
        self._continues = False                        # the last segment was truncated: the next window goes on
        self._reset_segment_state()
        self.windows_processed = 0

    @property
    def in_speech(self) -> bool:
        return bool(self._segment) or self._continues

    @property
    def speaking(self) -> bool:
        """User speech is going on (what /speech/active says)."""
        return self.in_speech and self._confirmed

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.int16)
        self._next_time = None
        self._pre_roll.clear()
        self._candidate.clear()
        self._segment = []
        self._continues = False
        self._reset_segment_state()

    def push(self, samples: np.ndarray, time: float) -> list:
        """Samples (int16 mono) whose first one was captured at ``time`` (s). Returns the events they caused."""
        samples = np.asarray(samples)
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise ValueError(f"expected a 1-D int16 array, got {samples.dtype} with shape {samples.shape}")
        rate, size = self.config.sample_rate, self.config.window_samples
        events = []
        expected = self._pending_time + self._pending.size / rate if self._pending.size else self._next_time
        if expected is not None and abs(time - expected) > MAX_STAMP_JITTER_S:
            # a gap (or a jump back) in the stream: what came before is not this audio's pre-roll or partial window
            events += self.flush(expected)
            self._pre_roll.clear()
            self._pending = np.zeros(0, dtype=np.int16)
        if self._pending.size == 0:
            self._pending_time = time
        buffer = np.concatenate([self._pending, samples]) if self._pending.size else samples
        whole = buffer.size // size * size
        for offset in range(0, whole, size):
            window = buffer[offset:offset + size]
            events += self._process_window(window.copy(), self._pending_time + offset / rate)
        self._pending = buffer[whole:].copy()
        self._pending_time += whole / rate
        self._next_time = self._pending_time + self._pending.size / rate
        return events

    def flush(self, time: float | None = None) -> list:
        """End of stream: close an open segment as if silence followed."""
        events = []
        if self._segment:
            end = time if time is not None else self._segment[-1].time + self.config.window_s
            events += self._close(speech_end=end, truncated=False)
        elif self._continues:   # cut at max_segment_s just before the end: the speech still has to end
            end = time if time is not None else self._next_time
            events.append(SpeechEnded(end, None, "the audio stream ended", announced=self._confirmed))
            self._reset_segment_state()
        self._continues = False
        self._candidate.clear()
        return events

    # ---------------------------------------------------------------------------------------------- internals
    def _reset_segment_state(self) -> None:
        self._silence_run = 0          # consecutive non-speech windows at the end of the open segment
        self._speech_windows = 0       # speech windows in the open segment (pre-roll excluded)
        self._confirmed = False        # user speech: announced, will be transcribed
        self._barge_in = False
        self._barge_run: list[int] = []   # indices in _segment of the current run of barge-in windows

    def _process_window(self, samples: np.ndarray, time: float) -> list:
        probability = float(self.classify(samples))
        self.windows_processed += 1
        window = _Window(samples, time, probability, rms_dbfs(samples))
        cfg = self.config
        if not self._segment and not self._continues:
            return self._in_silence(window)
        self._continues = False
        self._segment.append(window)
        if probability >= cfg.threshold:
            self._silence_run = 0
            self._speech_windows += 1
        elif probability < cfg.threshold - cfg.hysteresis or self._silence_run > 0:
            self._silence_run += 1
        else:
            self._speech_windows += 1
        events = [] if self._confirmed else self._check_confirmation(len(self._segment) - 1)
        if self._confirmed and self._silence_run == cfg.windows(cfg.post_roll_s) and \
                cfg.windows(cfg.post_roll_s) < cfg.windows(cfg.speech_end_s):
            candidate = self._build_segment(self._segment, self._segment[-self._silence_run].time, False)
            if candidate is not None:
                events.append(SpeechPaused(candidate))
        if self._silence_run >= cfg.windows(cfg.speech_end_s):
            speech_end = self._segment[-self._silence_run].time
            return events + self._close(speech_end=speech_end, truncated=False)
        if len(self._segment) * cfg.window_s >= cfg.max_segment_s:
            events += self._close(speech_end=time + cfg.window_s, truncated=True)
        return events

    def _in_silence(self, window: _Window) -> list:
        cfg = self.config
        if window.probability < cfg.threshold:
            # candidate windows that did not make it become pre-roll
            self._pre_roll.extend(self._candidate)
            self._candidate.clear()
            self._pre_roll.append(window)
            return []
        self._candidate.append(window)
        if len(self._candidate) < cfg.windows(cfg.speech_start_s):
            return []
        self._segment = [*self._pre_roll, *self._candidate]
        first_speech = self._candidate[0].time
        self._reset_segment_state()
        self._speech_windows = len(self._candidate)
        self._pre_roll.clear()
        self._candidate = []
        self._confirmed = self.gate is None or not self.gate.robot_speaking_at(first_speech)
        if self._confirmed:
            return [SpeechStarted(first_speech)]
        events = []
        for index in range(len(self._segment) - self._speech_windows, len(self._segment)):
            if not self._confirmed:
                events += self._check_confirmation(index)
        return events

    def _check_confirmation(self, index: int) -> list:
        """Speech that began over the robot's voice: confirm it on barge-in evidence, or once the robot has been
        silent long enough that what the microphone hears can only be the user."""
        window = self._segment[index]
        if window.probability >= self.config.threshold and not self.gate.robot_speaking_at(window.time):
            return self._confirm(index, index, barge_in=False)
        if not self.gate.is_barge_in_window(window.probability, window.dbfs):
            self._barge_run = []
            return []
        self._barge_run.append(index)
        if len(self._barge_run) < self.config.windows(self.gate.config.barge_in_min_s):
            return []
        return self._confirm(self._barge_run[0], index, barge_in=True)

    def _confirm(self, evidence_index: int, last_index: int, barge_in: bool) -> list:
        """Drop what came before the evidence (the robot's own voice), keeping a pre-roll."""
        cfg = self.config
        first = max(0, evidence_index - cfg.windows(cfg.pre_roll_s))
        evidence_time = self._segment[evidence_index].time
        self._segment = self._segment[first:]
        self._speech_windows = sum(1 for w in self._segment[evidence_index - first:last_index - first + 1]
                                   if w.probability >= cfg.threshold - cfg.hysteresis)
        self._confirmed = True
        self._barge_in = barge_in
        self._barge_run = []
        return [SpeechStarted(evidence_time, barge_in=barge_in)]

    def _close(self, speech_end: float, truncated: bool) -> list:
        cfg = self.config
        windows = self._segment
        if not truncated:
            drop = self._silence_run - min(self._silence_run, cfg.windows(cfg.post_roll_s))
            if drop:
                windows = windows[:-drop]
        confirmed, speech_windows, barge_in = self._confirmed, self._speech_windows, self._barge_in
        self._segment = []
        if truncated:   # speech goes on: the next window opens the next segment, confirmed or not as this one
            self._continues = True
            self._silence_run = self._speech_windows = 0
            self._barge_run = []
        else:
            self._reset_segment_state()
        if not confirmed:
            dropped = SpeechEnded(speech_end, None, "overlaps the robot's own speech (no barge-in)", announced=False)
            return [] if truncated else [dropped]
        segment = self._build_segment(windows, speech_end, truncated, speech_windows, barge_in)
        reason = "" if segment is not None else f"speech shorter than {cfg.min_speech_s} s"
        if truncated:
            return [SegmentTruncated(segment)] if segment is not None else []
        return [SpeechEnded(speech_end, segment, reason)]

    def _build_segment(self, windows: list[_Window], speech_end: float, truncated: bool,
                       speech_windows: int | None = None, barge_in: bool | None = None) -> Segment | None:
        """The segment of these windows; None when it holds too little speech."""
        cfg = self.config
        speech_windows = self._speech_windows if speech_windows is None else speech_windows
        if speech_windows * cfg.window_s < cfg.min_speech_s:
            return None
        return Segment(samples=np.concatenate([w.samples for w in windows]), start=windows[0].time,
                       end=windows[-1].time + (cfg.window_samples - 1) / cfg.sample_rate, speech_end=speech_end,
                       truncated=truncated, barge_in=self._barge_in if barge_in is None else barge_in)
