#!/usr/bin/env python3
"""The whole sim graph on this machine's CPU: every sim-mode node (config/graph.yaml, started by the project's
launcher on a private ROS domain) through a scripted flight, with per-node CPU and memory and the latencies that
matter measured while everything runs.

Phases (each measured for --phase-s seconds once it is under way):
  idle      landed, nobody in view (the vehicle starts facing away from the follow world's pedestrian), voice off
  auth      landed; an enrolled operator's face (tests/helpers/faces.py views) comes and goes in front of the camera
  teleop    hand photos (tests/helpers/hands.py) through the camera node: thumbs up takes off, pointing up climbs,
            open palm holds, thumb left turns (with the activation policy on, the operator's face comes first, until
            gesture recognition is active: the policy keeps it off on the ground until an operator is seen)
  follow    turned towards the follow world's walking pedestrian, /follow/enable true
  voice     voice on (audio_input from a WAV, vad, asr, tts): "turn left ninety degrees", then "land now" lands

What the camera sees: the camera node relays /bench/camera/image_raw, which this script fills with the
simulator's own frames (/sim/camera/image_raw, passed on untouched) except while it shows hand or face photos.
This relay and this script's subscriptions (odometry at 250 Hz) cost CPU too: printed as "bench" and left out
of the graph's totals.

Measured:
  CPU % per node (100 % = one core) from /proc/<pid>/stat utime+stime over the phase, RSS (max of 1 s samples)
  gesture_latency_p95_ms   frame published → /cmd_vel/teleop stamped with that frame's stamp arriving; broken
                           down: frame → its /gesture message arriving here, /gesture → /cmd_vel/teleop (the
                           teleop hop), and the gesture node's own stage timings over the phase (its statistics
                           lines: transport to the node, wait for the worker, MediaPipe wall and CPU time, ...)
  detections_latency_p95_ms, tracker_fps   /detections during follow: arrival − frame stamp, and messages/s
  auth_decision_ms_p95     first face frame of an appearance → first authorised /auth/state (liveness off: a
                           photo cannot blink; the challenge's Face Mesh cost is not in these figures)
  control_loop_cpu_pct     the flight controller's control thread (the SCHED_FIFO one with the highest priority)
  voice_to_motion_p50_ms   VAD segment end (capture clock) → /planner/plan stamp, as bench/voice_to_action.py

    python bench/graph.py [--phase-s 30] [--only idle,teleop,...] [--activation-policy on|off]

--activation-policy: launch the graph with activation_policy:=true or false (docs/activation.md); default the
launcher's own default (config/graph.yaml).

The last line is one JSON object (keys in docs/benchmarks.md); a figure that could not be measured is null and
the reason is printed.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, emit, percentile  # noqa: E402

from mmchat_ros.core.stage_timings import parse_summary  # noqa: E402

sys.path.insert(0, str(ROOT))   # tests.helpers: hand and face photos, spoken commands

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MUX_TOPIC = "/bench/camera/image_raw"
SIM_CAMERA = "/sim/camera/image_raw"
OPERATOR = "astronaut"
PHASES = ("idle", "auth", "teleop", "follow", "voice")
VOICE_COMMANDS = ("turn left ninety degrees", "land now")
VOICE = "piper-joe"    # a neural voice: what a person sounds like more than espeak
GESTURE_STATS_PERIOD_S = 5.0


# ---------------------------------------------------------------------------------------------------- /proc
def proc_stat(path: str) -> list[str] | None:
    """Fields 3.. of a /proc stat file (index 0 = field 3, the state), or None when the task is gone."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def cpu_ticks(pid: int) -> int | None:
    fields = proc_stat(f"/proc/{pid}/stat")
    return None if fields is None else int(fields[11]) + int(fields[12])     # utime + stime


def rss_bytes(pid: int) -> int | None:
    fields = proc_stat(f"/proc/{pid}/stat")
    return None if fields is None else int(fields[21]) * PAGE


def control_thread_ticks(pid: int) -> int | None:
    """CPU ticks of the flight controller's control thread: the SCHED_FIFO thread of the highest priority (the
    executor thread runs one below it); None when no thread runs SCHED_FIFO (priority refused)."""
    best = None
    for task in Path(f"/proc/{pid}/task").glob("*"):
        fields = proc_stat(str(task / "stat"))
        if fields is None or int(fields[38]) != os.SCHED_FIFO:
            continue
        priority = int(fields[37])
        if best is None or priority > best[0]:
            best = (priority, int(fields[11]) + int(fields[12]))
    return None if best is None else best[1]


def machine_busy_ticks() -> tuple[int, int]:
    parts = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


class Sampler:
    """Per-node CPU between phase start and end; RSS sampled every second."""

    def __init__(self, pids):
        self.pids = pids           # callable: {name: pid} of the running nodes
        self.rss: dict[str, int] = {}
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stop.wait(1.0):
            for name, pid in self.pids().items():
                rss = rss_bytes(pid)
                if rss:
                    self.rss[name] = max(self.rss.get(name, 0), rss)

    def snapshot(self) -> dict:
        pids = self.pids()
        return {"t": time.monotonic(), "ticks": {n: cpu_ticks(p) for n, p in pids.items()},
                "pids": pids, "machine": machine_busy_ticks(), "load": os.getloadavg()[0]}

    def start_phase(self):
        self.rss = {}
        return self.snapshot()

    def end_phase(self, start: dict) -> dict:
        end = self.snapshot()
        wall = end["t"] - start["t"]
        cpu = {}
        for name, ticks in end["ticks"].items():
            before = start["ticks"].get(name, 0)       # started within the phase: all its CPU time is in it
            if ticks is None or before is None or start["pids"].get(name, end["pids"][name]) != end["pids"][name]:
                continue          # died or respawned within the phase: no honest figure
            cpu[name] = 100.0 * (ticks - before) / CLK_TCK / wall
        busy = (end["machine"][0] - start["machine"][0]) / max(1, end["machine"][1] - start["machine"][1])
        return {"wall_s": wall, "cpu": cpu, "rss_mb": {n: v / 2 ** 20 for n, v in self.rss.items()},
                "machine_pct": 100.0 * busy * os.cpu_count(), "load": end["load"]}


# ------------------------------------------------------------------------------------------------ the graph
class Bench:
    def __init__(self, work: Path, phase_s: float, activation_policy: str | None):
        from mmchat_ros.core.launch_graph import load_graph
        from mmchat_ros.core.rosenv import ros_environment
        from mmchat_ros.tools.launcher import Launcher
        from tests.helpers.domains import unused_domain_id
        self.work, self.phase_s = work, phase_s
        self.domain = unused_domain_id()
        self.env = ros_environment(domain_id=self.domain, log_dir=str(work / "ros-log"))
        self.env["XDG_DATA_HOME"] = str(work / "xdg")       # the operator database's key pair stays private
        self.db = work / "operators.db"
        self.enroll()
        self.graph = load_graph()
        self.arguments = {"world": str(ROOT / "sim" / "worlds" / "follow.yaml"), "operators_db": str(self.db),
                          "llm_backend": "none", "panel_port": str(18100 + self.domain),
                          "foxglove_port": str(19100 + self.domain)}
        if activation_policy is not None:
            self.arguments["activation_policy"] = "true" if activation_policy == "on" else "false"
        specs = self.graph.resolve("sim", self.arguments)
        self.activation_policy = any(spec.name == "activation" for spec in specs)
        for spec in specs:
            if spec.name == "sim":
                spec.parameters["start_yaw_deg"] = 180.0        # facing away from the pedestrian: nobody in view
            if spec.name == "camera":
                spec.parameters["input_topic"] = MUX_TOPIC
            if spec.name == "face_auth":
                spec.parameters["liveness"] = False            # a photo cannot blink
            if spec.name == "gesture":
                spec.parameters["stats_period_s"] = GESTURE_STATS_PERIOD_S   # several stage lines per phase
        self.log_dir = work / "logs"
        self.launchers = [Launcher(specs, log_dir=self.log_dir, env=self.env, out=open(work / "launch.log", "w"))]
        self.launchers[0].start()
        self.sampler = Sampler(self.pids)
        self.results: dict[str, dict] = {}

    def enroll(self):
        import cv2

        from tests.helpers import faces
        images = []
        for seed in range(6):
            path = self.work / f"enroll-{seed}.png"
            cv2.imwrite(str(path), cv2.cvtColor(faces.camera_view(OPERATOR, seed), cv2.COLOR_RGB2BGR))
            images.append(str(path))
        subprocess.run([sys.executable, "-m", "mmchat_ros.tools.operators_cli", "enroll", OPERATOR, *images,
                        "--no-pin", "--database", str(self.db)], check=True, env=self.env, capture_output=True)

    def pids(self) -> dict[str, int]:
        return {n.spec.name: n.process.pid for launcher in self.launchers for n in launcher.nodes
                if n.process is not None and n.process.poll() is None}

    def log(self, name: str) -> str:
        try:
            return (self.log_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    def connect(self):
        from geometry_msgs.msg import TwistStamped
        from sensor_msgs.msg import Image
        from std_msgs.msg import Bool

        from mmchat_ros.msg import AuthState, DetectionArray, Gesture
        from mmchat_ros.nodes.common import COMMAND_QOS, SENSOR_QOS, STATE_QOS
        from mmchat_ros.tools.flight_client import FlightClient
        from mmchat_ros.tools.ros_client import RosClient
        self.ros = RosClient(self.domain, "bench_graph")
        self.mux = CameraMux(self.ros, Image, SENSOR_QOS)
        self.teleop_cmds = self.ros.collect(TwistStamped, "/cmd_vel/teleop", "sensor")
        self.gestures = self.ros.collect(Gesture, "/gesture", COMMAND_QOS)
        self.detections = self.ros.collect(DetectionArray, "/detections", SENSOR_QOS)
        self.auth_states = self.ros.collect(AuthState, "/auth/state", STATE_QOS)
        self.follow_enable = self.ros.node.create_publisher(Bool, "/follow/enable", STATE_QOS)   # as teleop's
        for name, line in (("camera", "camera ready"), ("gesture", "gesture recogniser ready"),
                           ("teleop", "teleop ready"), ("tracker", "tracker ready"), ("face_auth", "face auth ready"),
                           ("follow", "follow ready"), ("planner", "planner ready"),
                           ("flight_controller", "flight controller ready")):
            self.ros.wait_for(lambda: line in self.log(name), 180, f"{name}: '{line}'", poll=0.5)
        if self.activation_policy:
            self.ros.wait_for(lambda: "activation policy ready" in self.log("activation"), 60, "the activation policy")
        self.flight = FlightClient(self.ros)
        self.ros.wait_for(lambda: "service /takeoff available" in self.log("teleop"), 60, "teleop's services")
        self.ros.wait_for(lambda: self.mux.forwarded > 10, 30, "simulator frames through the bench relay")

    def close(self):
        for launcher in reversed(self.launchers):
            launcher.stop()
        if hasattr(self, "ros"):
            self.mux.stop()
            self.ros.close()

    # --------------------------------------------------------------------------------------------- phases
    def measure(self, name: str, body) -> None:
        """Run ``body(deadline)`` and record the CPU between its start and its return."""
        fc = self.pids().get("flight_controller")
        loop_before = control_thread_ticks(fc) if fc else None
        bench_before = cpu_ticks(os.getpid())
        start = self.sampler.start_phase()
        body(time.monotonic() + self.phase_s)
        result = self.sampler.end_phase(start)
        result["bench_pct"] = 100.0 * (cpu_ticks(os.getpid()) - bench_before) / CLK_TCK / result["wall_s"]
        loop_after = control_thread_ticks(fc) if fc else None
        same_fc = self.pids().get("flight_controller") == fc
        result["control_loop_pct"] = (100.0 * (loop_after - loop_before) / CLK_TCK / result["wall_s"]
                                      if None not in (loop_before, loop_after) and same_fc else None)
        result["mode"] = self.flight.mode()
        self.results[name] = result
        print_phase(name, result)

    def idle(self, deadline):
        self.mux.show(None)
        sleep_until(deadline)

    def auth(self, deadline):
        from tests.helpers import faces
        views = [faces.camera_view(OPERATOR, 100 + seed) for seed in range(8)]
        self.auth_ms = []
        while time.monotonic() < deadline - 4.0:
            self.ros.wait_for(lambda: self.auth_states and not self.auth_states[-1][1].authorised, 10,
                              "the operator's authorisation to lapse")
            time.sleep(2.0)     # an analysis of the last face frames still under way must not count for the next
            shown = time.monotonic()
            seen = len(self.auth_states)
            self.mux.show(views)
            try:
                self.ros.wait_for(lambda: any(s.authorised for _, s in self.auth_states[seen:]), 10,
                                  "an authorised /auth/state")
                arrival = next(t for t, s in self.auth_states[seen:] if s.authorised)
                self.auth_ms.append(1000.0 * (arrival - shown))
            except TimeoutError as exc:
                print(f"  auth: {exc}", flush=True)
            self.mux.show(None)
        self.ros.wait_for(lambda: not self.auth_states[-1][1].authorised, 10, "the lapse")
        sleep_until(deadline)

    def present_operator(self):
        """The operator's face until gesture recognition is active: with the activation policy it is off on the
        ground until an operator is seen (as a user would first stand in front of the drone)."""
        from tests.helpers import faces

        def gesture_active() -> bool:     # its latest lifecycle line (it may still be active from the auth phase)
            log = self.log("gesture")
            return log.rfind("active: working") > log.rfind("inactive: work stopped")
        self.mux.show([faces.camera_view(OPERATOR, 100 + seed) for seed in range(8)])
        self.ros.wait_for(gesture_active, 30, "gesture recognition activated by the operator in view", poll=0.2)

    def teleop(self, deadline):
        from tests.helpers import hands
        flight, ros = self.flight, self.ros
        if self.activation_policy:
            self.present_operator()
        self.teleop_window = (time.time(), math.inf)
        self.mux.show([hands.shot("thumbs_up")])
        ros.wait_for(lambda: flight.mode() not in ("LANDED", ""), 30, "the take-off to start")
        self.mux.show([hands.empty_frame()])
        flight.wait_mode("HOVER", timeout=40)
        script = [("pointing_up", 3.0), ("open_palm", 2.0), ("thumb_left", 2.0), ("open_palm", 2.0)]
        while time.monotonic() < deadline:
            for gesture, seconds in script:
                self.mux.show([hands.shot(gesture)])
                time.sleep(min(seconds, max(0.0, deadline - time.monotonic())))
        self.mux.show([hands.empty_frame()])
        time.sleep(1.0)            # the dead-man rule hands control back
        self.teleop_window = (self.teleop_window[0], time.time())

    def prepare_follow(self):
        """Back above the start point, turned towards the pedestrian (+x)."""
        from mmchat_ros.msg import PlanAction
        from mmchat_ros.tools.flight_client import action, yaw_of
        self.mux.show(None)
        self.flight.take_off_and_settle()
        turn = math.degrees(math.remainder(-yaw_of(self.flight.odom[-1][1]), math.tau))
        try:
            self.flight.execute([action(PlanAction.GOTO, x=0.0, y=0.0, z=1.5),
                                 action(PlanAction.ROTATE, yaw_deg=turn)])
        except (TimeoutError, RuntimeError) as exc:    # measured all the same: the table says if nobody was seen
            print(f"  follow: the turn towards the pedestrian failed: {exc}", flush=True)

    def follow(self, deadline):
        from std_msgs.msg import Bool
        t0 = time.monotonic()
        self.follow_enable.publish(Bool(data=True))
        sleep_until(deadline)
        self.follow_window = (t0, time.monotonic())
        self.follow_enable.publish(Bool(data=False))

    def prepare_voice(self):
        """Voice on: vad, asr and tts start and load their models before the phase is measured."""
        from mmchat_ros.tools.launcher import Launcher
        from tests.helpers import speech
        parts: list = [1.0]
        for text in VOICE_COMMANDS:
            parts += [speech.speak(text, VOICE), 6.0]
        self.voice_audio, _ = speech.compose(*parts)
        wav = speech.write(self.work / "commands.wav", self.voice_audio)
        voice_args = {**self.arguments, "voice": "true", "audio_source": "file", "audio_file": str(wav),
                      "tts_output": "file"}
        self.voice_specs = {s.name: s for s in self.graph.resolve("sim", voice_args)}
        self.launchers.append(Launcher([self.voice_specs[n] for n in ("vad", "asr", "tts")], log_dir=self.log_dir,
                                       env=self.env, out=open(self.work / "launch-voice.log", "w")))
        self.launchers[-1].start()
        for name in ("vad", "asr", "tts"):
            self.ros.wait_for(lambda: f"{name} ready" in self.log(name), 180, f"{name} ready", poll=0.5)
        time.sleep(3.0)
        self.flight.take_off_and_settle()     # last: a vehicle left hovering without commands lands by itself

    def voice(self, deadline):
        from mmchat_ros.msg import ActionPlan, SpeechSegment
        from mmchat_ros.nodes.common import COMMAND_QOS
        from mmchat_ros.tools.launcher import Launcher
        segments = self.ros.collect(SpeechSegment, "/speech/segment")
        plans = self.ros.collect(ActionPlan, "/planner/plan", COMMAND_QOS)
        audio_input = self.voice_specs["audio_input"]
        audio_input.parameters.update(start="on_subscriber", start_delay_s=1.0, at_end="idle")
        self.launchers.append(Launcher([audio_input], log_dir=self.log_dir, env=self.env,
                                       out=open(self.work / "launch-audio.log", "w")))
        self.launchers[-1].start()
        try:
            self.ros.wait_for(lambda: len(plans) >= len(VOICE_COMMANDS) and self.flight.mode() == "LANDED",
                              len(self.voice_audio) / 16000 + 30, "every spoken command planned and the landing")
        except TimeoutError as exc:
            print(f"  voice: {exc} ({len(plans)} plans, mode {self.flight.mode()}); landing through the service",
                  flush=True)
            self.flight.land_and_wait()
        sleep_until(deadline)
        stamp = lambda t: t.sec + t.nanosec * 1e-9  # noqa: E731
        self.voice_ms = []
        for _, plan in plans:
            sent = stamp(plan.header.stamp)
            ends = [stamp(s.end) for _, s in segments if stamp(s.end) <= sent]
            if ends:
                self.voice_ms.append(1000.0 * (sent - max(ends)))
        self.voice_plans, self.voice_segments = len(plans), len(segments)


class CameraMux:
    """What the camera node relays: the simulator's frames, or photos shown at 15 frames/s (stamped when sent)."""

    def __init__(self, ros, image_type, qos):
        self.ros = ros
        self.publisher = ros.node.create_publisher(image_type, MUX_TOPIC, qos)
        self.frames = None
        self.forwarded = 0
        self.sent: set[tuple[int, int]] = set()      # stamps of the photo frames published
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        ros.node.create_subscription(image_type, SIM_CAMERA, self.on_sim_frame, qos)
        threading.Thread(target=self._run, daemon=True).start()

    def on_sim_frame(self, msg):
        if self.frames is None:
            self.publisher.publish(msg)
            self.forwarded += 1

    def show(self, frames) -> None:
        from mmchat_ros.nodes.image_conversion import numpy_to_image
        with self.lock:
            self.frames = None if frames is None else [numpy_to_image(f, "rgb8") for f in frames]

    def _run(self):
        index = 0
        while not self.stopping.wait(1.0 / 15.0):
            with self.lock:
                frames = self.frames
            if not frames:
                continue
            msg = frames[index % len(frames)]
            index += 1
            msg.header.frame_id = "camera_optical"
            msg.header.stamp = self.ros.node.get_clock().now().to_msg()
            try:
                self.publisher.publish(msg)
            except Exception:       # the participant is going
                return
            self.sent.add((msg.header.stamp.sec, msg.header.stamp.nanosec))

    def stop(self):
        self.stopping.set()


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))


def print_phase(name: str, result: dict) -> None:
    total = sum(result["cpu"].values())
    print(f"\nphase {name}: {result['wall_s']:.0f} s, graph {total:.0f} % of one core (machine {result['machine_pct']:.0f} "
          f"% incl. bench {result['bench_pct']:.0f} %), load {result['load']:.1f}, mode at the end {result['mode']}",
          flush=True)
    print(f"  {'node':18s} {'CPU %':>7s} {'RSS MB':>7s}")
    for node, pct in sorted(result["cpu"].items(), key=lambda kv: -kv[1]):
        print(f"  {node:18s} {pct:7.1f} {result['rss_mb'].get(node, float('nan')):7.0f}")
    loop = result["control_loop_pct"]
    print(f"  control loop thread: {'n/a' if loop is None else f'{loop:.1f} %'}", flush=True)


# ------------------------------------------------------------------------------------------------- figures
def figures(bench: Bench) -> dict:
    results = bench.results
    out: dict = {}

    def graph_cpu(phase):
        return sum(results[phase]["cpu"].values()) if phase in results else None

    def null(key, reason):
        out[key] = None
        print(f"{key}: not measured: {reason}", flush=True)

    for phase in ("idle", "teleop", "follow"):
        if phase in results:
            out[f"{phase}_cpu_pct"] = graph_cpu(phase)
        else:
            null(f"{phase}_cpu_pct", f"phase {phase} not run")
    for phase in ("auth", "voice"):
        if phase in results:
            out[f"{phase}_cpu_pct"] = graph_cpu(phase)
    out["per_node_cpu_pct"] = {p: {n: round(v, 1) for n, v in r["cpu"].items()} for p, r in results.items()}
    out["per_node_rss_mb"] = {p: {n: round(v) for n, v in r["rss_mb"].items()} for p, r in results.items()}
    out["bench_cpu_pct"] = {p: round(r["bench_pct"], 1) for p, r in results.items()}
    out["load_1min_by_phase"] = {p: round(r["load"], 1) for p, r in results.items()}
    out["activation_policy"] = bench.activation_policy

    if "teleop" in results:
        sent = bench.mux.sent
        latencies = []
        for arrival, cmd in bench.teleop_cmds:
            key = (cmd.header.stamp.sec, cmd.header.stamp.nanosec)
            if key in sent:
                stamp = key[0] + key[1] * 1e-9
                latencies.append(1000.0 * (arrival - time.monotonic() + time.time() - stamp))
        if latencies:
            out["gesture_latency_p50_ms"] = percentile(latencies, 50)
            out["gesture_latency_p95_ms"] = percentile(latencies, 95)
            out["gesture_commands"] = len(latencies)
            print(f"gesture frame → /cmd_vel/teleop: p50 {out['gesture_latency_p50_ms']:.0f} ms, p95 "
                  f"{out['gesture_latency_p95_ms']:.0f} ms over {len(latencies)} commands", flush=True)
            out.update(gesture_breakdown(bench))
        else:
            null("gesture_latency_p95_ms", "no velocity command carried a hand frame's stamp")
    else:
        null("gesture_latency_p95_ms", "phase teleop not run")

    if "follow" in results and hasattr(bench, "follow_window"):
        t0, t1 = bench.follow_window
        window = [(t, m) for t, m in bench.detections if t0 <= t <= t1]
        offset = time.time() - time.monotonic()
        latencies = [1000.0 * (t + offset - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9)) for t, m in window]
        out["tracker_fps"] = len(window) / (t1 - t0)
        with_person = sum(1 for _, m in window if any(d.class_name == "person" for d in m.detections))
        out["tracker_frames_with_person"] = with_person
        if latencies:
            out["detections_latency_p95_ms"] = percentile(latencies, 95)
        else:
            null("detections_latency_p95_ms", "no /detections during follow")
        print(f"tracker: {out['tracker_fps']:.1f} frames/s, {with_person}/{len(window)} with a person, camera → "
              f"detections p95 {out.get('detections_latency_p95_ms') or float('nan'):.0f} ms", flush=True)
    else:
        null("tracker_fps", "phase follow not run")
        null("detections_latency_p95_ms", "phase follow not run")

    if getattr(bench, "auth_ms", None):
        out["auth_decision_ms_p50"] = percentile(bench.auth_ms, 50)
        out["auth_decision_ms_p95"] = percentile(bench.auth_ms, 95)
        out["auth_decisions"] = len(bench.auth_ms)
        print(f"face shown → authorised: {', '.join(f'{v:.0f}' for v in bench.auth_ms)} ms", flush=True)
    else:
        null("auth_decision_ms_p95", "phase auth not run, or no appearance of the operator was authorised within "
                                     "10 s (3 matching faces of 5 within vote_max_age_s are needed)")

    loops = {p: r["control_loop_pct"] for p, r in results.items() if r["control_loop_pct"] is not None}
    out["control_loop_cpu_pct_by_phase"] = {p: round(v, 1) for p, v in loops.items()}
    if "follow" in loops:
        out["control_loop_cpu_pct"] = loops["follow"]
    else:
        null("control_loop_cpu_pct", "no follow phase, or no SCHED_FIFO control thread found (priority refused)")

    if getattr(bench, "voice_ms", None):
        out["voice_to_motion_p50_ms"] = percentile(bench.voice_ms, 50)
        out["voice_commands_planned"] = f"{bench.voice_plans}/{len(VOICE_COMMANDS)}"
        print(f"end of speech → plan: {', '.join(f'{v:.0f}' for v in bench.voice_ms)} ms ({bench.voice_plans} "
              f"plans from {len(VOICE_COMMANDS)} commands, {bench.voice_segments} speech segments)", flush=True)
    else:
        null("voice_to_motion_p50_ms", "phase voice not run or no spoken command became a plan")
    out["cpu_cores"] = os.cpu_count()
    return out


def log_stamp(line: str) -> float:
    """The wall-clock stamp of a ROS log line '[INFO] [1796469111.076596300] [node]: ...' (NaN without one)."""
    try:
        return float(line.split("] [", 2)[1])
    except (IndexError, ValueError):
        return math.nan


def gesture_breakdown(bench: Bench) -> dict:
    """Where the teleop phase's frame → command time went: frame → /gesture arriving here, /gesture → the command
    (the teleop hop, both arrivals here), and the gesture node's stage timings (its statistics lines within the
    phase; per stage the median of the lines' p50 and of their p95)."""
    out: dict = {}
    offset = time.time() - time.monotonic()
    sent = bench.mux.sent
    gesture_arrival = {}
    for arrival, msg in bench.gestures:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        if key in sent:
            gesture_arrival[key] = arrival
    to_gesture = [1000.0 * (arrival + offset - (key[0] + key[1] * 1e-9)) for key, arrival in gesture_arrival.items()]
    teleop_hop = [1000.0 * (arrival - gesture_arrival[key]) for arrival, cmd in bench.teleop_cmds
                  if (key := (cmd.header.stamp.sec, cmd.header.stamp.nanosec)) in gesture_arrival]
    for name, values in (("gesture_message", to_gesture), ("teleop_hop", teleop_hop)):
        if values:
            out[f"{name}_latency_p50_ms"] = percentile(values, 50)
            out[f"{name}_latency_p95_ms"] = percentile(values, 95)
    stages: dict[str, list[tuple[float, float]]] = {}
    start, end = getattr(bench, "teleop_window", (0.0, 0.0))
    for line in bench.log("gesture").splitlines():
        # "[INFO] [<stamp>] [gesture]: N frames: transport 4.1/9.8, wait ..., in_node 20.1/31.0 ms (p50/p95); ..."
        figures_by_stage = parse_summary(line)
        if not figures_by_stage or not start <= log_stamp(line) <= end + GESTURE_STATS_PERIOD_S:
            continue
        for stage, p50_p95 in figures_by_stage.items():
            stages.setdefault(stage, []).append(p50_p95)
    out["gesture_node_stages_ms"] = {stage: {"p50": round(percentile([v[0] for v in values], 50), 1),
                                             "p95": round(percentile([v[1] for v in values], 50), 1)}
                                     for stage, values in stages.items()}
    print(f"  frame → /gesture here: p50 {out.get('gesture_message_latency_p50_ms', math.nan):.0f} / p95 "
          f"{out.get('gesture_message_latency_p95_ms', math.nan):.0f} ms; /gesture → /cmd_vel/teleop (teleop hop): "
          f"p50 {out.get('teleop_hop_latency_p50_ms', math.nan):.1f} / p95 "
          f"{out.get('teleop_hop_latency_p95_ms', math.nan):.1f} ms", flush=True)
    print("  gesture node stages (median of its 5 s lines), p50/p95 ms: " + ", ".join(
        f"{stage} {v['p50']}/{v['p95']}" for stage, v in out["gesture_node_stages_ms"].items()), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase-s", type=float, default=30.0, help="measured seconds per phase")
    parser.add_argument("--only", default=",".join(PHASES), help="phases to run, in flight order")
    parser.add_argument("--activation-policy", choices=("on", "off"), default=None,
                        help="launch the graph with activation_policy:=true (on) or false (off); default: the "
                             "launcher's default")
    args = parser.parse_args()
    wanted = [p for p in PHASES if p in args.only.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-graph-"))
    started = time.monotonic()
    bench = Bench(work, args.phase_s, args.activation_policy)
    try:
        bench.connect()
        print(f"graph up in {time.monotonic() - started:.0f} s ({len(bench.pids())} nodes; logs in {bench.log_dir})",
              flush=True)
        time.sleep(5.0)            # start-up work (model loads, JIT warm-up) settles
        for phase in wanted:
            getattr(bench, f"prepare_{phase}", lambda: None)()
            bench.measure(phase, getattr(bench, phase))
        result = figures(bench)
    finally:
        bench.close()
    counts = [line.split("]: ", 1)[-1] for line in bench.log("face_auth").splitlines() if "frames received" in line]
    if counts:        # face_auth's own count of analysed and dropped frames, logged when it stops
        print(f"face_auth over the run: {counts[-1]}", flush=True)
    result["wall_s"] = time.monotonic() - started
    emit(result)


if __name__ == "__main__":
    main()
