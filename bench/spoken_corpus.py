#!/usr/bin/env python3
"""Spoken corpus: utterance texts rendered by synthetic voices and played through the real speech pipeline pieces
in-process — Silero VAD + the segmenter (fed 32 ms chunks with capture times, as the vad node is) → faster-whisper
(backends/asr.py WhisperRecognizer, as the asr node runs it) — giving each utterance's transcript and timings.

    from spoken_corpus import VOICES, AsrSettings, transcribe_corpus
    results = transcribe_corpus(["take off", "land now"], "espeak-us-m3", AsrSettings(model="tiny.en"))
    results[0].transcript, results[0].latency_ms

    python bench/spoken_corpus.py --voice espeak-us-m3 "take off" "land now"       # transcripts
    python bench/spoken_corpus.py --corpus tests/data/commands/dev.yaml --voices all --model tiny.en   # WER table

The voices (VOICES; ISSUE 18 asks for >= 4, speeds 0.9-1.2, at least two that no other test uses — the speech tests
use espeak-ng en-us at 150 wpm, en-gb+f3 at 145 wpm and Piper joe at its own speed; none of those is here):
  espeak-us-m3     espeak-ng American English, male variant 3, 190 wpm (1.09 x espeak-ng's default 175 wpm): a
                   faster, flatter robotic voice.
  espeak-scottish  espeak-ng en-gb-scotland, 160 wpm (0.91 x default): a Scottish accent, the hardest espeak voice
                   for Whisper here.
  espeak-f4        espeak-ng en (British RP), female variant f4, 185 wpm (1.06 x default).
  piper-joe-slow   Piper en_US joe (medium, neural), length_scale 1.15 (15 % slower than its own pace).
  piper-joe-fast   Piper en_US joe, length_scale 0.9 (10 % faster).
"The four voices" of the spoken accuracy figures are DEFAULT_VOICES: espeak-us-m3, espeak-scottish, piper-joe-slow,
piper-joe-fast; espeak-f4 is there for a fifth opinion.

How an utterance is played (the same for every voice and text):
  - the voice's audio is trimmed of its own leading/trailing silence, resampled to 16 kHz int16 mono;
  - LEAD_SILENCE_S of digital silence before it and TRAIL_SILENCE_S after it (so the VAD sees the speech end);
  - fed to a fresh VadSegmenter(SileroVad(), SegmenterConfig()) — the vad node's defaults — in 512-sample chunks
    stamped with their capture time (sample offset / 16 kHz, time 0 = first sample);
  - every segment the VAD emits is recognised (a segment the VAD announced early on SpeechPaused and then ended
    unchanged is recognised once, as the asr node does with early_recognition); Result.segments holds each
    segment's text, Result.transcript their texts joined by a space (the planner would see them as separate
    transcripts: more than one segment means the voice paused longer than speech_end_s inside the utterance).
Timings, in the audio's own time plus measured compute (what the nodes would do live, without DDS):
  - vad_ms: end of speech (the last sample of the trimmed voice audio) → the chunk that completes the final segment
    arrives (chunk end), i.e. the VAD's end delay (speech_end_s 0.3 s, in 32 ms steps);
  - asr_ms: the recognizer's wall time for the last segment;
  - latency_ms: end of speech → transcript of the last segment, with early recognition: recognition of the early
    segment starts when its chunk arrives; the transcript is out when recognition is done if it reads as a complete
    utterance and publish_complete_early is on (the asr node's parameter, off by default), else when both the final
    segment has arrived and recognition is done (max of the two); without an early segment, final arrival + asr_ms.
Caches (both survive runs; delete the directory to start over): rendered audio as WAV under
<cache>/audio/<voice>-<sha1(voice spec|text)>.wav, transcripts as JSON lines under
<cache>/transcripts/<sha1(voice spec|ASR settings|harness version)>.jsonl, one line per text (the latest line for a
text wins). A cached result carries the timings measured when it was made (Result.cached is True).
<cache> is ~/.cache/mmchat_ros/spoken, or $MMCHAT_SPOKEN_CACHE.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))          # tests.helpers.speech: the speech tests' trimming, shared

import numpy as np  # noqa: E402

from mmchat_ros.nodes.asr import PARAMS as ASR_PARAMS  # noqa: E402
from mmchat_ros.backends.asr import ADAPTED_MODELS, adapter_digest  # noqa: E402
from mmchat_ros.backends.audio_io import read_wav_as, resample, write_wav  # noqa: E402
from tests.helpers.speech import trim  # noqa: E402

SAMPLE_RATE = 16000
CHUNK_SAMPLES = 512                 # what audio_input sends and Silero takes: 32 ms
LEAD_SILENCE_S = 0.5
TRAIL_SILENCE_S = 1.0
HARNESS_VERSION = 5                 # part of the transcript cache key: bump when playback or recognition changes,
                                    # the command language's clean reading included (the n-best choice's test);
                                    # 5: a direction no step goes is not a clean reading
DEFAULT_CACHE = "~/.cache/mmchat_ros/spoken"


@dataclass(frozen=True)
class Voice:
    engine: str                     # "espeak" | "piper"
    name: str = ""                  # espeak-ng voice (language + variant); Piper: voice file ('' = packaged joe)
    wpm: int = 0                    # espeak-ng words per minute
    length_scale: float = 1.0       # Piper: > 1 slower, < 1 faster
    description: str = ""

    def spec(self) -> str:
        """What the audio depends on (the cache key)."""
        return f"{self.engine}|{self.name}|{self.wpm}|{self.length_scale:g}"


VOICES: dict[str, Voice] = {
    "espeak-us-m3": Voice("espeak", "en-us+m3", wpm=190,
                          description="espeak-ng American English, male variant 3, 190 wpm (1.09 x default)"),
    "espeak-scottish": Voice("espeak", "en-gb-scotland", wpm=160,
                             description="espeak-ng Scottish English, 160 wpm (0.91 x default)"),
    "espeak-f4": Voice("espeak", "en+f4", wpm=185,
                       description="espeak-ng British English, female variant 4, 185 wpm (1.06 x default)"),
    "piper-joe-slow": Voice("piper", "", length_scale=1.15,
                            description="Piper en_US joe (neural), length_scale 1.15: 15 % slower"),
    "piper-joe-fast": Voice("piper", "", length_scale=0.9,
                            description="Piper en_US joe (neural), length_scale 0.9: 10 % faster"),
}
DEFAULT_VOICES = ["espeak-us-m3", "espeak-scottish", "piper-joe-slow", "piper-joe-fast"]


@dataclass(frozen=True)
class AsrSettings:
    """The WhisperRecognizer options that change a transcript (defaults: the asr node's, read from its PARAMS)."""
    model: str = ASR_PARAMS["model"].default
    beam_size: int = ASR_PARAMS["beam_size"].default
    fallback_beam_size: int = ASR_PARAMS["fallback_beam_size"].default
    window_s: float = ASR_PARAMS["window_s"].default
    initial_prompt: str = ASR_PARAMS["initial_prompt"].default
    hotwords: str = ASR_PARAMS["hotwords"].default
    no_speech_threshold: float = ASR_PARAMS["no_speech_threshold"].default
    logprob_threshold: float = ASR_PARAMS["logprob_threshold"].default
    compute_type: str = ASR_PARAMS["compute_type"].default
    escalate_beam_size: int = ASR_PARAMS["escalate_beam_size"].default
    # further WhisperRecognizer keyword arguments as (name, value) pairs
    extra: tuple = (("hypotheses", ASR_PARAMS["hypotheses"].default),
                    ("fast_window_s", ASR_PARAMS["fast_window_s"].default))

    def key(self) -> str:
        settings = dataclasses.asdict(self)
        if self.model in ADAPTED_MODELS:   # the same name with a retrained adapter is another recogniser
            settings["adapter"] = adapter_digest(ADAPTED_MODELS[self.model][1])
        return json.dumps(settings, sort_keys=True)

    def recognizer_kwargs(self) -> dict:
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("model", "extra")}
        kwargs.update(dict(self.extra))
        if kwargs.get("hypotheses", 1) > 1:     # as the asr node does: more hypotheses when the planner cannot read
            from mmchat_ros.backends.asr import planner_reads_cleanly   # the first decode cleanly
            kwargs["accept"] = planner_reads_cleanly
        return kwargs


@dataclass
class Result:
    text: str                       # what the voice said
    voice: str
    transcript: str                 # the segments' texts joined by a space ('' = nothing recognised)
    segments: list[str] = field(default_factory=list)
    latency_ms: float = float("nan")   # end of speech → transcript of the last segment (see the module doc)
    vad_ms: float = float("nan")       # end of speech → final segment out of the VAD
    asr_ms: float = float("nan")       # recognition of the last segment (wall time)
    audio_s: float = 0.0            # the voice's speech, trimmed
    confidence: float = float("nan")   # of the last segment
    cached: bool = False


def cache_root(cache_dir: str | Path | None = None) -> Path:
    path = Path(cache_dir or os.environ.get("MMCHAT_SPOKEN_CACHE", DEFAULT_CACHE)).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _digest(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:20]


# ---------------------------------------------------------------------------------------------------- rendering
_piper_voices: dict[float, object] = {}
_lock = threading.Lock()


def _piper(length_scale: float, voice_path: str = ""):
    key = (voice_path, length_scale)
    with _lock:
        if key not in _piper_voices:
            from mmchat_ros.backends.tts import PiperSynthesizer
            _piper_voices[key] = PiperSynthesizer(voice_path, length_scale=length_scale)
        return _piper_voices[key]


def render(text: str, voice: str, cache_dir: str | Path | None = None) -> np.ndarray:
    """``text`` spoken by ``voice`` (a VOICES name), trimmed, 16 kHz int16 mono; cached as a WAV file."""
    spec = VOICES[voice]
    path = cache_root(cache_dir) / "audio" / f"{voice}-{_digest(spec.spec(), text)}.wav"
    if path.is_file():
        return read_wav_as(path, SAMPLE_RATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.engine == "espeak":
        with tempfile.TemporaryDirectory(prefix="mmchat-spoken-") as tmp:
            raw = Path(tmp) / "raw.wav"
            subprocess.run(["espeak-ng", "-v", spec.name, "-s", str(spec.wpm), "-w", str(raw), text], check=True,
                           capture_output=True, timeout=60)
            samples = read_wav_as(raw, SAMPLE_RATE)
    elif spec.engine == "piper":
        synth = _piper(spec.length_scale, spec.name)
        samples = resample(synth.synthesize(text), synth.sample_rate, SAMPLE_RATE)
    else:
        raise ValueError(f"voice {voice}: unknown engine {spec.engine}")
    samples = trim(samples)
    partial = path.with_suffix(f".partial-{os.getpid()}.wav")
    write_wav(partial, samples, SAMPLE_RATE)
    os.replace(partial, path)
    return samples


# --------------------------------------------------------------------------------------------------- the pipeline
_recognizers: dict[str, object] = {}


def recognizer_for(settings: AsrSettings, cpu_threads: int = 2):
    """One loaded WhisperRecognizer per settings (loading base takes seconds), warmed up."""
    from mmchat_ros.backends.asr import WhisperRecognizer
    key = settings.key()
    with _lock:
        if key not in _recognizers:
            recognizer = WhisperRecognizer(settings.model, cpu_threads=cpu_threads, **settings.recognizer_kwargs())
            recognizer.warm_up()
            _recognizers[key] = recognizer
        return _recognizers[key]


_vad = None


def _silero():
    global _vad
    with _lock:
        if _vad is None:
            from mmchat_ros.backends.vad import SileroVad
            _vad = SileroVad()
        return _vad


def play(speech: np.ndarray, recognizer, text: str = "", voice: str = "",
         publish_complete_early: bool = False) -> Result:
    """``speech`` (16 kHz int16, trimmed) with silence around it through Silero VAD + segmenter → ``recognizer``;
    ``publish_complete_early`` as the asr node's parameter (off by default)."""
    from mmchat_ros.backends.asr import reads_as_complete_utterance
    from mmchat_ros.core.vad_segmenter import (SegmentTruncated, SegmenterConfig, SpeechEnded, SpeechPaused,
                                               VadSegmenter)
    vad = _silero()
    vad.reset()
    segmenter = VadSegmenter(vad, SegmenterConfig(sample_rate=SAMPLE_RATE, window_samples=CHUNK_SAMPLES))
    lead = np.zeros(int(LEAD_SILENCE_S * SAMPLE_RATE), dtype=np.int16)
    trail = np.zeros(int(TRAIL_SILENCE_S * SAMPLE_RATE), dtype=np.int16)
    audio = np.concatenate([lead, speech.astype(np.int16), trail])
    audio = np.concatenate([audio, np.zeros(-audio.size % CHUNK_SAMPLES, dtype=np.int16)])
    speech_end = (lead.size + speech.size) / SAMPLE_RATE
    early: tuple | None = None          # (segment, arrival time) of the last SpeechPaused
    finals: list[tuple] = []            # (segment, arrival time, early arrival or None)
    for offset in range(0, audio.size, CHUNK_SAMPLES):
        capture = offset / SAMPLE_RATE
        arrival = capture + CHUNK_SAMPLES / SAMPLE_RATE
        for event in segmenter.push(audio[offset:offset + CHUNK_SAMPLES], capture):
            if isinstance(event, SpeechPaused):
                early = (event.segment, arrival)
            elif isinstance(event, SegmentTruncated):
                finals.append((event.segment, arrival, None))
            elif isinstance(event, SpeechEnded) and event.segment is not None:
                segment = event.segment
                same = early is not None and early[0].start == segment.start and early[0].end == segment.end \
                    and early[0].samples.size == segment.samples.size
                finals.append((segment, arrival, early[1] if same else None))
                early = None
    for event in segmenter.flush(audio.size / SAMPLE_RATE):
        if isinstance(event, (SpeechEnded, SegmentTruncated)) and event.segment is not None:
            finals.append((event.segment, audio.size / SAMPLE_RATE, None))
    result = Result(text=text, voice=voice, transcript="", audio_s=speech.size / SAMPLE_RATE)
    texts = []
    for segment, arrival, early_arrival in finals:
        recognition = recognizer.transcribe(segment.samples, SAMPLE_RATE)
        if recognition.text:
            texts.append(recognition.text)
        compute = recognition.compute_s
        if early_arrival is None:
            out = arrival + compute
        elif publish_complete_early and reads_as_complete_utterance(recognition.text):   # published at the pause
            out = early_arrival + compute
        else:
            out = max(arrival, early_arrival + compute)
        result.vad_ms = (arrival - speech_end) * 1000.0
        result.asr_ms = compute * 1000.0
        result.latency_ms = (out - speech_end) * 1000.0
        result.confidence = recognition.confidence
    result.segments = texts
    result.transcript = " ".join(texts)
    return result


# ----------------------------------------------------------------------------------------------------- the corpus
def _transcript_cache(voice: str, settings: AsrSettings, cache_dir) -> Path:
    path = cache_root(cache_dir) / "transcripts" / \
        f"{voice}-{settings.model}-{_digest(VOICES[voice].spec(), settings.key(), str(HARNESS_VERSION))}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _load_cache(path: Path) -> dict[str, dict]:
    cached: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                cached[entry["text"]] = entry
            except (ValueError, KeyError):
                continue   # a line cut short by an interrupted run
    return cached


def transcribe_corpus(texts: list[str], voice: str, asr_settings: AsrSettings | None = None, *,
                      cache_dir: str | Path | None = None, use_cache: bool = True, cpu_threads: int = 2,
                      progress=None) -> list[Result]:
    """Each of ``texts`` spoken by ``voice`` (a VOICES name) through VAD → ASR; one Result per text, in order.
    ``progress(done, total)`` is called after each utterance when given."""
    if voice not in VOICES:
        raise KeyError(f"unknown voice '{voice}'; voices: {', '.join(VOICES)}")
    settings = asr_settings or AsrSettings()
    path = _transcript_cache(voice, settings, cache_dir)
    cached = _load_cache(path) if use_cache else {}
    results: list[Result] = []
    for index, text in enumerate(texts):
        entry = cached.get(text)
        if entry is not None:
            results.append(Result(**{**entry, "cached": True}))
        else:
            speech = render(text, voice, cache_dir)
            result = play(speech, recognizer_for(settings, cpu_threads), text, voice)
            entry = {k: v for k, v in dataclasses.asdict(result).items() if k != "cached"}
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")
            cached[text] = entry
            results.append(result)
        if progress:
            progress(index + 1, len(texts))
    return results


def corpus_texts(path: str | Path) -> list[str]:
    """The utterance texts of a corpus file (tests/data/commands/*.yaml: a list of entries with 'text')."""
    import yaml
    entries = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    return [entry["text"] for entry in entries]


def wer_by_voice(results: dict[str, list[Result]]) -> dict[str, float]:
    from mmchat_ros.core.wer import corpus_wer
    return {voice: corpus_wer((r.text, r.transcript) for r in rs) for voice, rs in results.items()}


# ---------------------------------------------------------------------------------------------------------- CLI
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", help="utterances to speak (or --corpus)")
    parser.add_argument("--corpus", help="a corpus YAML file (tests/data/commands/dev.yaml)")
    parser.add_argument("--every", type=int, default=1, help="take every n-th utterance of the corpus")
    parser.add_argument("--voice", "--voices", dest="voices", nargs="+", default=DEFAULT_VOICES,
                        help=f"voices, or 'all' ({', '.join(VOICES)})")
    parser.add_argument("--model", default=AsrSettings.model)
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--prompt", default=None, help="initial prompt (default: the asr node's); '' = none")
    parser.add_argument("--hotwords", default="")
    parser.add_argument("--no-cache", action="store_true", help="recognise again (audio stays cached)")
    parser.add_argument("--show", choices=["errors", "all", "none"], default="errors")
    args = parser.parse_args(argv)
    texts = list(args.texts) + (corpus_texts(args.corpus)[::args.every] if args.corpus else [])
    if not texts:
        parser.error("give utterances or --corpus")
    voices = list(VOICES) if args.voices == ["all"] else args.voices
    settings = AsrSettings(model=args.model, beam_size=args.beam_size, hotwords=args.hotwords,
                           **({"initial_prompt": args.prompt} if args.prompt is not None else {}))
    from mmchat_ros.core.wer import wer
    results, latencies = {}, []
    for voice in voices:
        started = time.monotonic()
        results[voice] = transcribe_corpus(texts, voice, settings, use_cache=not args.no_cache)
        fresh = [r.latency_ms for r in results[voice] if not r.cached]
        latencies += fresh
        for r in results[voice]:
            if args.show == "all" or (args.show == "errors" and wer(r.text, r.transcript) > 0):
                print(f"  {voice:16s} '{r.text}' → '{r.transcript}'", file=sys.stderr)
        print(f"{voice}: {len(texts)} utterances in {time.monotonic() - started:.0f} s "
              f"({len(fresh)} recognised now)", file=sys.stderr)
    table = wer_by_voice(results)
    for voice, value in table.items():
        print(f"{voice:16s} WER {value:.3f}")
    figures = {"model": args.model, "beam_size": args.beam_size, "utterances": len(texts),
               "wer_mean": float(np.mean(list(table.values()))), "wer_worst": max(table.values()),
               **{f"wer_{v.replace('-', '_')}": w for v, w in table.items()}}
    if latencies:
        figures["latency_p50_ms"] = float(np.percentile(latencies, 50))
        figures["latency_p95_ms"] = float(np.percentile(latencies, 95))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
