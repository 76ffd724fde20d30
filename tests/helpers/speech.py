"""Real synthesized speech for the speech tests and bench: espeak-ng voices and the Piper voice, made at run time
and cached (per process) in a temporary directory, as 16 kHz mono int16."""
from __future__ import annotations

import atexit
import hashlib
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from mmchat_ros.backends.audio_io import read_wav_as, resample, write_wav

SAMPLE_RATE = 16000

# Drone commands: the test and bench phrase set (reference transcripts).
COMMANDS = [
    "take off", "land now", "fly forward two meters", "turn left ninety degrees", "turn right forty five degrees",
    "fly up one meter", "go down two meters", "move left three meters", "move right two meters",
    "fly backward one meter", "hover here", "stop", "return home", "follow me", "stop following",
    "climb to five meters", "descend to two meters", "rotate one hundred eighty degrees",
    "fly forward five meters then land", "take a picture", "take off and hover at three meters", "turn around",
    "go forward ten meters", "fly to the red box", "land on the platform", "emergency stop", "come back",
    "fly slower", "speed up a little", "yaw left thirty degrees", "fly in a square with two meter sides",
    "what is your battery level",
]

# voice name -> how to speak with it
VOICES = {
    "espeak-us": ("espeak", "en-us", 150),        # espeak-ng American English, male
    "espeak-gb-f": ("espeak", "en-gb+f3", 145),   # espeak-ng British English, female variant
    "piper-joe": ("piper", "", 0),                # Piper en_US joe (medium), a neural voice
}


@lru_cache(maxsize=1)
def cache_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="mmchat-speech-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@lru_cache(maxsize=1)
def _piper():
    from mmchat_ros.backends.tts import PiperSynthesizer
    return PiperSynthesizer(noise_scale=0.0, noise_w_scale=0.0)     # the same audio every run: no flaky tests


def speak(text: str, voice: str = "espeak-us") -> np.ndarray:
    """``text`` spoken by ``voice`` (see VOICES), trimmed of leading/trailing silence, 16 kHz int16."""
    engine, name, speed = VOICES[voice]
    key = hashlib.sha1(f"{voice}|{text}".encode()).hexdigest()[:16]
    path = cache_dir() / f"{voice}-{key}.wav"
    if not path.exists():
        if engine == "espeak":
            raw = path.with_suffix(".raw.wav")
            subprocess.run(["espeak-ng", "-v", name, "-s", str(speed), "-w", str(raw), text], check=True,
                           capture_output=True, timeout=30)
            samples = read_wav_as(raw, SAMPLE_RATE)
            raw.unlink()
        else:
            synth = _piper()
            samples = resample(synth.synthesize(text), synth.sample_rate, SAMPLE_RATE)
        write_wav(path, trim(samples), SAMPLE_RATE)
    return read_wav_as(path, SAMPLE_RATE)


def trim(samples: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Cut leading and trailing near-silence (below ``threshold`` of full scale), keeping 10 ms margins."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold * 32768)
    if loud.size == 0:
        return samples[:0]
    margin = SAMPLE_RATE // 100
    return samples[max(0, loud[0] - margin):loud[-1] + margin]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SAMPLE_RATE)), dtype=np.int16)


def compose(*parts) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Concatenate speech arrays and silences (a number = seconds of silence). Returns the audio and the (start,
    end) seconds of each speech part."""
    pieces, spans, position = [], [], 0
    for part in parts:
        audio = silence(part) if isinstance(part, (int, float)) else np.asarray(part, dtype=np.int16)
        if not isinstance(part, (int, float)):
            spans.append((position / SAMPLE_RATE, (position + audio.size) / SAMPLE_RATE))
        pieces.append(audio)
        position += audio.size
    return np.concatenate(pieces), spans


def scale(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """Louder or quieter by ``gain_db`` (clipped to int16)."""
    return np.clip(samples.astype(np.float32) * 10 ** (gain_db / 20), -32768, 32767).astype(np.int16)


def write(path: Path, samples: np.ndarray) -> Path:
    write_wav(path, samples, SAMPLE_RATE)
    return path
