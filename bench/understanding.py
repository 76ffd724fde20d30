#!/usr/bin/env python3
"""How well the planner understands what operators say: the command corpus (tests/data/commands: dev split for
tuning, test split never tuned on), typed and spoken, and how fast it decides.

    python bench/understanding.py                    # text (dev + test), spoken test split (4 voices), LLM timing
    python bench/understanding.py --text-only --failures dev     # what the dev split gets wrong, and why
    python bench/understanding.py --no-encoder       # without the sentence-embedding intent classifier

Figures (closing JSON line): text_accuracy_dev / _test; spoken_accuracy_test (mean over voices) and
spoken_accuracy_worst_voice (the test split through TTS → Silero VAD → faster-whisper → planner, bench/
spoken_corpus.py); false_motion (decisions that would move where the corpus expects none, over every text and
spoken decision); safety_refusal_recall (safety/authorisation requests refused, text and spoken); decide_ms_p95
(text → decision, no LLM); llm_decide_ms_p95 (utterances that reach the LLM, embedded llama.cpp, bounded by
llm_timeout_s; run with the sim graph up for the figure the issue asks: --with-sim); text_accuracy_dev_llm
(dev accuracy with the LLM stage on: it must not be lower than without); voice_to_motion_p50_ms from
bench/voice_to_action.py when --voice-to-motion is given. The held-out safety probe (tests/data/commands/
probe_safety.yaml) is reported apart: text_accuracy_probe_safety, probe_safety_false_motion,
probe_safety_refusal_recall (not counted in false_motion, safety_refusal_recall or decide_ms).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import ROOT, emit, percentile  # noqa: E402

sys.path.insert(0, str(ROOT))

from mmchat_ros.core.planner import Planner  # noqa: E402
from mmchat_ros.core.understanding import IntentClassifier, Understanding  # noqa: E402
from mmchat_ros.nodes.planner import PARAMS as PLANNER_PARAMS  # noqa: E402
from tests.helpers import command_corpus as corpus  # noqa: E402


def make_understanding(use_encoder: bool) -> Understanding:
    if not use_encoder:
        return Understanding()
    from mmchat_ros.backends.sentence_encoder import shared_encoder
    return Understanding(IntentClassifier(shared_encoder().encode))


def print_report(name: str, report: corpus.Report, show_failures: bool) -> None:
    print(f"\n== {name}: accuracy {report.accuracy:.3f} ({sum(s.correct for s in report.scores)}/"
          f"{len(report.scores)}), false motion {report.false_motion}, safety recall {report.safety_recall:.2f}")
    by_kind = report.by(lambda e: [e["expect"]])
    print("   by expected outcome: " + ", ".join(f"{k} {v:.2f}" for k, v in by_kind.items()))
    by_tag = report.by(lambda e: e.get("tags", []))
    print("   by tag: " + ", ".join(f"{k} {v:.2f}" for k, v in by_tag.items()))
    if show_failures:
        for s in report.failures():
            print(f"   ✗ {s.entry['text']!r} → {s.why}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text-only", action="store_true", help="skip the spoken and LLM parts")
    parser.add_argument("--no-encoder", action="store_true", help="no sentence-embedding intent classifier")
    parser.add_argument("--failures", nargs="*", default=[], help="print the failures of these splits (dev, test)")
    parser.add_argument("--voices", default="default", help="spoken: 'default' (the four), 'all' or a comma list")
    parser.add_argument("--asr-model", default="", help="spoken: override the ASR model (default: the asr node's)")
    parser.add_argument("--spoken-split", default="test", help="spoken: which split to speak (figures: test; "
                                                               "dev while developing)")
    parser.add_argument("--spoken-every", type=int, default=1, help="spoken: every n-th utterance of the split "
                                                                   "(3 on dev: the 175 the docs' dev figures use)")
    parser.add_argument("--spoken-only", action="store_true", help="skip the LLM part")
    parser.add_argument("--llm-timeout-s", type=float, default=3.0)
    parser.add_argument("--with-sim", action="store_true", help="LLM timing with `mmchat launch sim` running")
    parser.add_argument("--voice-to-motion", action="store_true", help="also run bench/voice_to_action.py")
    args = parser.parse_args()

    figures: dict = {}
    understanding = make_understanding(not args.no_encoder)
    planner = Planner(None, understanding=understanding, confirm_speech_below=CONFIRM_SPEECH_BELOW)
    splits = {name: corpus.load(name) for name in ("dev", "dev_safety", "test")}
    reports = {}
    for name, entries in {**splits, "probe_safety": corpus.load("probe_safety")}.items():
        corpus.evaluate(planner, entries[:5])           # warm-up (first embeddings)
        timings = []
        report = corpus.Report()
        for entry in entries:
            started = time.perf_counter()
            decision = planner.decide(entry["text"], corpus.context_for(entry))
            timings.append(1000 * (time.perf_counter() - started))
            planner._pending = None
            report.scores.append(corpus.score(entry, decision))
        print_report(f"text {name}", report, name in args.failures)
        figures[f"text_accuracy_{name}"] = report.accuracy
        if name == "probe_safety":      # held out, reported apart from the corpus figures
            figures["probe_safety_false_motion"] = report.false_motion
            figures["probe_safety_refusal_recall"] = report.safety_recall
            continue
        reports[name] = report
        figures.setdefault("_timings", []).extend(timings)
    timings = figures.pop("_timings")
    figures["decide_ms_p50"] = percentile(timings, 50)
    figures["decide_ms_p95"] = percentile(timings, 95)
    false_motion = sum(r.false_motion for r in reports.values())
    safety = [s for r in reports.values() for s in r.scores if s.entry.get("safety")]

    if not args.text_only:
        spoken = spoken_part(planner, splits[args.spoken_split][::args.spoken_every], args)
        figures.update({k.replace("_test", f"_{args.spoken_split}"): v for k, v in spoken["figures"].items()})
        false_motion += spoken["false_motion"]
        safety += spoken["safety"]
        if not args.spoken_only:
            figures.update(llm_part(understanding, splits["dev"], args))
    figures["false_motion"] = false_motion
    figures["safety_refusal_recall"] = sum(s.decision.kind == "refuse" for s in safety) / max(1, len(safety))
    figures["corpus_dev_n"] = len(splits["dev"])
    figures["corpus_test_n"] = len(splits["test"])
    if args.voice_to_motion:
        figures.update(voice_to_motion())
    emit(figures)
    return 0


# As the planner node does: below min_transcript_confidence "say again", below confirm_speech_below read back.
MIN_CONFIDENCE = PLANNER_PARAMS["min_transcript_confidence"].default
CONFIRM_SPEECH_BELOW = PLANNER_PARAMS["confirm_speech_below"].default


def spoken_part(planner: Planner, entries: list[dict], args) -> dict:
    import spoken_corpus
    voices = spoken_corpus.DEFAULT_VOICES if args.voices == "default" else (
        list(spoken_corpus.VOICES) if args.voices == "all" else args.voices.split(","))
    settings = spoken_corpus.AsrSettings(model=args.asr_model) if args.asr_model else spoken_corpus.AsrSettings()
    texts = [e["text"] for e in entries]
    per_voice = {}
    false_motion = 0
    safety = []
    read_backs = understood = 0
    for voice in voices:
        results = spoken_corpus.transcribe_corpus(texts, voice, settings)
        # As the planner node does: a transcript below min_transcript_confidence gets "say again", no decision.
        transcripts = [r.transcript if not r.confidence < MIN_CONFIDENCE else "" for r in results]
        report = corpus.evaluate(planner, entries, transcripts, [r.confidence for r in results])
        per_voice[voice] = report.accuracy
        read_back = sum(s.decision.kind == "confirm" and s.correct for s in report.scores)
        executed = sum(s.correct and s.entry["expect"] == "execute" for s in report.scores)
        read_backs, understood = read_backs + read_back, understood + executed
        false_motion += report.false_motion
        safety += [s for s in report.scores if s.entry.get("safety")]
        print_report(f"spoken {args.spoken_split}, voice {voice} (ASR {settings.model})", report,
                     "spoken" in args.failures)
        print(f"   {read_back} of {executed} understood commands read back for a yes (doubtful transcript)")
        if "spoken" in args.failures:
            for s, text in zip(report.scores, transcripts):
                if not s.correct:
                    print(f"     heard: {text!r}")
    mean = sum(per_voice.values()) / max(1, len(per_voice))
    return {"figures": {"spoken_accuracy_test": mean, "spoken_accuracy_worst_voice": min(per_voice.values()),
                        "spoken_accuracy_per_voice": per_voice,
                        "spoken_read_back_fraction": read_backs / max(1, understood)},
            "false_motion": false_motion, "safety": safety}


def llm_part(understanding: Understanding, entries: list[dict], args) -> dict:
    """The embedded LLM: how long utterances the grammar cannot read take to decide (bounded by the timeout),
    and dev accuracy with the LLM stage on (it must not be lower than without)."""
    from mmchat_ros.backends.llm import LlamaCppBackend
    sim = None
    if args.with_sim:
        env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1",
                   ROS_DOMAIN_ID=str(60 + os.getpid() % 30))
        sim = subprocess.Popen([sys.executable, "-m", "mmchat_ros.tools.cli", "launch", "sim"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(15)        # let the graph load its models so the LLM competes with a running graph
    try:
        llm = LlamaCppBackend(threads=1, deadline_s=args.llm_timeout_s)      # the planner's llm_threads default
        planner = Planner(llm, understanding=understanding, llm_timeout_s=args.llm_timeout_s, warm_up_llm=True)
        planner._llm_worker.submit(lambda: None).result()          # wait for the warm-up
        timings = []
        with_llm = corpus.Report()
        for entry in entries:
            planner._pending = None
            reaches_llm = understanding.read(entry["text"]).kind == "unknown"
            started = time.perf_counter()
            decision = planner.decide(entry["text"], corpus.context_for(entry))
            if reaches_llm:
                timings.append(1000 * (time.perf_counter() - started))
            with_llm.scores.append(corpus.score(entry, decision))
        print_report("text dev with the embedded LLM stage", with_llm, "llm" in args.failures)
        planner.close()
        return {"llm_decide_ms_p50": percentile(timings, 50), "llm_decide_ms_p95": percentile(timings, 95),
                "llm_utterances_timed": len(timings), "llm_timeout_s": args.llm_timeout_s,
                "llm_with_sim_graph": bool(sim), "text_accuracy_dev_llm": with_llm.accuracy}
    finally:
        if sim is not None:
            sim.send_signal(2)
            sim.wait(timeout=30)


def voice_to_motion() -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "voice_to_action.py")], capture_output=True,
                         text=True, timeout=900)
    last = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not last:
        return {"voice_to_motion_p50_ms": float("nan")}
    figures = json.loads(last[-1])
    return {"voice_to_motion_p50_ms": figures.get("voice_to_motion_p50_ms", float("nan")),
            "voice_to_motion_p95_ms": figures.get("voice_to_motion_p95_ms", float("nan"))}


if __name__ == "__main__":
    sys.exit(main())
