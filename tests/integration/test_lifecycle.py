"""Lifecycle nodes as real processes: the tracker and asr deactivated by `mmchat lifecycle` stop publishing and
their CPU drops (measured from /proc/<pid>/stat), and they come back on activate; the activation node applies
config/activation_policy.yaml to a running tracker and gesture node from what it sees on the graph."""
from __future__ import annotations

import subprocess
import threading
import time

import pytest
from rcl_interfaces.srv import GetParameters
from std_msgs.msg import Bool, String

from mmchat_ros.backends.audio_io import int16_array
from mmchat_ros.msg import DetectionArray, FlightState, SpeechSegment, Transcript
from mmchat_ros.nodes.common import COMMAND_QOS, STATE_QOS, seconds_to_stamp
from tests.helpers.faces import CameraStream
from tests.helpers.flight import ros_args
from tests.helpers.lifecycle import change_state, get_state
from tests.helpers.processes import cpu_percent, python_cmd
from tests.helpers.speech import compose, speak
from tests.helpers.yolo import vtest

pytestmark = pytest.mark.slow


def lifecycle(env, node, *args):
    return subprocess.run(python_cmd("mmchat_ros.tools.cli", "lifecycle", node, *args), env=env, text=True,
                          capture_output=True, timeout=60)


def start_tracker(spawn, **params):
    node = spawn(python_cmd("mmchat_ros.nodes.tracker", *ros_args({"detector": "hog", "frame_rate": 10.0,
                                                                    **params})), name="tracker")
    node.wait_for_line("active: working", timeout=120)
    return node


def test_a_deactivated_tracker_stops_publishing_and_costs_no_cpu_until_activated(spawn, ros, ros_env):
    node = start_tracker(spawn)
    detections = ros.collect(DetectionArray, "/detections", "sensor")
    camera = CameraStream(ros, rate_hz=10.0)
    try:
        ros.wait_for_subscribers(camera.publisher)
        camera.show(vtest(6, start=470))
        ros.wait_for(lambda: len(detections) >= 5, 60, "detections from the active tracker")
        before = len(detections)
        active_cpu = cpu_percent(node.proc.pid, 4.0)
        assert len(detections) > before + 4, "the active tracker publishes detections"

        out = lifecycle(ros_env, "tracker", "get")
        assert out.returncode == 0 and out.stdout.strip() == "active", out.stderr
        out = lifecycle(ros_env, "tracker", "list")
        assert out.returncode == 0 and "deactivate  (to inactive)" in out.stdout and "shutdown" in out.stdout
        out = lifecycle(ros_env, "tracker", "set", "deactivate")
        assert out.returncode == 0 and "deactivate: /tracker is inactive" in out.stdout, out.stderr
        node.wait_for_line("inactive: work stopped", timeout=10)
        time.sleep(1.0)                                   # a frame in flight at the transition may still arrive
        stopped_at = len(detections)
        inactive_cpu = cpu_percent(node.proc.pid, 4.0)
        assert len(detections) == stopped_at, "an inactive tracker publishes nothing"
        assert camera.publisher.get_subscription_count() == 0, "inactive, it no longer subscribes to the camera"
        print(f"tracker CPU with 10 frames/s coming: active {active_cpu:.1f} %, inactive {inactive_cpu:.1f} %")
        assert active_cpu > 20.0 and inactive_cpu < 3.0, (active_cpu, inactive_cpu)

        out = lifecycle(ros_env, "tracker", "set", "deactivate")   # not possible from inactive: said, exit 1
        assert out.returncode == 1 and "'deactivate' is not possible now" in out.stderr and "activate" in out.stderr
        # cleanup releases the detector, configure loads it again, activate starts over
        for transition, state in (("cleanup", "unconfigured"), ("configure", "inactive"), ("activate", "active")):
            out = lifecycle(ros_env, "tracker", "set", transition)
            assert out.returncode == 0 and out.stdout.strip() == f"{transition}: /tracker is {state}", out.stderr
        assert node.output.count("tracker ready") == 2
        ros.wait_for(lambda: len(detections) > stopped_at + 4, 60, "detections again after activate")
        out = lifecycle(ros_env, "tracker", "set", "shutdown")   # from active: work stopped, detector released
        assert out.returncode == 0 and out.stdout.strip() == "shutdown: /tracker is finalized", out.stderr
        finalized_at = len(detections)
        time.sleep(1.0)
        assert len(detections) == finalized_at and node.alive()
    finally:
        camera.stop()
    assert node.stop() == 0 and "Traceback" not in node.output, node.output[-3000:]


def test_an_inactive_tts_keeps_its_voice_speaks_nothing_and_speaks_again_once_active(spawn, ros, ros_env, tmp_path):
    out_dir = tmp_path / "tts"
    node = spawn(python_cmd("mmchat_ros.nodes.tts", *ros_args({"output": "file", "output_dir": str(out_dir),
                                                                "file_realtime": False})), name="tts")
    node.wait_for_line("active: working", timeout=60)
    say = ros.node.create_publisher(String, "/tts/say", COMMAND_QOS)
    ros.wait_for_subscribers(say)
    say.publish(String(data="One."))
    node.wait_for_line("spoke utterance 1 sentence 1", timeout=30)

    out = lifecycle(ros_env, "tts", "set", "deactivate")
    assert out.returncode == 0 and out.stdout.strip() == "deactivate: /tts is inactive", out.stderr
    ros.wait_for(lambda: say.get_subscription_count() == 0, 10, "the inactive tts to leave /tts/say")
    say.publish(String(data="Nobody hears this."))
    time.sleep(1.0)                                   # a negative check: nothing may be spoken
    assert len(list(out_dir.glob("*.wav"))) == 1

    out = lifecycle(ros_env, "tts", "set", "activate")
    assert out.returncode == 0 and out.stdout.strip() == "activate: /tts is active", out.stderr
    assert node.output.count("tts ready") == 1, "activate reuses the voice configure loaded"
    ros.wait_for_subscribers(say)
    say.publish(String(data="Two."))
    node.wait_for_line("spoke utterance 2 sentence 1", timeout=30)
    assert node.stop() == 0 and "Traceback" not in node.output, node.output[-3000:]


class SegmentStream:
    """Publishes the same spoken command on /speech/segment every ``period_s``, stamped as the vad would (capture
    times ending now), until stopped: speech that keeps coming."""

    def __init__(self, ros, samples, period_s: float):
        self.publisher = ros.node.create_publisher(SpeechSegment, "/speech/segment", COMMAND_QOS)
        self.samples, self.period_s = samples, period_s
        self.published = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            end = time.time()
            msg = SpeechSegment(sample_rate=16000, samples=int16_array(self.samples))
            msg.start, msg.end = seconds_to_stamp(end - self.samples.size / 16000), seconds_to_stamp(end)
            msg.header.stamp = msg.end
            self.publisher.publish(msg)
            self.published += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def test_an_inactive_asr_keeps_its_model_transcribes_nothing_and_costs_no_cpu_until_activated(spawn, ros, ros_env):
    node = spawn(python_cmd("mmchat_ros.nodes.asr"), name="asr")
    node.wait_for_line("active: working", timeout=120)
    transcripts = ros.collect(Transcript, "/speech/transcript")
    audio, _ = compose(0.2, speak("take off", "piper-joe"), 0.2)
    speech = SegmentStream(ros, audio, period_s=0.4)
    try:
        ros.wait_for_subscribers(speech.publisher)
        speech.start()
        ros.wait_for(lambda: len(transcripts) >= 2, 60, "transcripts from the active asr")
        assert "take off" in transcripts[0][1].text.lower(), transcripts[0][1].text
        active_cpu = cpu_percent(node.proc.pid, 4.0)

        out = lifecycle(ros_env, "asr", "set", "deactivate")
        assert out.returncode == 0 and out.stdout.strip() == "deactivate: /asr is inactive", out.stderr
        node.wait_for_line("inactive: work stopped", timeout=10)
        ros.wait_for(lambda: speech.publisher.get_subscription_count() == 0, 10, "the inactive asr to leave "
                     "/speech/segment")
        time.sleep(1.0)                          # a transcript of a decode that ended at the transition may arrive
        stopped_at, published_at = len(transcripts), speech.published
        inactive_cpu = cpu_percent(node.proc.pid, 4.0)
        assert speech.published >= published_at + 3 and len(transcripts) == stopped_at, \
            "an inactive asr transcribes nothing"
        print(f"asr CPU with a spoken command every 0.4 s: active {active_cpu:.1f} %, inactive "
              f"{inactive_cpu:.1f} %")
        assert active_cpu > 20.0 and inactive_cpu < 3.0, (active_cpu, inactive_cpu)

        out = lifecycle(ros_env, "asr", "set", "activate")
        assert out.returncode == 0 and out.stdout.strip() == "activate: /asr is active", out.stderr
        assert node.output.count("asr ready") == 1, "activate reuses the model configure loaded"
        ros.wait_for(lambda: len(transcripts) >= stopped_at + 2, 60, "transcripts again after activate")
        assert "take off" in transcripts[-1][1].text.lower(), transcripts[-1][1].text
    finally:
        speech.stop()
    assert node.stop() == 0 and "Traceback" not in node.output, node.output[-3000:]


def test_a_configure_that_fails_is_refused_with_the_reason_and_the_node_stays_unconfigured(spawn, ros_env,
                                                                                           tmp_path):
    missing = tmp_path / "yolo11n.pt"
    node = spawn(python_cmd("mmchat_ros.nodes.tracker", *ros_args(
        {"detector": "yolo", "weights": str(missing), "start_state": "unconfigured"})), name="tracker")
    node.wait_for_line(r"unconfigured \(start_state\): waiting for a lifecycle transition", timeout=120)
    out = lifecycle(ros_env, "tracker", "set", "configure")
    assert out.returncode == 1 and "/tracker refused configure" in out.stderr and "it is unconfigured" in out.stderr
    node.wait_for_line(rf"configure failed: WeightsNotFoundError: .*{missing}", timeout=10)
    assert node.alive()
    assert node.stop() == 0 and "Traceback" not in node.output


def get_parameter(ros, node, name):
    from rclpy.parameter import parameter_value_to_python
    values = ros.call(GetParameters, f"/{node}/get_parameters", GetParameters.Request(names=[name])).values
    return parameter_value_to_python(values[0])


def test_the_activation_policy_moves_tracker_and_gesture_with_what_the_graph_does(spawn, ros):
    tracker = start_tracker(spawn, max_rate_hz=5.0)
    gesture = spawn(python_cmd("mmchat_ros.nodes.gesture"), name="gesture")
    gesture.wait_for_line("active: working", timeout=120)
    policy = spawn(python_cmd("mmchat_ros.nodes.activation", *ros_args({"check_period_s": 0.5})), name="activation")
    policy.wait_for_line("activation policy ready", timeout=60)

    # Nothing going on: gesture recognition stops, the tracker slows to one frame a second.
    ros.wait_for(lambda: get_state(ros, "gesture") == "inactive", 20, "gesture deactivated")
    ros.wait_for(lambda: get_parameter(ros, "tracker", "max_rate_hz") == 1.0, 20, "the tracker slowed down")
    assert get_state(ros, "tracker") == "active"

    # Flying: gestures are wanted again.
    flight = ros.node.create_publisher(FlightState, "/flight/state", STATE_QOS)
    flight.publish(FlightState(mode="HOVER", armed=True))
    ros.wait_for(lambda: get_state(ros, "gesture") == "active", 20, "gesture activated while flying")

    # Following: the tracker back at its own rate; follow off: slow again.
    follow = ros.node.create_publisher(Bool, "/follow/enable", COMMAND_QOS)
    ros.wait_for_subscribers(follow)
    follow.publish(Bool(data=True))
    ros.wait_for(lambda: get_parameter(ros, "tracker", "max_rate_hz") == 5.0, 20, "full rate while following")
    time.sleep(4.0)           # past following's 3 s hold: switched on, it holds until switched off
    assert get_parameter(ros, "tracker", "max_rate_hz") == 5.0
    follow.publish(Bool(data=False))
    ros.wait_for(lambda: get_parameter(ros, "tracker", "max_rate_hz") == 1.0, 20, "slow again after follow")

    # A question about the scene: full rate for a while.
    transcripts = ros.node.create_publisher(Transcript, "/speech/transcript", COMMAND_QOS)
    ros.wait_for_subscribers(transcripts)
    transcripts.publish(Transcript(text="what do you see"))
    ros.wait_for(lambda: get_parameter(ros, "tracker", "max_rate_hz") == 5.0, 20, "full rate after the question")
    policy.wait_for_line("signals: .*scene_asked", timeout=5)

    # A node moved by hand is brought back.
    assert change_state(ros, "gesture", "deactivate")
    ros.wait_for(lambda: get_state(ros, "gesture") == "active", 20, "gesture back to what the policy wants")
    for proc in (policy, gesture, tracker):
        assert proc.stop() == 0 and "Traceback" not in proc.output, proc.output[-3000:]
