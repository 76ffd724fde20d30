"""audio_input node: microphone (sounddevice) or an audio file/stream replayed in real time → /audio/chunks.

Publishes mmchat_ros/AudioChunk (16 kHz mono int16, chunk_samples each, stamped with the capture time of the first
sample) with sensor-data QoS. Capture runs in its own thread (a NodeThread: it blocks in the sound card's read, or
in the file's real-time pacing, neither a queue nor a paced loop). A missing or failing sound card is logged with the
list of devices and retried every retry_s; the node stays up. The file source can wait for a subscriber (or a delay)
before playing, append silence so the last utterance is closed by the VAD, loop, and idle or exit at the end.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np

from mmchat_ros.backends.audio_io import (AudioDeviceError, DeviceAudioSource, FileAudioSource,
                                          int16_array)
from mmchat_ros.core import topics
from mmchat_ros.msg import AudioChunk
from mmchat_ros.nodes.base import MmchatNode, NodeThread
from mmchat_ros.nodes.common import Param, run_node, seconds_to_stamp

PARAMS = {
    "source": Param("device", "'device' (microphone through sounddevice) or 'file' (an audio file or stream)"),
    "device": Param("", "input device: '' = system default, a number = device index, text = part of its name"),
    "device_sample_rate": Param(0, "rate to open the device at, Hz; 0 = sample_rate (the audio is resampled to "
                                   "sample_rate when they differ)"),
    "device_channels": Param(1, "channels to capture from the device (downmixed to mono)"),
    "retry_s": Param(5.0, "after a device error, try to open the device again this often, s"),
    "file_path": Param("", "audio file to replay with source 'file' (WAV of any PCM/float kind, FLAC, OGG, "
                           "...: any rate and channels, downmixed and resampled); '-' reads a WAV stream (or any "
                           "such file) from standard input"),
    "realtime": Param(True, "replay the file at its real speed (false: as fast as subscribers take it)"),
    "start": Param("on_subscriber", "when file playback starts: 'immediate', 'on_subscriber' (once /audio/chunks "
                                    "has a subscriber) or 'delay' (start_delay_s after start-up)"),
    "min_subscribers": Param(1, "with start 'on_subscriber': how many subscribers /audio/chunks needs (e.g. 2 when "
                                "a recorder or test listens besides the vad)"),
    "start_delay_s": Param(0.5, "wait this long after start (or after the first subscriber appears), s"),
    "lead_silence_s": Param(0.0, "silence sent before the file's audio, s"),
    "trail_silence_s": Param(1.0, "silence sent after the file's audio, so the VAD sees the last utterance end, s"),
    "loop": Param(False, "replay the file forever"),
    "at_end": Param("idle", "after the file: 'idle' (stay up, publish nothing) or 'exit' (shut the node down)"),
    "sample_rate": Param(16000, "rate of the published audio, Hz"),
    "chunk_samples": Param(512, "samples per published chunk (512 = 32 ms at 16 kHz, one Silero VAD window)"),
    "frame_id": Param("microphone", "frame_id of the chunks"),
}


class AudioInputNode(MmchatNode):
    def __init__(self):
        super().__init__("audio_input", PARAMS)
        if self.p.source not in ("device", "file"):
            raise ValueError(f"source must be 'device' or 'file', got '{self.p.source}'")
        if self.p.start not in ("immediate", "on_subscriber", "delay"):
            raise ValueError(f"start must be 'immediate', 'on_subscriber' or 'delay', got '{self.p.start}'")
        if self.p.at_end not in ("idle", "exit"):
            raise ValueError(f"at_end must be 'idle' or 'exit', got '{self.p.at_end}'")
        if self.p.sample_rate <= 0 or self.p.chunk_samples <= 0:
            raise ValueError("sample_rate and chunk_samples must be positive")
        self.publisher = self.publish_to(topics.AUDIO_CHUNKS, AudioChunk)
        self.chunks_sent = 0
        if self.p.source == "file":
            if not self.p.file_path:
                raise ValueError("source 'file' needs file_path")
            self.source = FileAudioSource(self.p.file_path, self.p.sample_rate, self.p.chunk_samples,
                                          realtime=self.p.realtime, lead_silence_s=self.p.lead_silence_s,
                                          trail_silence_s=self.p.trail_silence_s, loop=self.p.loop)
            capture = self.file_loop
        else:
            self.source = DeviceAudioSource(self.p.device, self.p.sample_rate, self.p.chunk_samples,
                                            self.p.device_sample_rate, self.p.device_channels)
            capture = self.device_loop
        self.start_worker(NodeThread(self, "capture", capture))
        what = self.p.file_path if self.p.source == "file" else f"device '{self.p.device or 'default'}'"
        self.get_logger().info(f"audio input ready: {self.p.source} {what} → /audio/chunks "
                               f"({self.p.sample_rate} Hz mono, {self.p.chunk_samples} samples a chunk)")

    def publish_chunk(self, samples: np.ndarray, capture_time: float) -> None:
        msg = AudioChunk()
        msg.header.stamp = seconds_to_stamp(capture_time)
        msg.header.frame_id = self.p.frame_id
        msg.sample_rate = self.p.sample_rate
        msg.channels = 1
        msg.samples = int16_array(samples)
        self.publisher.publish(msg)
        self.chunks_sent += 1

    def device_loop(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                self.source.run(self.publish_chunk, stopping)
            except AudioDeviceError as exc:
                self.get_logger().error(f"{exc} — retrying in {self.p.retry_s} s")
            except Exception as exc:  # noqa: BLE001 - the node stays up and says why
                self.get_logger().error(f"audio capture failed: {type(exc).__name__}: {exc} — retrying in "
                                        f"{self.p.retry_s} s")
            stopping.wait(self.p.retry_s)

    def file_loop(self, stopping: threading.Event) -> None:
        try:
            if not self.wait_to_start(stopping):
                return
            self.get_logger().info(f"playing {self.p.file_path}")
            sent = self.source.run(self.publish_chunk, stopping)
            if stopping.is_set():
                return
            self.get_logger().info(f"end of {self.p.file_path}: {sent} chunks "
                                   f"({sent * self.p.chunk_samples / self.p.sample_rate:.2f} s) published")
        except Exception as exc:  # noqa: BLE001 - a bad file is reported, the node idles
            self.get_logger().error(f"cannot replay {self.p.file_path}: {type(exc).__name__}: {exc}")
            self.failed = self.p.at_end == "exit"
        if self.p.at_end == "exit":
            time.sleep(0.2)   # let the last best-effort chunks leave before the participant goes away
            self.context.try_shutdown()

    def wait_to_start(self, stopping: threading.Event) -> bool:
        if self.p.start == "on_subscriber":
            self.get_logger().info(f"waiting for {self.p.min_subscribers} subscriber(s) on /audio/chunks")
            while self.publisher.get_subscription_count() < self.p.min_subscribers:
                if stopping.wait(0.05):
                    return False
        if self.p.start in ("on_subscriber", "delay") and self.p.start_delay_s > 0:
            # after discovery the subscriber's side may need a moment before it receives
            if stopping.wait(self.p.start_delay_s):
                return False
        return True


def main(args=None):
    return run_node(AudioInputNode, args)


if __name__ == "__main__":
    sys.exit(main())
