"""asr node: faster-whisper on each /speech/segment → mmchat_ros/Transcript on /speech/transcript.

Thin wrapper around backends.asr.WhisperRecognizer. Recognition runs in a QueueWorker (never in a callback);
it starts early on /speech/segment_early (the vad's guess when the speech pauses, identical to the segment that
will end if the silence lasts): when /speech/segment then arrives unchanged, that result is published at once, so
the vad's speech-end delay and the recognition overlap. End-pointing by the command language (publish_complete_early):
when the words at the pause already make a whole utterance (backends.asr.reads_as_complete_utterance: "Take off.",
not "Fly forward," nor "take off and"), they are published when recognised, without waiting for the vad's end delay;
if the speech then goes on after all, only what was said after the pause is recognised and published, so nothing is
acted on twice;
segments wait in a short queue (the oldest is dropped, with a warning, when speech comes faster than it is
recognised). Each transcript carries the language, a confidence (exp of the average token log-probability) and the
capture times of the speech; empty results (Whisper's no-speech rule) are logged, not published.

A lifecycle node (nodes/lifecycle.py): inactive, it keeps the model and costs nothing; segments that come meanwhile
are not heard.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from mmchat_ros.backends.asr import (COMMAND_VOCABULARY, DEFAULT_CACHE_DIR, WhisperRecognizer, planner_reads_cleanly,
                                     reads_as_complete_utterance)
from mmchat_ros.backends.audio_io import int16_numpy
from mmchat_ros.core import topics
from mmchat_ros.msg import SpeechSegment, Transcript
from mmchat_ros.nodes.base import QueueWorker
from mmchat_ros.nodes.common import Param, stamp_to_seconds
from mmchat_ros.nodes.lifecycle import LIFECYCLE_PARAMS, MmchatLifecycleNode, run_lifecycle_node

PARAMS = {
    "model": Param("tiny.en-commands", "Whisper model: 'tiny.en-commands' (tiny.en with the repository's "
                                       "command-speech adapter merged in), 'tiny.en' or 'base' (shipped by installed "
                                       "packages), a CTranslate2 model directory, or a hub name such as 'small.en' "
                                       "(needs allow_download); on the spoken dev commands the adapter took tiny.en "
                                       "from 0.91 to 0.97 understood, at the same cost; base was less accurate than "
                                       "tiny.en and twice as slow"),
    "cache_dir": Param(DEFAULT_CACHE_DIR, "where split packaged models are assembled, adapted models are built and "
                                          "hub models are stored"),
    "allow_download": Param(False, "let faster-whisper fetch models by name from the model hub (robots with "
                                   "internet); off: only local and packaged models"),
    "compute_type": Param("int8", "CTranslate2 compute type: int8 (fastest on CPU), int8_float32, float32"),
    "cpu_threads": Param(2, "CPU threads for recognition; under load 1 thread was slower, and OpenMP's passive "
                            "wait no faster (docs/speech.md)"),
    "language": Param("en", "ISO 639-1 language code; empty = detect per segment (multilingual models only)"),
    "beam_size": Param(1, "beam width; 1 = greedy (fastest). On the spoken dev commands beam 5 made 1.3 points "
                          "fewer word errors and 1.6 points more commands understood, for ~15 % more recognition "
                          "time (end of speech → transcript): greedy kept for latency"),
    "hypotheses": Param(5, "hypotheses decoded (beam search at least this wide); the first one the command "
                           "language reads cleanly is published (backends.asr.planner_reads_cleanly: the "
                           "best-scored one when it does); 1 = the best-scored only. On the spoken dev commands 5 "
                           "raised commands understood from 0.854 to 0.880 (worst voice 0.672 to 0.752) at the same "
                           "recognition time"),
    "escalate_beam_size": Param(10, "when none of the hypotheses reads cleanly, this many more from a beam this "
                                    "wide over the same encoder output (paid for by those utterances only); "
                                    "<= hypotheses: none. Spoken dev commands understood 0.892 -> 0.900"),
    "fast_window_s": Param(10.0, "first decode through this shorter encoder window (at least the segment + 1 s); "
                                 "its best-scored hypothesis is kept when it reads cleanly with at least "
                                 "fast_min_confidence and nothing looks wrong, otherwise recognition goes on with "
                                 "window_s. 0 = off. Recognition time p50 -12 % (interleaved, load 11)"),
    "fast_min_confidence": Param(0.5, "confidence (0..1) the short window's hypothesis needs to stand: unsure ones "
                                      "were clean but wrong ('hello there drone' -> 'Follow me drone.', 0.38)"),
    "fallback_beam_size": Param(5, "beam width of a second decode when the first loops (a phrase repeated, "
                                   "repetitive text); <= beam_size: no second decode"),
    "window_s": Param(20.0, "encoder window, s (Whisper's own is 30): 20 is as accurate for commands at half the "
                            "cost; shorter windows (at least the segment + 1 s) make tiny.en loop, and results that "
                            "look wrong are decoded again at 30 s"),
    "initial_prompt": Param(COMMAND_VOCABULARY, "text the decoder sees as preceding context: the command "
                                                "vocabulary biases recognition towards it (measured: fewer word "
                                                "errors and more commands understood than with none); empty = "
                                                "none"),
    "hotwords": Param("", "extra words to favour, e.g. names of places or operators (placed before the initial "
                          "prompt in the same decoder context); empty = none"),
    "no_speech_threshold": Param(0.8, "a result whose no-speech probability (0..1) is above this is treated as "
                                      "silence and not published"),
    "logprob_threshold": Param(-1.0, "average log-probability below which a short-window result is decoded again "
                                     "with the 30 s window"),
    "min_confidence": Param(0.0, "transcripts below this confidence (0..1) are logged and not published"),
    "early_recognition": Param(True, "start recognising when the speech pauses (/speech/segment_early) and publish "
                                     "that result when the segment ends unchanged: hides the vad's end delay"),
    "publish_complete_early": Param(False, "with early_recognition: publish at once what was said up to the pause "
                                           "when it reads as a complete utterance (a full stop, nothing left "
                                           "hanging, read cleanly), without waiting for the vad's end delay; if the "
                                           "speech goes on, only the rest is recognised and published. Off: a chain "
                                           "said with pauses ('take off, fly forward two meters, then land') became "
                                           "'Take off.' and a second command that replaced the take-off"),
    "max_queue": Param(4, "segments waiting for recognition at most; the oldest is dropped beyond"),
    "warm_up": Param(True, "decode a second of silence at start-up so the first command is not slower"),
    **LIFECYCLE_PARAMS,
}


class AsrNode(MmchatLifecycleNode):
    """Lifecycle: configure loads the Whisper model (and warms it up), activate subscribes to /speech/segment (and
    /speech/segment_early) and starts recognition, deactivate stops it (segments waiting are dropped; a decode under
    way ends first), cleanup frees the model."""

    def __init__(self):
        super().__init__("asr", PARAMS)
        if not 1.0 <= self.p.window_s <= 30.0:
            raise ValueError(f"window_s must be within 1..30 s, got {self.p.window_s}")
        self.recognizer: WhisperRecognizer | None = None
        self.early: EarlyResult | None = None   # recognition of the last /speech/segment_early
        self.acted: SpeechSegment | None = None  # the early segment of this speech whose words were published

    def configure(self) -> None:
        self.load_model()
        self.transcript_pub = self.publish_to(topics.TRANSCRIPT, Transcript)

    def activate(self) -> None:
        self.early, self.acted = None, None   # speech heard before a deactivate is not continued
        # max_queue 0: the newest segment only. A stop waits for a decode to end: it cannot be cut short, and a
        # process that exits under CTranslate2's threads aborts ('terminate called ...'); one slower than the
        # stop's wait (a busy computer) is still waited for before the process exits.
        self.recognition = QueueWorker(self, "recognition", self.recognize, capacity=max(1, self.p.max_queue),
                                       stop_timeout_s=30.0, finish_before_exit=True)
        self.start_worker(self.recognition)
        self.subscribe_to(topics.SPEECH_SEGMENT, SpeechSegment, self.on_segment)
        if self.p.early_recognition:
            self.subscribe_to(topics.SPEECH_SEGMENT_EARLY, SpeechSegment, self.on_early_segment)

    def release(self) -> None:
        self.recognizer = None

    def on_early_segment(self, msg: SpeechSegment) -> None:
        self.on_segment(msg, early=True)

    def on_segment(self, msg: SpeechSegment, early: bool = False) -> None:
        if len(msg.samples) == 0 or msg.sample_rate == 0:
            self.get_logger().error("ignored empty speech segment (no samples or sample rate 0)")
            return
        for dropped, _ in self.recognition.offer((msg, early)):
            seconds = len(dropped.samples) / dropped.sample_rate
            self.get_logger().warn(f"recognition is behind: dropped a {seconds:.1f} s segment")

    def load_model(self) -> None:
        """At configure, on the executor's thread (at start, before the node spins): a SIGINT or SIGTERM then ends
        the node once the native load or warm-up has returned, never under it."""
        log = self.get_logger()
        log.info(f"loading ASR model '{self.p.model}'")
        try:
            started = time.monotonic()
            self.recognizer = WhisperRecognizer(
                self.p.model, cache_dir=self.p.cache_dir, allow_download=self.p.allow_download,
                compute_type=self.p.compute_type, cpu_threads=self.p.cpu_threads, language=self.p.language,
                beam_size=self.p.beam_size, window_s=self.p.window_s, initial_prompt=self.p.initial_prompt,
                hotwords=self.p.hotwords, no_speech_threshold=self.p.no_speech_threshold,
                logprob_threshold=self.p.logprob_threshold, fallback_beam_size=self.p.fallback_beam_size,
                hypotheses=self.p.hypotheses, escalate_beam_size=self.p.escalate_beam_size,
                fast_window_s=self.p.fast_window_s, fast_min_confidence=self.p.fast_min_confidence,
                accept=planner_reads_cleanly)
            if self.p.warm_up:
                self.recognizer.warm_up()
        except Exception as exc:  # noqa: BLE001 - no model: say why, stay up (segments are dropped)
            log.error(f"cannot load ASR model '{self.p.model}': {type(exc).__name__}: {exc}; segments will be "
                      "dropped")
            self.recognizer = None
        else:
            log.info(f"asr ready: {self.recognizer.model_path} ({self.p.compute_type}, {self.p.cpu_threads} threads, "
                     f"window {self.p.window_s:.0f} s) in {time.monotonic() - started:.1f} s")

    def recognize(self, segment: tuple[SpeechSegment, bool]) -> None:
        msg, early = segment
        if self.recognizer is None:
            self.get_logger().error("dropped a speech segment: no ASR model loaded", throttle_duration_sec=10.0)
            return
        if early and self.recognition.waiting:
            # something newer is waiting (this segment's end, or more speech): no head start to win, and the words
            # up to this pause will be published with what follows them
            self.get_logger().info("recognition is behind: skipped the segment up to a pause")
            return
        samples, notes = int16_numpy(msg.samples), []
        if self.acted is not None and overlaps(self.acted, msg):
            # the words up to an earlier pause were published (and acted on): only what came after them is new
            samples = samples[samples_before(msg, stamp_to_seconds(self.acted.end)):]
            notes = ["after words already published"]
        # else it ends where the published words did
        something_new = not notes or samples.size >= MIN_NEW_S * msg.sample_rate
        if early:
            if something_new:
                result = self.recognizer.transcribe(samples, msg.sample_rate)
                published = self.p.publish_complete_early and reads_as_complete_utterance(result.text)
                if published:
                    self.publish(msg, result, [*notes, "at the pause"])
                    self.acted = msg
                self.early = EarlyResult(msg, result, notes, published)
            return
        early_result, self.early, self.acted = self.early, None, None
        if early_result is not None and segment_key(early_result.segment) == segment_key(msg):
            # the segment ended exactly as it was when the speech paused
            if not early_result.published:
                self.publish(msg, early_result.result, [*early_result.notes, "from the pause"])
            return
        if something_new:
            self.publish(msg, self.recognizer.transcribe(samples, msg.sample_rate), notes)

    def publish(self, msg: SpeechSegment, result, notes: list[str]) -> None:
        latency = time.time() - stamp_to_seconds(msg.end)
        summary = (f"({result.audio_s:.2f} s audio{''.join(', ' + note for note in notes)}, "
                   f"{result.compute_s * 1000:.0f} ms, "
                   f"window {result.window_s:.0f} s{', retried' if result.retried else ''}"
                   f"{f', {result.passes} decodes' if result.passes > 1 else ''}, confidence {result.confidence:.2f}, "
                   f"{latency * 1000:.0f} ms after the segment's end)")
        if not result.text:
            self.get_logger().info(f"no speech recognised {summary}")
            return
        if result.confidence < self.p.min_confidence:
            self.get_logger().info(f"transcript below min_confidence dropped: '{result.text}' {summary}")
            return
        transcript = Transcript()
        transcript.header.stamp = self.get_clock().now().to_msg()
        transcript.header.frame_id = msg.header.frame_id
        transcript.text = result.text
        transcript.language = result.language
        transcript.confidence = float(result.confidence)
        transcript.segment_start = msg.start
        transcript.segment_end = msg.end
        self.transcript_pub.publish(transcript)
        self.get_logger().info(f"transcript: '{result.text}' {summary}")


@dataclass
class EarlyResult:
    """Recognition of a /speech/segment_early, kept for the /speech/segment that follows."""
    segment: SpeechSegment
    result: object
    notes: list[str]
    published: bool             # read as a complete utterance and published at the pause


MIN_NEW_S = 0.2     # the vad's min_speech_s: less audio after published words is their trailing silence


def segment_key(msg: SpeechSegment) -> tuple:
    return msg.start.sec, msg.start.nanosec, msg.end.sec, msg.end.nanosec, len(msg.samples)


def overlaps(earlier: SpeechSegment, msg: SpeechSegment) -> bool:
    """``msg`` holds audio of ``earlier`` (capture times): the same speech, seen again at a later pause or its end.
    By time, not samples: a chunk lost on the way makes the vad's later view of the same speech differ a little."""
    return stamp_to_seconds(msg.start) <= stamp_to_seconds(earlier.end)


def samples_before(msg: SpeechSegment, time_s: float) -> int:
    """How many of ``msg``'s samples were captured up to ``time_s``."""
    return max(0, min(len(msg.samples), int(round((time_s - stamp_to_seconds(msg.start)) * msg.sample_rate)) + 1))


def main(args=None):
    return run_lifecycle_node(AsrNode, args)


if __name__ == "__main__":
    sys.exit(main())
