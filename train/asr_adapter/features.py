"""How make_data.py stores features and train.py reads them back (numpy only: train.py runs where the project's
dependencies are not installed). Features lie in [-2, 2] (Whisper clamps log-mel to its maximum - 8 and scales by
1/4; speech peaks well under +2), stored as uint8; the padding after the audio is one constant per utterance."""
from __future__ import annotations

import numpy as np

N_MELS = 80
QUANT_LOW, QUANT_SPAN = -2.0, 4.0


def quantise(features: np.ndarray) -> np.ndarray:
    return np.clip(np.round((features - QUANT_LOW) / QUANT_SPAN * 255.0), 0, 255).astype(np.uint8)


def dequantise(q: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) / 255.0 * QUANT_SPAN + QUANT_LOW


def window_from_stored(mel_q: np.ndarray, floor: float, window_frames: int) -> np.ndarray:
    """The encoder input [80, window_frames] rebuilt from the stored frames [n, 80] and the floor."""
    features = np.full((N_MELS, window_frames), floor, dtype=np.float32)
    features[:, :mel_q.shape[0]] = dequantise(mel_q).T
    return features
