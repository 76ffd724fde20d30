"""Silero VAD (ONNX) run with onnxruntime: speech probability of each 512-sample window at 16 kHz.

The `silero-vad` package ships the model; its Python wrapper imports torch, so the ONNX file is located without
importing the package and run here, with the same streaming state as the official OnnxWrapper: the recurrent state
(2 x 1 x 128) and the last 64 samples of the previous window prepended to each window.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 512        # what the model takes at 16 kHz
CONTEXT_SAMPLES = 64        # samples of the previous window the official wrapper prepends


def packaged_model_path(name: str = "silero_vad.onnx") -> Path:
    """The ONNX model inside the installed silero-vad package (found without importing it: it imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the silero-vad package is not installed (pip install silero-vad; it needs no "
                                "torch for the ONNX model), and no model_path was given")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"silero-vad is installed but has no data/{name}")


class SileroVad:
    """Callable: int16 (or float in [-1, 1]) window of 512 samples -> speech probability 0..1. Stateful: windows
    must be consecutive audio; reset() between unrelated streams."""

    def __init__(self, model_path: str | Path | None = None, threads: int = 1):
        import onnxruntime
        self.model_path = Path(model_path) if model_path else packaged_model_path()
        if not self.model_path.is_file():
            raise FileNotFoundError(f"Silero VAD model not found: {self.model_path}")
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = max(1, threads)   # one window is ~0.1 ms of work: threads only add overhead
        self.session = onnxruntime.InferenceSession(str(self.model_path), sess_options=options,
                                                    providers=["CPUExecutionProvider"])
        inputs = {i.name for i in self.session.get_inputs()}
        if not {"input", "state", "sr"} <= inputs:
            raise ValueError(f"{self.model_path} is not a Silero VAD v5+ model (inputs {sorted(inputs)})")
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT_SAMPLES), dtype=np.float32)

    def __call__(self, window: np.ndarray) -> float:
        window = np.asarray(window)
        if window.shape != (WINDOW_SAMPLES,):
            raise ValueError(f"Silero VAD takes windows of {WINDOW_SAMPLES} samples at {SAMPLE_RATE} Hz, "
                             f"got shape {window.shape}")
        audio = window.astype(np.float32) / 32768.0 if window.dtype == np.int16 else window.astype(np.float32)
        x = np.concatenate([self._context, audio[None, :]], axis=1)
        probability, self._state = self.session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = x[:, -CONTEXT_SAMPLES:]
        return float(probability[0, 0])

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Per-window probabilities of a whole clip (from a fresh state; a trailing partial window is dropped)."""
        self.reset()
        count = len(samples) // WINDOW_SAMPLES
        return np.array([self(samples[i * WINDOW_SAMPLES:(i + 1) * WINDOW_SAMPLES]) for i in range(count)])
