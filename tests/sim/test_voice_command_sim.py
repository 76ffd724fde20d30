"""End to end: a WAV of "take off, fly forward two meters, then land" fed to the audio input flies the simulated
drone exactly that way. Every box is a real node process over DDS: audio_input (file) → vad (Silero) → asr
(faster-whisper tiny.en) → planner (grammar) → flight_controller → sim."""
import time

import pytest

from mmchat_ros.msg import ActionPlan, Transcript
from tests.helpers import speech
from tests.helpers.flight import FlightClient, ros_args, start_stack
from tests.helpers.processes import python_cmd

pytestmark = [pytest.mark.slow, pytest.mark.sim]


def test_spoken_command_takes_off_flies_two_meters_forward_and_lands(spawn, ros, ros_env, tmp_path):
    audio, spans = speech.compose(1.0, speech.speak("take off, fly forward two meters, then land"), 1.5)
    wav = speech.write(tmp_path / "command.wav", audio)
    processes = start_stack(ros_env, tmp_path)
    try:
        flight = FlightClient(ros)
        transcripts = ros.collect(Transcript, "/speech/transcript")
        plans = ros.collect(ActionPlan, "/planner/plan")
        planner = spawn(python_cmd("mmchat_ros.nodes.planner", *ros_args(
            {"llm_backend": "none", "require_authorisation": False})), name="planner")
        asr = spawn(python_cmd("mmchat_ros.nodes.asr", *ros_args({"model": "tiny.en"})), name="asr")
        vad = spawn(python_cmd("mmchat_ros.nodes.vad"), name="vad")
        planner.wait_for_line("planner ready", timeout=60)
        asr.wait_for_line(r"asr ready", timeout=120)
        vad.wait_for_line(r"vad ready", timeout=60)
        start = flight.position()
        t0 = time.monotonic()
        spawn(python_cmd("mmchat_ros.nodes.audio_input", *ros_args(
            {"source": "file", "file_path": str(wav), "start": "on_subscriber"})), name="audio_input")
        said = ros.wait_for_message(transcripts, timeout=60, what="a transcript")
        assert "take off" in said.text.lower() and "land" in said.text.lower(), said.text
        plan = ros.wait_for_message(plans, timeout=20, what="a plan")
        assert [a.type for a in plan.actions] == [0, 3, 1], plan      # TAKEOFF, MOVE_BY, LAND
        assert abs(plan.actions[1].x - 2.0) < 1e-9 and plan.source == "grammar"
        flight.wait_mode("TAKING_OFF", timeout=20)
        flight.wait_mode("LANDED", timeout=90)
        track = flight.odom_since(t0)
        assert max(m.pose.pose.position.z for m in track) > 1.3
        end = flight.position()
        assert abs(end[0] - start[0] - 2.0) < 0.15 and abs(end[1] - start[1]) < 0.15 and end[2] < 0.15
    finally:
        for proc in processes:
            proc.stop()
