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
  two drones  the single-vehicle processes stopped and the link clean again: two robot parts in the robot
              namespace (sim + flight_controller, vehicle_name:=drone1 / drone2, 3 m apart, no camera,
              use_sim_time, no authorisation: the signed /auth/state is the root namespace's), one planner on the
              ground with vehicles:=[drone1, drone2], and a ground client (this script, --two-drones-station)
              that types TWO_DRONE_COMMANDS to it one at a time, each addressed to one drone, and watches both
              drones' flight state across the link until the addressed one is done

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
  control_resumed_after_reauth  after the link returned: the stale authorisation refused, no take-off accepted
                                (refused, or unanswered across the lossy link), the robot still on the ground;
                                after the fresh authorisation airborne and moving on the ground's velocity commands
  reauth_to_motion_ms           the fresh authorisation signed → the robot's odometry climbing at 0.1 m/s (the
                                ground's take-off across the lossy link, the spool-up and the climb's start)
  drones_flown                  drones that flew (rose above 1 m) in the two-drone phase
  cross_talk                    (command, other drone) pairs where the other drone moved more than STILL_M,
                                changed its flight mode or ran a plan while the command was carried out
  two_drone_commands_carried_out  commands whose addressed drone moved more than STILL_M (of
                                len(TWO_DRONE_COMMANDS))

    python bench/network.py [--trials 8] [--partition-s 10] [--two-drones-only]

The last line is one JSON object; a figure that could not be measured is null and the reason is printed.
"""
from __future__ import annotations

import argparse
import json
import math
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
from mmchat_ros.core.rosenv import network_environment, network_profile, ros_environment  # noqa: E402
from mmchat_ros.tools.launcher import resolve_executable  # noqa: E402
from tests.helpers.domains import unused_domain_id  # noqa: E402
from tests.helpers.netns import LinkedNamespaces, NetnsUnavailable  # noqa: E402
from tests.helpers.network_station import TRIAL_MOVE_S  # noqa: E402
from tests.helpers.processes import NodeProcess, python_cmd  # noqa: E402

ROBOT_NODES = ("sim", "camera", "image_compressor", "flight_controller")
TAKEOFF_TRIES = 4          # after the partition, before the fresh authorisation
TWO_DRONE_STARTS = {"drone1": (0.0, 0.0, 0.0), "drone2": (3.0, 0.0, 0.0)}
TWO_DRONE_COMMANDS = (("drone1", "drone one, take off"), ("drone2", "drone two, take off"),
                      ("drone2", "drone two, go up one metre"), ("drone1", "drone one, fly left one metre"),
                      ("drone1", "drone one, land"), ("drone2", "drone two, land"))
STILL_M = 0.15             # a lone hover in the sim stays within this (tests/sim/test_two_vehicles.py)
COMMAND_TIMEOUT_S = 60.0   # a command not carried out by then counts as not carried out


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
        # An unanswered call (its request or reply lost on the lossy link, or the reply sent before the server had
        # matched a fresh client) took nothing either; an accepted one, or the robot leaving LANDED, would have.
        accepted = sum(a.group(1) == "accepted" for a in answers)
        moved_early = lines_of(robot, "MODE", waiting, time.monotonic())
        operator.send("present")
        authorised = float(operator.wait_for_line(r"AUTHORISED 2 \d+ ([\d.]+)", timeout=10).group(1))
        mark = len(ground.lines)
        ground.send("takeoff")
        airborne = _waits_for(ground, "AIRBORNE", 120, mark)
        climbs = lines_of(robot, "CLIMBING", authorised, time.monotonic())
        steps = self.phase("after re-authorisation", robot, ground, trials=2) if airborne else None
        resumed = bool(stale_refused and refused > 0 and accepted == 0 and not moved_early and airborne and steps
                       and steps["steps_without_motion"] == 0)
        figures = {"control_resumed_after_reauth": resumed,
                   "reauth_to_motion_ms": 1000 * (float(climbs[0][0]) - authorised) if climbs else None,
                   "stale_auth_refused": stale_refused, "takeoffs_refused_before_reauth": refused,
                   "takeoffs_unanswered_before_reauth": len(answers) - refused - accepted,
                   "modes_before_reauth": [mode for mode, _ in moved_early]}
        print(f"[network] after the partition: {figures}; the ground's take-offs before the fresh authorisation: "
              + "; ".join(a.group(0) for a in answers), flush=True)
        return figures

    def two_drones(self) -> dict:
        """Two namespaced robot parts, one ground planner addressing them by name; the ground station's counts."""
        self.stop_processes()
        self.link.tun.set_impairment(Impairment())
        base = ros_environment(domain_id=unused_domain_id(), log_dir=str(self.directory / "ros-log-two-drones"))
        robot_env, _ = self.link.environments(self.directory, base)
        # two ground processes this time (planner and station): each discovers the other at its own address too
        ground_profile = self.directory / "fastdds_ground_two_drones.xml"
        ground_profile.write_text(network_profile([self.link.ground_address],
                                                  [self.link.robot_address, self.link.ground_address],
                                                  shared_memory=False))
        ground_env = network_environment(base, str(ground_profile))
        graph, robot_parts = load_graph(), []
        for vehicle, start in TWO_DRONE_STARTS.items():
            # use_sim_time: each controller steps on its own simulator's odometry, so a simulator starved on a
            # busy machine slows its drone down rather than leaving its controller on stale odometry
            specs = {spec.name: spec for spec in graph.resolve(
                "sim", {"part": "robot", "vehicle_name": vehicle, "start_position": str(list(start)),
                        "use_sim_time": "true"})}
            specs["sim"].parameters["camera_enabled"] = False
            specs["flight_controller"].parameters["require_authorisation"] = False
            for name in ("sim", "flight_controller"):
                robot_parts.append(self.spawn("robot", [resolve_executable(specs[name].executable),
                                                        *specs[name].ros_args()], f"{vehicle}_{name}", robot_env))
        for proc in robot_parts:
            proc.wait_for_line("simulator ready|flight controller ready", timeout=120)
        planner = self.spawn("ground", python_cmd(
            "mmchat_ros.nodes.planner", "--ros-args", "-p", "llm_backend:=none", "-p", "intent_classifier:=false",
            "-p", "require_authorisation:=false", "-p", f"vehicles:=[{','.join(TWO_DRONE_STARTS)}]"),
            "two_drone_planner", ground_env)
        for vehicle in TWO_DRONE_STARTS:   # the planner has each drone's envelope, so its state crossed the link
            planner.wait_for_line(f"checking plans against the flight controller's envelope for {vehicle}",
                                  timeout=120)
        station = self.spawn("ground", [sys.executable, str(Path(__file__).resolve()), "--two-drones-station"],
                             "two_drone_station", ground_env)
        figures = json.loads(station.wait_for_line(r"TWO_DRONES (\{.*\})",
                                                   timeout=60 + COMMAND_TIMEOUT_S * len(TWO_DRONE_COMMANDS)).group(1))
        figures["load_average_1min"] = os.getloadavg()[0]
        print(f"[network] two drones: {figures}", flush=True)
        return figures

    def stop_processes(self) -> None:
        for proc in reversed(self.processes):
            proc.stop(timeout=5.0)
        self.processes.clear()

    def close(self) -> None:
        self.stop_processes()
        self.link.close()


def two_drone_station() -> int:
    """The ground client of the two-drone phase (run in the ground namespace): types each of TWO_DRONE_COMMANDS to
    the planner, waits until the addressed drone is done (hovering or landed, at rest, no plan running), and
    counts what the other drone did meanwhile. Prints "TWO_DRONES <json>"."""
    from mmchat_ros.msg import FlightState
    from mmchat_ros.nodes.common import STATE_QOS
    from mmchat_ros.srv import SubmitCommand
    from mmchat_ros.tools.ros_client import RosClient
    ros = RosClient(int(os.environ.get("ROS_DOMAIN_ID", "0")), "two_drone_station")
    states = {vehicle: ros.collect(FlightState, f"/{vehicle}/flight/state", STATE_QOS) for vehicle in TWO_DRONE_STARTS}
    ros.wait_for(lambda: all(states.values()), 60, "both drones' flight state")

    def since(vehicle: str, t0: float) -> list:
        return [state for at, state in list(states[vehicle]) if at >= t0]

    def position(state) -> tuple[float, float, float]:
        p = state.pose.position
        return p.x, p.y, p.z

    def done(vehicle: str, t0: float) -> bool:
        latest = states[vehicle][-1][1]
        v = latest.velocity.linear
        return (time.monotonic() - t0 > 2.0 and latest.mode in ("HOVER", "LANDED") and latest.active_source != "plan"
                and math.sqrt(v.x ** 2 + v.y ** 2 + v.z ** 2) < 0.05)

    cross_talk, carried_out, log = 0, 0, []
    for vehicle, text in TWO_DRONE_COMMANDS:
        before = {v: states[v][-1][1] for v in TWO_DRONE_STARTS}
        t0 = time.monotonic()
        reply = ros.call(SubmitCommand, "/submit_command", SubmitCommand.Request(text=text), timeout=30).reply
        deadline = t0 + COMMAND_TIMEOUT_S
        while not done(vehicle, t0) and time.monotonic() < deadline:
            time.sleep(0.1)
        moved = max(math.dist(position(before[vehicle]), position(s)) for s in since(vehicle, t0))
        carried_out += moved > STILL_M
        entry = {"command": text, "reply": reply, "seconds": round(time.monotonic() - t0, 1),
                 "addressed_moved_m": round(moved, 3)}
        for other in TWO_DRONE_STARTS:
            if other == vehicle:
                continue
            seen = since(other, t0)
            drift = max(math.dist(position(before[other]), position(s)) for s in seen)
            caused = (drift > STILL_M or any(s.mode != before[other].mode for s in seen)
                      or any(s.active_source == "plan" for s in seen))
            cross_talk += caused
            entry[f"{other}_moved_m"] = round(drift, 3)
        log.append(entry)
        print(f"[two drones] {entry}", flush=True)
    flown = sum(any(position(s)[2] > 1.0 for _, s in list(states[v])) for v in TWO_DRONE_STARTS)
    print("TWO_DRONES " + json.dumps({"drones_flown": flown, "cross_talk": cross_talk,
                                      "two_drone_commands_carried_out": carried_out, "two_drone_commands": log}),
          flush=True)
    ros.close()
    return 0


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
            if args.two_drones_only:
                two_drones = bench.two_drones()
                return {key: two_drones[key] for key in ("drones_flown", "cross_talk",
                                                         "two_drone_commands_carried_out", "load_average_1min")}
            robot, ground, operator = bench.start()
            ground.send("takeoff")
            ground.wait_for_line("AIRBORNE", timeout=120)
            clean = bench.phase("clean", robot, ground)
            bench.link.tun.set_impairment(lossy)
            time.sleep(2.0)
            impaired = bench.phase("lossy", robot, ground)
            modes = bench.partition(robot, operator, lossy)
            reauth = bench.reauthorise(robot, ground, operator)
            two_drones = bench.two_drones()
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
        "drones_flown": two_drones["drones_flown"], "cross_talk": two_drones["cross_talk"],
        "two_drone_commands_carried_out": two_drones["two_drone_commands_carried_out"],
    }


def main(argv=None) -> int:
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
    parser.add_argument("--two-drones-only", action="store_true",
                        help="run the two-drone phase alone (the single-vehicle figures are left out)")
    parser.add_argument("--two-drones-station", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.two_drones_station:      # in the ground namespace, with the DDS environment the bench gave it
        return two_drone_station()
    os.environ.update(ros_environment())     # this process's own DDS (the domain probe) stays on loopback
    figures = run(args)
    emit(figures)
    return 0 if figures else 1


if __name__ == "__main__":
    sys.exit(main())
