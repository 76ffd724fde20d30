#!/usr/bin/env python3
"""The robot / ground split over an impaired link (issue 17): the robot part in one network namespace, a ground
station in another, joined by tools/impaired_link.py (a TUN device in each namespace, the IP packets between them
delayed, dropped and capped by this process; 169.254 addresses, nothing leaves the machine). Needs root.

Robot namespace: the robot part's sim, camera, image_compressor and flight_controller (config/graph.yaml, part
robot, sim mode; hover_land_timeout_s set by --hover-land-timeout-s; require_authorisation on), a stand-in for
face_auth signing the operator's /auth/state with a key pair made for the run (network_station.py
robot-authorise), and an observer of the flight mode and odometry (network_station.py robot-motion). Ground
namespace: a light ground station (flight state, the compressed video, operator velocity commands and take-offs;
network_station.py ground-station). DDS on each side is bound to its link address with unicast discovery
(core.rosenv.network_profile).

Phases, after the ground has taken off the robot across the clean link:
  clean       --trials velocity steps from the ground (forward, back, ...), the video watched meanwhile
  lossy       the same over 5 Mbit/s, 100 ± 20 ms, 5 % loss, each direction (--rate-mbps, --delay-ms, ...)
  partition   every packet dropped for --partition-s while the ground streams zero-velocity commands, and the
              operator's authorisation not renewed from the cut on (face_auth no longer sees them); the flight
              modes the robot goes through from the cut until --after-s after the link returns
  reauth      on the lossy link, once the robot is down: the ground replays its copy of the last /auth/state and
              asks for take-offs (refused: no authorised operator), then the operator is authorised afresh and
              the ground takes off and flies 2 velocity steps

Measured (video figures from every frame arriving at the ground in the phase):
  video_fps_ground_*            frames/s arriving at the ground
  video_latency_p95_ms_*        capture stamp → arrival at the ground
  link_bandwidth_mbps           what crossed the link in the lossy phase, both directions (per direction and
                                clean too)
  command_to_motion_p95_ms_*    the ground's first command of a step → the robot's odometry passing 0.1 m/s that way
  command_delivery_p95_ms_*     a velocity command's stamp on the ground → its arrival on the robot (the link's
                                share of the above); hovers_while_commanded_lossy: HOVERs the command watchdog
                                entered while the ground streamed commands at 20 Hz (gaps > command_timeout_s)
  video_fps_published_on_robot_*  what the robot offered the link (the rest was lost on it)
  link_multicast_packets        IPv4 multicast packets sent into the link (0: discovery is unicast)
  cpu_pct, load_average_1min    per process, and the machine's load: the machine may be shared
  partition_outcome             hover_then_land, hover, or the modes seen
  control_resumed_after_reauth  after the link returned: the stale authorisation and every take-off refused, the
                                robot still on the ground; after the fresh authorisation airborne and moving on
                                the ground's velocity commands
  reauth_to_motion_ms           the fresh authorisation signed → the robot's odometry climbing at 0.1 m/s (the
                                ground's take-off across the lossy link, the spool-up and the climb's start)

    python bench/network.py [--trials 8] [--partition-s 10]

The last line is one JSON object; a figure that could not be measured is null and the reason is printed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests.helpers: namespaces and both stations
from _common import emit, percentile  # noqa: E402

from mmchat_ros.core.auth_signing import ensure_keys  # noqa: E402
from mmchat_ros.core.launch_graph import load_graph  # noqa: E402
from mmchat_ros.core.link_impairment import Impairment  # noqa: E402
from mmchat_ros.core.rosenv import ros_environment  # noqa: E402
from mmchat_ros.tools.launcher import resolve_executable  # noqa: E402
from tests.helpers.domains import unused_domain_id  # noqa: E402
from tests.helpers.netns import LinkedNamespaces, NetnsUnavailable  # noqa: E402
from tests.helpers.network_station import TRIAL_MOVE_S  # noqa: E402
from tests.helpers.processes import NodeProcess, python_cmd  # noqa: E402

ROBOT_NODES = ("sim", "camera", "image_compressor", "flight_controller")
NOT_HERE = {   # the other figures: other work, printed as null with the reason
    "drones_flown": "several vehicles (issue 17, item 3) are not built yet",
    "cross_talk": "several vehicles (issue 17, item 3) are not built yet",
}
TAKEOFF_TRIES = 4          # after the partition, before the fresh authorisation


def lines_of(proc: NodeProcess, kind: str, start: float, end: float) -> list[list[str]]:
    """The fields of proc's lines '<kind> ... <monotonic s>' stamped within [start, end)."""
    found = []
    for line in list(proc.lines):
        fields = line.split()
        if fields and fields[0] == kind and start <= float(fields[-1]) < end:
            found.append(fields[1:])
    return found


def video_figures(ground: NodeProcess, start: float, end: float) -> dict:
    frames = lines_of(ground, "FRAME", start, end)
    latencies = [float(latency) for latency, _, _ in frames]
    return {"fps": len(frames) / (end - start), "latency_p50_ms": percentile(latencies, 50),
            "latency_p95_ms": percentile(latencies, 95),
            "frame_kb": sum(int(size) for _, size, _ in frames) / max(len(frames), 1) / 1000}


def command_to_motion_ms(ground: NodeProcess, robot: NodeProcess, start: float, end: float) -> tuple[list, int]:
    """Per step: ms from the ground's first command to the robot moving that way; and how many steps never did
    (within the step's TRIAL_MOVE_S)."""
    moves = [(int(sign), float(t)) for sign, t in lines_of(robot, "MOVING", start, end + TRIAL_MOVE_S)]
    delays, missed = [], 0
    for sign, sent in ((int(sign), float(t)) for sign, t in lines_of(ground, "CMD", start, end)):
        moved = [t for s, t in moves if s == sign and sent < t <= sent + TRIAL_MOVE_S]
        if moved:
            delays.append(1000 * (moved[0] - sent))
        else:
            missed += 1
    return delays, missed


def cpu_seconds(proc: NodeProcess) -> float:
    """User + system CPU time of a process so far (`ip netns exec` runs the command in its own process)."""
    try:
        fields = Path(f"/proc/{proc.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bandwidth_mbps(before: dict, after: dict, seconds: float) -> dict:
    return {direction: 8e-6 * (after[direction]["bytes"] - before[direction]["bytes"]) / seconds
            for direction in after}


def _waits_for(proc: NodeProcess, pattern: str, timeout: float, start: int) -> bool:
    try:
        proc.wait_for_line(pattern, timeout=timeout, start=start)
    except (TimeoutError, RuntimeError):       # RuntimeError: it exited (the ground gave up on a take-off)
        return False
    return True


def partition_outcome(modes: list[str]) -> str:
    if "HOVER" in modes and ("LANDING" in modes or "LANDED" in modes) and modes.index("HOVER") == 0:
        return "hover_then_land"
    if modes[:1] == ["HOVER"]:
        return "hover"
    return "->".join(modes) or "no_change"


class Bench:
    def __init__(self, args, directory: Path):
        self.args, self.directory = args, directory
        self.link = LinkedNamespaces(tag=f"b{os.getpid() % 10000}", subnet=150 + os.getpid() % 50,
                                     impairment=Impairment())
        self.processes: list[NodeProcess] = []
        self.cut_line = 0           # the robot observer's first line after the partition began

    def spawn(self, side: str, cmd: list[str], name: str, env: dict, interactive: bool = False) -> NodeProcess:
        proc = NodeProcess(self.link.command(side, cmd), env, self.directory / f"{name}.log", name=name,
                           interactive=interactive)
        self.processes.append(proc)
        return proc

    def start(self) -> tuple[NodeProcess, NodeProcess, NodeProcess]:
        """The robot part, the operator's authorisation and the observer, then the ground station once the robot
        is landed and ready."""
        base = ros_environment(domain_id=unused_domain_id(), log_dir=str(self.directory / "ros-log"))
        robot_env, ground_env = self.link.environments(self.directory, base)
        keys = self.directory / "keys"
        ensure_keys(keys)          # a --log-dir used before keeps its pair
        specs = {spec.name: spec for spec in load_graph().resolve("sim", {"part": "robot"})}
        specs["flight_controller"].parameters.update(hover_land_timeout_s=self.args.hover_land_timeout_s,
                                                     require_authorisation=True, auth_key_dir=str(keys))
        for name in ROBOT_NODES:
            self.spawn("robot", [resolve_executable(specs[name].executable), *specs[name].ros_args()], name,
                       robot_env)
        operator = self.spawn("robot", python_cmd("tests.helpers.network_station", "robot-authorise", str(keys)),
                              "robot_authorise", robot_env, interactive=True)
        robot = self.spawn("robot", python_cmd("tests.helpers.network_station", "robot-motion"), "robot_motion",
                           robot_env)
        robot.wait_for_line(r"MODE LANDED", timeout=120)
        operator.send("present")
        operator.wait_for_line("AUTHORISED 1 ", timeout=30)
        started = time.monotonic()
        ground = self.spawn("ground", python_cmd("tests.helpers.network_station", "ground-station"),
                            "ground_station", ground_env, interactive=True)
        ground.wait_for_line("READY", timeout=150)
        print(f"[network] the ground sees the robot's flight state {time.monotonic() - started:.1f} s after it "
              f"started", flush=True)
        return robot, ground, operator

    def phase(self, name: str, robot: NodeProcess, ground: NodeProcess, trials: int | None = None) -> dict:
        trials = trials or self.args.trials
        cpu_before = {proc.name: cpu_seconds(proc) for proc in self.processes}
        before, start = self.link.tun.counters(), time.monotonic()
        phases_done = list(ground.lines).count("TRIALS_DONE")
        ground.send(f"trials {trials}")
        deadline = start + 30 * trials
        while list(ground.lines).count("TRIALS_DONE") == phases_done:
            if time.monotonic() > deadline or not ground.alive():
                raise RuntimeError(f"the ground's {name} steps did not end; its output:\n" + ground.output[-3000:])
            time.sleep(0.1)
        end, after = time.monotonic(), self.link.tun.counters()
        cpu_pct = {proc.name: round(100 * (cpu_seconds(proc) - cpu_before[proc.name]) / (end - start))
                   for proc in self.processes}
        delays, missed = command_to_motion_ms(ground, robot, start, end)
        deliveries = [float(latency) for latency, _ in lines_of(robot, "COMMAND", start, end)]
        figures = {**video_figures(ground, start, end),
                   "fps_published_on_robot": len(lines_of(robot, "SENT", start, end)) / (end - start),
                   "link_mbps": bandwidth_mbps(before, after, end - start),
                   "command_to_motion_p50_ms": percentile(delays, 50),
                   "command_to_motion_p95_ms": percentile(delays, 95), "steps_without_motion": missed,
                   "command_delivery_p50_ms": percentile(deliveries, 50),
                   "command_delivery_p95_ms": percentile(deliveries, 95),
                   "command_delivery_max_ms": max(deliveries, default=float("nan")),
                   "hovers_while_commanded": sum(mode == "HOVER" for mode, _ in lines_of(robot, "MODE", start, end)),
                   "link_counters": {d: {k: after[d][k] - before[d][k] for k in after[d]} for d in after},
                   "cpu_pct": cpu_pct, "load_average_1min": os.getloadavg()[0]}
        print(f"[network] {name} ({end - start:.0f} s): {figures}", flush=True)
        return figures

    def partition(self, robot: NodeProcess, operator: NodeProcess, lossy: Impairment) -> list[str]:
        cut = time.monotonic()
        self.link.tun.set_impairment(Impairment(loss=1.0))
        operator.send("absent")
        self.cut_line = len(robot.lines)
        time.sleep(self.args.partition_s)
        self.link.tun.set_impairment(lossy)
        time.sleep(self.args.after_s)
        changes = [(mode, float(t)) for mode, t in lines_of(robot, "MODE", cut, time.monotonic())]
        print(f"[network] partition of {self.args.partition_s:g} s: "
              + ", ".join(f"{mode} at {t - cut:.1f} s" for mode, t in changes), flush=True)
        return [mode for mode, _ in changes]

    def reauthorise(self, robot: NodeProcess, ground: NodeProcess, operator: NodeProcess) -> dict:
        """After the partition: is anything taken before a fresh authorisation, and how soon does the robot move
        after one?"""
        robot.wait_for_line(r"MODE LANDED", timeout=60, start=self.cut_line)
        flight_controller = next(proc for proc in self.processes if proc.name == "flight_controller")
        mark, waiting = len(flight_controller.lines), time.monotonic()
        ground.send("replay-auth")
        stale_refused = _waits_for(flight_controller, r"refused /auth/state .*(replayed|expired)", 10, mark)
        answers = []
        for attempt in range(TAKEOFF_TRIES):
            mark = len(ground.lines)
            ground.send(f"takeoff-once {attempt}")
            answers.append(ground.wait_for_line(rf"TAKEOFF {attempt} (\w+): (.*)", timeout=45, start=mark))
        refused = sum(a.group(1) == "refused" and "no authorised operator" in a.group(2) for a in answers)
        moved_early = lines_of(robot, "MODE", waiting, time.monotonic())
        operator.send("present")
        authorised = float(operator.wait_for_line(r"AUTHORISED 2 \d+ ([\d.]+)", timeout=10).group(1))
        mark = len(ground.lines)
        ground.send("takeoff")
        airborne = _waits_for(ground, "AIRBORNE", 120, mark)
        climbs = lines_of(robot, "CLIMBING", authorised, time.monotonic())
        steps = self.phase("after re-authorisation", robot, ground, trials=2) if airborne else None
        resumed = bool(stale_refused and refused == TAKEOFF_TRIES and not moved_early and airborne and steps
                       and steps["steps_without_motion"] == 0)
        figures = {"control_resumed_after_reauth": resumed,
                   "reauth_to_motion_ms": 1000 * (float(climbs[0][0]) - authorised) if climbs else None,
                   "stale_auth_refused": stale_refused, "takeoffs_refused_before_reauth": refused,
                   "modes_before_reauth": [mode for mode, _ in moved_early]}
        print(f"[network] after the partition: {figures}; the ground's take-offs before the fresh authorisation: "
              + "; ".join(a.group(0) for a in answers), flush=True)
        return figures

    def close(self) -> None:
        for proc in reversed(self.processes):
            proc.stop(timeout=5.0)
        self.link.close()


def run(args) -> dict:
    lossy = Impairment(delay_s=args.delay_ms / 1000, jitter_s=args.jitter_ms / 1000, loss=args.loss,
                       rate_bps=args.rate_mbps * 1e6, max_queue_s=args.queue_ms / 1000)
    with tempfile.TemporaryDirectory(prefix="mmchat-network-bench-") as directory:
        bench = Bench(args, Path(args.log_dir or directory))
        try:
            bench.link.open()
        except NetnsUnavailable as exc:
            print(f"[network] cannot run: {exc}", flush=True)
            return {}
        try:
            robot, ground, operator = bench.start()
            ground.send("takeoff")
            ground.wait_for_line("AIRBORNE", timeout=120)
            clean = bench.phase("clean", robot, ground)
            bench.link.tun.set_impairment(lossy)
            time.sleep(2.0)
            impaired = bench.phase("lossy", robot, ground)
            modes = bench.partition(robot, operator, lossy)
            reauth = bench.reauthorise(robot, ground, operator)
        finally:
            bench.close()
    multicast = sum(counters["multicast"] for figures in (clean, impaired)
                    for counters in figures["link_counters"].values())
    return {
        "video_fps_ground_clean": clean["fps"], "video_fps_ground_lossy": impaired["fps"],
        "video_fps_published_on_robot_clean": clean["fps_published_on_robot"],
        "video_fps_published_on_robot_lossy": impaired["fps_published_on_robot"],
        "video_latency_p95_ms_clean": clean["latency_p95_ms"], "video_latency_p95_ms_lossy": impaired["latency_p95_ms"],
        "video_frame_kb_lossy": impaired["frame_kb"],
        "link_bandwidth_mbps": sum(impaired["link_mbps"].values()),
        "link_bandwidth_mbps_robot_to_ground_lossy": impaired["link_mbps"]["robot_to_ground"],
        "link_bandwidth_mbps_clean": sum(clean["link_mbps"].values()),
        "command_to_motion_p95_ms_clean": clean["command_to_motion_p95_ms"],
        "command_to_motion_p95_ms_lossy": impaired["command_to_motion_p95_ms"],
        "steps_without_motion_lossy": impaired["steps_without_motion"],
        "command_delivery_p95_ms_clean": clean["command_delivery_p95_ms"],
        "command_delivery_p95_ms_lossy": impaired["command_delivery_p95_ms"],
        "command_delivery_max_ms_lossy": impaired["command_delivery_max_ms"],
        "hovers_while_commanded_lossy": impaired["hovers_while_commanded"],
        "link_multicast_packets": multicast,
        "load_average_1min": max(clean["load_average_1min"], impaired["load_average_1min"]),
        "partition_outcome": partition_outcome(modes),
        "partition_modes": modes,
        **reauth,
    }


def main(argv=None) -> int:
    os.environ.update(ros_environment())     # this process's own DDS (the domain probe) stays on loopback
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8, help="velocity steps per phase (3.5 s each)")
    parser.add_argument("--rate-mbps", type=float, default=5.0)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    parser.add_argument("--jitter-ms", type=float, default=20.0)
    parser.add_argument("--loss", type=float, default=0.05)
    parser.add_argument("--queue-ms", type=float, default=200.0, help="at the cap, longest wait before a drop")
    parser.add_argument("--log-dir", help="keep every process's output here (default: a temporary folder)")
    parser.add_argument("--partition-s", type=float, default=10.0)
    parser.add_argument("--after-s", type=float, default=5.0, help="watched after the partition ends")
    parser.add_argument("--hover-land-timeout-s", type=float, default=5.0,
                        help="the flight controller's hover_land_timeout_s (60 s by default; shorter, so a 10 s "
                             "partition shows the landing)")
    figures = run(parser.parse_args(argv))
    for key, reason in NOT_HERE.items():
        print(f"[network] {key}: null ({reason})", flush=True)
    emit({**figures, **dict.fromkeys(NOT_HERE)})
    return 0 if figures else 1


if __name__ == "__main__":
    sys.exit(main())
