"""vad node: Silero VAD on /audio/chunks → speech segments on /speech/segment and speaking events on /speech/active.

When the speech pauses for post_roll_s, the segment it will be if the silence lasts goes out early on
/speech/segment_early (the asr node starts on it, hiding the speech-end delay).

Thin wrapper around core.vad_segmenter.VadSegmenter (start/end delays, pre-roll, maximum length) with
backends.vad.SileroVad as its classifier (~0.2 ms a 32 ms window, so it runs in the subscription callback).
It listens to /tts/speaking: speech that starts while the robot talks is its own voice coming back through the
microphone and is dropped, unless barge-in is detected (loud, confident speech over it: see core/vad_segmenter.py);
a barge-in raises /speech/active, which makes the tts node stop talking.
"""
from __future__ import annotations

import sys
import time

from std_msgs.msg import Bool

from mmchat_ros.backends.audio_io import int16_array, int16_numpy
from mmchat_ros.backends.vad import SAMPLE_RATE, WINDOW_SAMPLES, SileroVad
from mmchat_ros.core import topics
from mmchat_ros.core.vad_segmenter import (SegmentTruncated, SegmenterConfig, SelfSpeechConfig,
                                           SelfSpeechGate, SpeechEnded, SpeechPaused, SpeechStarted, VadSegmenter)
from mmchat_ros.msg import AudioChunk, SpeechSegment
from mmchat_ros.nodes.base import MmchatNode
from mmchat_ros.nodes.common import Param, run_node, seconds_to_stamp, stamp_to_seconds

PARAMS = {
    "model_path": Param("", "Silero VAD ONNX model; empty = silero_vad.onnx from the silero-vad package"),
    "threshold": Param(0.5, "speech probability (0..1) that starts and sustains speech"),
    "hysteresis": Param(0.15, "probability below threshold - hysteresis counts as silence"),
    "speech_start_s": Param(0.064, "speech must last this long before a segment opens (speech-start delay), s"),
    "speech_end_s": Param(0.3, "silence this long ends a segment (speech-end delay), s"),
    "pre_roll_s": Param(0.25, "audio kept before the detected start, so the first syllable is not cut, s"),
    "post_roll_s": Param(0.1, "trailing silence kept at the end of a segment, s"),
    "min_speech_s": Param(0.2, "segments with less speech than this are dropped (clicks, breaths), s"),
    "max_segment_s": Param(15.0, "longer speech is cut into segments of at most this length, s"),
    "early_segments": Param(True, "when the speech pauses for post_roll_s, publish the segment it will be if the "
                                  "silence lasts on /speech/segment_early, so recognition can start before the end "
                                  "delay has passed"),
    "self_speech_filter": Param(True, "drop speech that starts while the robot talks (/tts/speaking), unless "
                                      "barge-in is detected"),
    "echo_tail_s": Param(0.5, "the robot's voice may still reach the microphone this long after it stops "
                              "(output latency, reverberation), s"),
    "barge_in_threshold": Param(0.8, "speech probability that counts as the user talking over the robot"),
    "barge_in_min_s": Param(0.25, "barge-in needs this much consecutive confident, loud speech, s"),
    "barge_in_min_dbfs": Param(-35.0, "barge-in needs at least this level (RMS, dBFS); set it above the level at "
                                      "which the robot's own voice reaches the microphone"),
}


class VadNode(MmchatNode):
    def __init__(self):
        super().__init__("vad", PARAMS)
        config = SegmenterConfig(
            sample_rate=SAMPLE_RATE, window_samples=WINDOW_SAMPLES, threshold=self.p.threshold,
            hysteresis=self.p.hysteresis, speech_start_s=self.p.speech_start_s, speech_end_s=self.p.speech_end_s,
            pre_roll_s=self.p.pre_roll_s, post_roll_s=self.p.post_roll_s, min_speech_s=self.p.min_speech_s,
            max_segment_s=self.p.max_segment_s)
        self.gate = SelfSpeechGate(SelfSpeechConfig(
            echo_tail_s=self.p.echo_tail_s, barge_in_threshold=self.p.barge_in_threshold,
            barge_in_min_s=self.p.barge_in_min_s, barge_in_min_dbfs=self.p.barge_in_min_dbfs)) \
            if self.p.self_speech_filter else None
        self.vad = SileroVad(self.p.model_path or None)
        self.segmenter = VadSegmenter(self.vad, config, self.gate)
        self.segment_pub = self.publish_to(topics.SPEECH_SEGMENT, SpeechSegment)
        self.active_pub = self.publish_to(topics.SPEECH_ACTIVE, Bool)
        self.early_pub = self.publish_to(topics.SPEECH_SEGMENT_EARLY, SpeechSegment) \
            if self.p.early_segments else None
        self.subscribe_to(topics.AUDIO_CHUNKS, AudioChunk, self.on_chunk)
        self.subscribe_to(topics.TTS_SPEAKING, Bool, self.on_robot_speaking)
        self.active_pub.publish(Bool(data=False))
        self.segments = 0
        self.vad_seconds = 0.0
        self.get_logger().info(f"vad ready: Silero {self.vad.model_path.name}, threshold {self.p.threshold}, "
                               f"end delay {self.p.speech_end_s} s, pre-roll {self.p.pre_roll_s} s, "
                               f"self-speech filter {'on' if self.gate else 'off'}")

    def on_robot_speaking(self, msg: Bool) -> None:
        if self.gate is not None:
            # the chunks are stamped with this host's clock at capture; the change happens now on the same clock
            self.gate.set_robot_speaking(bool(msg.data), time.time())

    def on_chunk(self, msg: AudioChunk) -> None:
        if msg.sample_rate != SAMPLE_RATE or msg.channels != 1:
            self.get_logger().error(f"ignored audio chunk: need {SAMPLE_RATE} Hz mono, got {msg.sample_rate} Hz "
                                    f"with {msg.channels} channel(s)", throttle_duration_sec=5.0)
            return
        started = time.perf_counter()
        try:
            events = self.segmenter.push(int16_numpy(msg.samples), stamp_to_seconds(msg.header.stamp))
        except Exception as exc:  # noqa: BLE001 - a bad chunk is reported, the stream goes on
            self.get_logger().error(f"VAD failed on a chunk: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0)
            return
        self.vad_seconds += time.perf_counter() - started
        for event in events:
            self.on_event(event)

    def on_event(self, event) -> None:
        log = self.get_logger()
        if isinstance(event, SpeechStarted):
            self.active_pub.publish(Bool(data=True))
            log.info("speech started" + (" (barge-in over the robot's voice)" if event.barge_in else ""))
        elif isinstance(event, SpeechPaused):
            if self.early_pub is not None:
                self.early_pub.publish(self.segment_msg(event.segment))
        elif isinstance(event, SegmentTruncated):
            self.publish_segment(event.segment)
        elif isinstance(event, SpeechEnded):
            if event.announced:
                self.active_pub.publish(Bool(data=False))
            if event.segment is not None:
                self.publish_segment(event.segment)
            else:
                log.info(f"speech dropped: {event.reason}")

    def segment_msg(self, segment) -> SpeechSegment:
        msg = SpeechSegment()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.start = seconds_to_stamp(segment.start)
        msg.end = seconds_to_stamp(segment.end)
        msg.sample_rate = SAMPLE_RATE
        msg.samples = int16_array(segment.samples)
        msg.truncated = segment.truncated
        return msg

    def publish_segment(self, segment) -> None:
        self.segment_pub.publish(self.segment_msg(segment))
        self.segments += 1
        self.get_logger().info(f"segment {self.segments}: {segment.duration_s:.2f} s"
                               f"{' (truncated)' if segment.truncated else ''}"
                               f"{' (barge-in)' if segment.barge_in else ''}, speech ended "
                               f"{time.time() - segment.speech_end:.3f} s ago")

    def close(self) -> None:
        if self.segmenter.windows_processed:
            per_window_us = self.vad_seconds / self.segmenter.windows_processed * 1e6
            # printed: close() may run from the context's shutdown hook, when /rosout is gone
            print(f"[vad] {self.segmenter.windows_processed} windows, {per_window_us:.0f} us a window "
                  "(VAD + segmenter)", flush=True)


def main(args=None):
    return run_node(VadNode, args)


if __name__ == "__main__":
    sys.exit(main())
