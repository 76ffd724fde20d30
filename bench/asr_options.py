#!/usr/bin/env python3
"""Which recognition options pay, measured on the DEV split only: word error rate per voice (bench/spoken_corpus.py:
synthetic voices → Silero VAD → faster-whisper) for each option set, tiny.en and base.

    python bench/asr_options.py [--every 6] [--options none current vocab vocab-beam5] [--models tiny.en base]

Option sets (OPTIONS): the initial prompt (none / the prompt the asr node had / the command vocabulary prompt), beam
size. Hot words are not a separate row: the recognizer places them before the initial prompt in the same decoder
context (<|startofprev|> hotwords prompt), so they are a prompt by another name. The sweep uses every n-th
utterance of dev.yaml (--every; all of them with 1); transcripts are cached, so re-running costs nothing.
Also checks for prompt hallucination: non-command speech and non-speech audio (silence, noise, a hum) given to the
recognizer directly with each prompt — a prompt must not come back as a transcript.
Ends with one JSON line (the table). NEVER run on tests/data/commands/test.yaml to choose anything.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spoken_corpus import (DEFAULT_VOICES, ROOT, AsrSettings, corpus_texts, recognizer_for, render,  # noqa: E402
                           transcribe_corpus)

import numpy as np  # noqa: E402

from mmchat_ros.backends.asr import COMMAND_VOCABULARY  # noqa: E402
from mmchat_ros.core.wer import corpus_wer, wer  # noqa: E402

DEV = ROOT / "tests" / "data" / "commands" / "dev.yaml"
# the prompt the asr node had before this measurement
PREVIOUS_PROMPT = ("Drone voice commands: take off, land now, hover, stop, fly forward two meters, fly back, go left, "
                   "go right, up, down, turn left ninety degrees, turn right, follow me, come back.")
VOCAB_PROMPT = ("Drone commands: take off, land, touch down, hover, hold still, stop. Fly forward two meters, back up "
                "one metre, move left, go right, climb, ascend, descend thirty centimetres, five feet. Turn left "
                "ninety degrees, rotate clockwise, counter-clockwise, turn around. Follow me, stop following, return "
                "home, then land. What's your battery, altitude, position? What do you see?")
ONE_BEST = dict(extra=())       # the best-scored hypothesis only (what every row but node-default measured)
OPTIONS = {
    "none": dict(initial_prompt="", **ONE_BEST),
    "previous": dict(initial_prompt=PREVIOUS_PROMPT, **ONE_BEST),
    "vocab": dict(initial_prompt=VOCAB_PROMPT, **ONE_BEST),
    "vocab-beam5": dict(initial_prompt=VOCAB_PROMPT, beam_size=5, **ONE_BEST),
    "node-1best": dict(initial_prompt=COMMAND_VOCABULARY, **ONE_BEST),
    "node-window10": dict(initial_prompt=COMMAND_VOCABULARY, window_s=10.0, **ONE_BEST),
    "node-window6": dict(initial_prompt=COMMAND_VOCABULARY, window_s=6.0, **ONE_BEST),
    "node-before": dict(initial_prompt=COMMAND_VOCABULARY, escalate_beam_size=0, extra=(("hypotheses", 5),)),
    "node-escalate10": dict(initial_prompt=COMMAND_VOCABULARY, escalate_beam_size=10, extra=(("hypotheses", 5),)),
    # the asr node's: 5 hypotheses, the first clean one; 10 more when none is clean; a 10 s window first
    "node-default": dict(initial_prompt=COMMAND_VOCABULARY),
}
NON_COMMANDS = ["the weather is lovely today", "I had a sandwich in the kitchen", "my brother lives in Glasgow",
                "hmm let me think", "can you pass me the salt"]


def non_speech() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(32000) / 16000
    return {"silence": np.zeros(32000, np.int16),
            "white noise -30 dBFS": (rng.standard_normal(32000) * 0.03 * 32768).astype(np.int16),
            "50 Hz hum": (np.sin(2 * np.pi * 50 * t) * 0.2 * 32768).astype(np.int16)}


def timing(args) -> int:
    """End of speech → transcript through VAD + ASR, each utterance played with every setting in turn."""
    from spoken_corpus import play
    texts = corpus_texts(args.corpus)[::args.every][:args.timing]
    settings = {f"{model}/{option}": AsrSettings(model=model, **OPTIONS[option])
                for model in args.models for option in args.options}
    recognizers = {name: recognizer_for(s) for name, s in settings.items()}
    latency: dict[str, list[float]] = {name: [] for name in settings}
    asr_ms: dict[str, list[float]] = {name: [] for name in settings}
    load = [os.getloadavg()[0]]
    for voice in args.voices:
        for text in texts:
            speech = render(text, voice)
            for name, recognizer in recognizers.items():
                result = play(speech, recognizer, text, voice)
                latency[name].append(result.latency_ms)
                asr_ms[name].append(result.asr_ms)
    load.append(os.getloadavg()[0])
    rows = {name: {"asr_ms_p50": round(float(np.percentile(asr_ms[name], 50)), 1),
                   "latency_ms_p50": round(float(np.percentile(latency[name], 50)), 1),
                   "latency_ms_p95": round(float(np.percentile(latency[name], 95)), 1)} for name in settings}
    for name, row in rows.items():
        print(f"{name:24s} {row}")
    print(json.dumps({"utterances": len(texts) * len(args.voices), "load_1min": load, "rows": rows}))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(DEV), help="the dev split (or a frozen copy of it: the same texts "
                                                           "for every run while dev.yaml is still being written)")
    parser.add_argument("--every", type=int, default=6)
    parser.add_argument("--options", nargs="+", default=["none", "previous", "vocab", "vocab-beam5"])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--voices", nargs="+", default=DEFAULT_VOICES)
    parser.add_argument("--skip-hallucination", action="store_true")
    parser.add_argument("--planner", action="store_true",
                        help="also the planner's accuracy on the transcripts (core/understanding without the "
                             "sentence encoder; what recognition is for: a transcript error that still gives the "
                             "right plan costs nothing)")
    parser.add_argument("--timing", type=int, default=0,
                        help="instead: time recognition of this many utterances per voice with each model x option, "
                             "interleaved (the same machine load for every setting), no caches")
    args = parser.parse_args(argv)
    if args.timing:
        return timing(args)
    import yaml
    entries = (yaml.safe_load(Path(args.corpus).read_text(encoding="utf-8")) or [])[::args.every]
    texts = [entry["text"] for entry in entries]
    planner = None
    if args.planner:
        sys.path.insert(0, str(ROOT))
        from mmchat_ros.core.planner import Planner
        from mmchat_ros.core.understanding import Understanding
        from tests.helpers import command_corpus
        planner = Planner(None, understanding=Understanding())
    print(f"{len(texts)} dev utterances x {len(args.voices)} voices", file=sys.stderr)
    table, rows = {}, []
    for model in args.models:
        for option in args.options:
            settings = AsrSettings(model=model, **OPTIONS[option])
            started = time.monotonic()
            per_voice, latencies, asr_ms, accuracy = {}, [], [], {}
            for voice in args.voices:
                results = transcribe_corpus(texts, voice, settings)
                per_voice[voice] = corpus_wer((r.text, r.transcript) for r in results)
                if planner is not None:
                    report = command_corpus.evaluate(planner, entries, [r.transcript for r in results])
                    accuracy[voice] = round(report.accuracy, 4)
                latencies += [r.latency_ms for r in results if np.isfinite(r.latency_ms)]
                asr_ms += [r.asr_ms for r in results if np.isfinite(r.asr_ms)]
            row = {"model": model, "option": option, **{v: round(w, 4) for v, w in per_voice.items()},
                   "mean": round(float(np.mean(list(per_voice.values()))), 4),
                   "worst": round(max(per_voice.values()), 4),
                   "asr_ms_p50": round(float(np.percentile(asr_ms, 50)), 1),
                   "latency_ms_p50": round(float(np.percentile(latencies, 50)), 1),
                   "latency_ms_p95": round(float(np.percentile(latencies, 95)), 1)}
            if accuracy:
                row["planner_accuracy"] = accuracy
                row["planner_accuracy_mean"] = round(float(np.mean(list(accuracy.values()))), 4)
            rows.append(row)
            print(json.dumps(row), f"({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
            if not args.skip_hallucination:
                recognizer = recognizer_for(settings)
                echoes = {name: recognizer.transcribe(audio).text for name, audio in non_speech().items()}
                for text in NON_COMMANDS:
                    padded = np.concatenate([np.zeros(4000, np.int16), render(text, args.voices[0]),
                                             np.zeros(1600, np.int16)])
                    echoes[text] = recognizer.transcribe(padded).text
                row["non_command_wer"] = round(corpus_wer((t, echoes[t]) for t in NON_COMMANDS), 4)
                row["non_speech_texts"] = {k: echoes[k] for k in non_speech()}
                for name, text in echoes.items():
                    print(f"    {model}/{option} {name!r} → {text!r}"
                          f"{'' if name not in NON_COMMANDS else f' (WER {wer(name, text):.2f})'}", file=sys.stderr)
    header = ["model", "option", *args.voices, "mean", "worst", "asr_ms_p50", "latency_ms_p50",
              *(["planner_accuracy_mean"] if planner is not None else [])]
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row.get(h, "")) for h in header))
    table = {"utterances": len(texts), "rows": rows}
    print(json.dumps(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
