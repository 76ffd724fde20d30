#!/usr/bin/env python3
"""Voice to action: latency from the end of speech to the first motion command, through the grammar path (every
box a real node process over DDS: audio_input → vad → asr → planner → flight_controller, with the simulator) and
through the LLM path; plus the planner's own decision time for the grammar and the embedded LLM.

- grammar path, end to end: a WAV of spoken commands separated by silence is replayed in real time. Per command,
  each stage from the end of speech (the last spoken sample, on the capture clock): the vad's early segment (the
  pause that starts recognition), its final segment (the end delay passed), the transcript, the plan sent, the
  first motion (the flight controller's state changing mode or control source). voice_to_motion_p50/p95_ms keep
  the older reference: the final segment's end stamp (post_roll_s of silence after the speech) → the plan sent.
- LLM path: the embedded llama.cpp planner (SmolLM2-135M) on commands the grammar cannot read, timed in process;
  its voice-to-motion figure is the measured end-of-speech → transcript time plus that planning time.

    python bench/voice_to_action.py [--skip-voice] [--llm-runs 5] [--asr-param fast_window_s=10.0 ...]
                                   [--planner-param confirm_speech_below=0.45 ...]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, emit, percentile  # noqa: E402

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from mmchat_ros.core.flight.plan import PlanVehicle  # noqa: E402
from mmchat_ros.core.flight.state_machine import FlightMode  # noqa: E402
from mmchat_ros.core.planner import Context, Planner  # noqa: E402

GRAMMAR_SET = [
    "take off", "take off to three meters", "fly forward two meters", "move back one and a half meters",
    "go left 50 centimeters", "turn left ninety degrees", "turn right 45 degrees", "climb one meter",
    "go to 1 2 1.5", "come back home", "land now", "hover for five seconds then land",
    "take off, fly forward two meters, then land",
    "take off and turn left ninety degrees and then fly forward three meters then come back home and land",
]
LLM_SET = ["fly a small square", "go up a little and look to your left", "drift right slowly",
           "move to the other side of the room", "do a lap around me"]
# Spoken in sequence; each is valid in the state the previous one leaves (6 s apart: take-off needs ~4 s).
VOICE_SEQUENCE = ["take off", "turn left ninety degrees", "fly forward one meter", "turn right ninety degrees",
                  "fly back one meter", "land now"]
HOVERING = PlanVehicle(np.array([0.0, 0.0, 1.5]), np.zeros(3), 0.0, FlightMode.HOVER)


def grammar_decision_ms() -> list[float]:
    planner = Planner(require_authorisation=False)
    times = []
    for _ in range(20):
        for text in GRAMMAR_SET:
            vehicle = PlanVehicle(np.zeros(3), np.zeros(3), 0.0, FlightMode.LANDED) if "take off" in text else HOVERING
            t0 = time.perf_counter()
            decision = planner.decide(text, Context(True, vehicle, home=np.zeros(3)))
            times.append(1000 * (time.perf_counter() - t0))
            assert decision.kind == "execute", (text, decision)
    return times


def llm_plan_seconds(runs: int) -> tuple[list[float], int]:
    from mmchat_ros.backends.llm import LlamaCppBackend
    planner = Planner(LlamaCppBackend(threads=2), require_authorisation=False)
    planner.decide("warm up", Context(True, HOVERING))
    times, executable = [], 0
    for text in (LLM_SET * runs)[:runs]:
        t0 = time.perf_counter()
        decision = planner.decide(text, Context(True, HOVERING))
        times.append(time.perf_counter() - t0)
        executable += decision.kind == "confirm"          # valid, read back, waiting for the operator's yes
        print(f"  llm: '{text}' → {decision.kind} in {times[-1]:.2f} s: {decision.reply}", flush=True)
    return times, executable


STAGES = ("vad_early", "vad_final", "transcript", "plan", "motion")
VOICED_LEVEL = 64           # |sample| above this is speech in the composed file (its silences are zeros)


def node_parameters(items: list[str]) -> dict:
    """NAME=VALUE command-line items as node parameters (values read as YAML)."""
    return {name: yaml.safe_load(value) for name, value in (item.split("=", 1) for item in items)}


def voice_latencies(asr_parameters: dict, planner_parameters: dict) -> dict[str, list[float]]:
    """Per spoken command, ms from the end of speech (the last voiced sample of its segment, on the capture clock)
    to: the vad's early segment (the pause: recognition starts), its final segment (the end delay passed), the
    transcript, the plan sent, and the first motion (the flight controller's state changing mode or control
    source after the plan; arrival time here). "segment_end" is the older reference: ms from the final segment's
    end stamp (post_roll_s of silence after the speech) to the plan sent."""
    sys.path.insert(0, str(ROOT))
    from mmchat_ros.core.launch_graph import NodeSpec
    from mmchat_ros.core.rosenv import ros_environment
    from mmchat_ros.msg import ActionPlan, FlightState, SpeechSegment, Transcript
    from mmchat_ros.tools.launcher import Launcher
    from mmchat_ros.tools.ros_client import RosClient
    from tests.helpers import speech

    parts: list = [1.0]
    for text in VOICE_SEQUENCE:
        parts += [speech.speak(text), 6.0]
    audio, _ = speech.compose(*parts)
    work = tempfile.mkdtemp(prefix="bench-voice-")
    wav = speech.write(os.path.join(work, "commands.wav"), audio)
    domain = 210 + os.getpid() % 20
    specs = [
        NodeSpec("sim", "sim", parameters={"camera_enabled": False}),
        NodeSpec("flight_controller", "flight_controller", parameters={"require_authorisation": False}),
        NodeSpec("planner", "planner", parameters={"llm_backend": "none", "require_authorisation": False,
                                                   **planner_parameters}),
        NodeSpec("asr", "asr", parameters=asr_parameters),   # the node's defaults unless --asr-param says otherwise
        NodeSpec("vad", "vad"),
    ]
    launcher = Launcher(specs, log_dir=work, env=ros_environment(domain_id=domain), out=open(os.devnull, "w"))
    launcher.start()
    ros = RosClient(domain, "bench_voice")
    wall_minus_monotonic = time.time() - time.monotonic()
    try:
        early_segments = ros.collect(SpeechSegment, "/speech/segment_early")
        segments = ros.collect(SpeechSegment, "/speech/segment")
        transcripts = ros.collect(Transcript, "/speech/transcript")
        plans = ros.collect(ActionPlan, "/planner/plan")
        states = ros.collect(FlightState, "/flight/state")
        ros.wait_for(lambda: ros.node.count_subscribers("/speech/segment") and ros.node.count_subscribers(
            "/speech/transcript") and ros.node.count_subscribers("/audio/chunks"), 120, "the speech nodes")
        asr_log = Path(work) / "asr.log"
        ros.wait_for(lambda: asr_log.is_file() and "asr ready" in asr_log.read_text(errors="replace"), 120,
                     "the asr model (loaded and warmed up)")
        player = Launcher([NodeSpec("audio_input", "audio_input", parameters={
            "source": "file", "file_path": str(wav), "start": "on_subscriber", "start_delay_s": 1.0,
            "at_end": "exit"})],
            log_dir=work, env=ros_environment(domain_id=domain), out=open(os.devnull, "w"))
        player.start()
        deadline = time.monotonic() + len(audio) / 16000 + 30
        while time.monotonic() < deadline and len(plans) < len(VOICE_SEQUENCE):
            time.sleep(0.2)
        time.sleep(1.0)    # the last plan's first motion
        player.stop()
        stamp = lambda t: t.sec + t.nanosec * 1e-9  # noqa: E731
        stages: dict[str, list[float]] = {name: [] for name in (*STAGES, "segment_end")}
        for _, plan in plans:
            sent = stamp(plan.header.stamp)
            ends = [stamp(s.end) for _, s in segments if stamp(s.end) <= sent]
            if ends:
                stages["segment_end"].append(1000 * (sent - max(ends)))
        for _, segment in segments:
            # the file's silences are digital zeros: the last voiced sample of the segment is the end of speech
            voiced = np.flatnonzero(np.abs(np.asarray(segment.samples, dtype=np.int32)) > VOICED_LEVEL)
            speech_end = stamp(segment.start) + (voiced[-1] + 1) / 16000 if voiced.size else stamp(segment.end)
            same_speech = lambda start: stamp(start) == stamp(segment.start)  # noqa: E731
            first = lambda times: min((t for t in times if t >= speech_end), default=None)  # noqa: E731
            times = {
                "vad_early": first(stamp(m.header.stamp) for _, m in early_segments if same_speech(m.start)),
                "vad_final": stamp(segment.header.stamp),
                "transcript": first(stamp(m.header.stamp) for _, m in transcripts if same_speech(m.segment_start)),
            }
            if times["transcript"] is not None:     # a refused or questioned command sends no plan
                times["plan"] = min((stamp(m.header.stamp) for _, m in plans
                                     if 0 <= stamp(m.header.stamp) - times["transcript"] <= 2.0), default=None)
            if times.get("plan") is not None:
                previous = None
                for arrival, state in states:
                    arrived = arrival + wall_minus_monotonic
                    if arrived > times["plan"] and previous is not None and \
                            (state.mode, state.active_source) != previous:
                        times["motion"] = arrived
                        break
                    previous = (state.mode, state.active_source)
            for name in STAGES:
                if times.get(name) is not None:
                    stages[name].append(1000 * (times[name] - speech_end))
        for _, transcript in transcripts:
            print(f"  heard: '{transcript.text}'", flush=True)
        print(f"  {len(plans)} plans from {len(VOICE_SEQUENCE)} spoken commands", flush=True)
        return stages
    finally:
        ros.close()
        launcher.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-voice", action="store_true", help="skip the end-to-end voice run")
    parser.add_argument("--llm-runs", type=int, default=5, help="0: skip the LLM path")
    parser.add_argument("--asr-param", action="append", default=[], metavar="NAME=VALUE",
                        help="an asr node parameter for the voice run (YAML value), e.g. fast_window_s=10.0")
    parser.add_argument("--planner-param", action="append", default=[], metavar="NAME=VALUE",
                        help="a planner node parameter for the voice path (repeatable)")
    args = parser.parse_args()
    figures = {}
    grammar = grammar_decision_ms()
    figures["grammar_plan_ms_p50"] = percentile(grammar, 50)
    figures["grammar_plan_ms_p95"] = percentile(grammar, 95)
    print(f"grammar planner decision: p50 {figures['grammar_plan_ms_p50']:.3f} ms, p95 "
          f"{figures['grammar_plan_ms_p95']:.3f} ms over {len(grammar)} commands", flush=True)
    llm = []
    if args.llm_runs:
        llm, executable = llm_plan_seconds(args.llm_runs)
        figures["llm_plan_s_p50"] = percentile(llm, 50)
        figures["llm_plan_s_p95"] = percentile(llm, 95)
        figures["llm_plans_executable"] = executable
        print(f"LLM planner (llama.cpp, SmolLM2-135M): p50 {figures['llm_plan_s_p50']:.2f} s, p95 "
              f"{figures['llm_plan_s_p95']:.2f} s; {executable}/{len(llm)} answers passed validation (read back "
              "for a yes)", flush=True)
    if not args.skip_voice:
        stages = voice_latencies(node_parameters(args.asr_param), node_parameters(args.planner_param))
        figures["voice_to_motion_p50_ms"] = percentile(stages["segment_end"], 50)
        figures["voice_to_motion_p95_ms"] = percentile(stages["segment_end"], 95)
        for name in STAGES:
            figures[f"speech_end_to_{name}_p50_ms"] = percentile(stages[name], 50)
            figures[f"speech_end_to_{name}_p95_ms"] = percentile(stages[name], 95)
        figures["eos_to_transcript_p50_ms"] = figures["speech_end_to_transcript_p50_ms"]
        if llm:
            figures["voice_to_motion_llm_p50_ms"] = figures["eos_to_transcript_p50_ms"] + \
                1000 * figures["llm_plan_s_p50"]
        print("end of speech (last spoken sample) → ..., p50 / p95 ms: " + ", ".join(
            f"{name} {figures[f'speech_end_to_{name}_p50_ms']:.0f} / {figures[f'speech_end_to_{name}_p95_ms']:.0f}"
            for name in STAGES), flush=True)
        print(f"segment end → plan sent, grammar path: p50 {figures['voice_to_motion_p50_ms']:.0f} ms, "
              f"p95 {figures['voice_to_motion_p95_ms']:.0f} ms ({len(stages['segment_end'])} commands)", flush=True)
    emit(figures)


if __name__ == "__main__":
    main()
