#!/usr/bin/env python3
"""What one control tick costs: FlightCore.step (the flight controller's 250 Hz SCHED_FIFO thread calls it, then
sends the motor command) timed in-process over a scripted flight against the MuJoCo simulator in lockstep, without
ROS: on the ground, take-off, hover, velocity commands (operator teleop at 25 Hz), braking, a bare go-to target,
a plan (move 2 m, turn 90°, move back), landing.

Per step: wall time (µs, p50 / p95 per phase and overall) and the thread's CPU time; the CPU share of one core at
250 Hz is the mean CPU time per step × 250. update_odometry + update_attitude (the executor's work per odometry
message, not the control thread's) are timed apart. A second flight runs under cProfile, enabled inside step only,
and prints where the time goes.

    python bench/control_loop.py [--airframe x500] [--rounds 3] [--baseline REV] [--sources DIR] [--no-profile]
                                   [--node] [--node-rounds 2]

Each timed flight runs in a child process; ``--rounds`` of them (default 3) give the median. ``--baseline REV``
also flies the sources of git revision REV (git archive into a temporary directory), alternating with this tree's
flights, so the before/after ratio comes from one run on one machine state. ``--sources DIR`` measures the sources
under DIR (a checkout or such an archive) instead of this checkout's.

``--node`` also starts the real sim and flight_controller processes (ROS, loopback, a private domain), takes off,
flies a plan, and reads the control thread's CPU (the SCHED_FIFO thread, as bench/graph.py finds it) and the whole
node's from /proc: the step plus the node's own per-tick work (motor command message, publishing, pacing) and its
executor (odometry, IMU, state publishing); and the loop rate the node reports on /diagnostics. With
``--baseline`` the baseline's node flies too, alternating with this tree's (``--node-rounds`` each).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, emit, percentile  # noqa: E402
from graph import CLK_TCK, control_thread_ticks, cpu_ticks  # noqa: E402

CONTROL_HZ = 250.0
TELEOP_EVERY = 10            # velocity / position commands every 10 ticks: 25 Hz, as teleop and follow send them


class StepTimer:
    """Stands in for core.step: times each call (wall and thread CPU), filed under the current phase; with a
    profiler, profiles the call alone."""

    def __init__(self, core, profiler: cProfile.Profile | None = None):
        self.step = core.step
        core.step = self
        self.profiler = profiler
        self.phase = "ground"
        self.wall_us: dict[str, list[float]] = defaultdict(list)
        self.cpu_us: list[float] = []

    def __call__(self, now: float):
        profiler = self.profiler
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        if profiler is None:
            result = self.step(now)
        else:
            result = profiler.runcall(self.step, now)
        t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        self.wall_us[self.phase].append((t1 - t0) / 1000.0)
        self.cpu_us.append((c1 - c0) / 1000.0)
        return result


class InputTimer:
    """Times update_odometry + update_attitude, the per-message work of the node's executor."""

    def __init__(self, core):
        self.us: list[float] = []
        for name in ("update_odometry", "update_attitude"):
            setattr(core, name, self._timed(getattr(core, name)))

    def _timed(self, method):
        def timed(*args, **kwargs):
            t0 = time.perf_counter_ns()
            result = method(*args, **kwargs)
            self.us.append((time.perf_counter_ns() - t0) / 1000.0)
            return result
        return timed


def fly(airframe: str, profiler: cProfile.Profile | None = None) -> tuple[StepTimer, InputTimer]:
    # Imported here: --sources must come first on the path.
    from mmchat_ros.backends.sim.lockstep import Lockstep
    from mmchat_ros.core.flight.plan import ActionType, PlanStep

    loop = Lockstep(airframe, CONTROL_HZ)
    core = loop.core
    steps, inputs = StepTimer(core, profiler), InputTimer(core)

    def phase(name: str, seconds: float, command=None, until=None) -> None:
        steps.phase = name
        ticks = iter(range(10 ** 9))

        def each(_state, _status):
            if command is not None and next(ticks) % TELEOP_EVERY == 0:
                command()
        loop.run(seconds, each=each, until=until)

    try:
        phase("ground", 1.0)
        assert core.takeoff(loop.now, 1.5), "take-off refused"
        phase("takeoff", 30.0, until=lambda status: status.mode == "HOVER")
        assert core.mode.value == "HOVER", f"take-off did not finish: {core.mode.value}"
        phase("hover", 3.0)
        phase("velocity", 4.0, lambda: core.submit_velocity("operator", 0.8, 0.4, 0.2, 0.3, loop.now))
        phase("brake", 2.0)
        target = loop.core.state.position + (3.0, -2.0, 0.5)
        phase("goto", 6.0, lambda: core.submit_position("operator", *target, 0.0, loop.now))
        plan = [PlanStep(ActionType.MOVE_BY, x=2.0), PlanStep(ActionType.ROTATE, yaw_deg=90.0),
                PlanStep(ActionType.MOVE_BY, x=-2.0)]
        phase("hover", 2.0)
        assert core.start_plan(plan, loop.now), "plan refused"
        phase("plan", 40.0, until=lambda _status: not core.plan.running)
        core.land(loop.now)
        phase("landing", 30.0, until=lambda status: status.mode == "LANDED")
        assert core.mode.value == "LANDED", f"landing did not finish: {core.mode.value}"
    finally:
        loop.close()
    return steps, inputs


def figures(steps: StepTimer, inputs: InputTimer) -> dict:
    every = [us for values in steps.wall_us.values() for us in values]
    cpu_mean = sum(steps.cpu_us) / len(steps.cpu_us)
    return {
        "ticks": len(every),
        "step_us_p50": percentile(every, 50), "step_us_p95": percentile(every, 95),
        "step_us_mean": sum(every) / len(every), "step_cpu_us_p50": percentile(steps.cpu_us, 50),
        "step_cpu_us_p95": percentile(steps.cpu_us, 95), "step_cpu_us_mean": cpu_mean,
        "cpu_pct_at_250hz": cpu_mean * 1e-6 * CONTROL_HZ * 100.0,
        "inputs_us_p50": percentile(inputs.us, 50),
        "phases": {name: {"ticks": len(values), "p50_us": percentile(values, 50), "p95_us": percentile(values, 95)}
                   for name, values in steps.wall_us.items()},
    }


def print_figures(label: str, result: dict) -> None:
    print(f"{label}: step wall p50 {result['step_us_p50']:.1f} µs, p95 {result['step_us_p95']:.1f} µs, mean "
          f"{result['step_us_mean']:.1f} µs; CPU p50 {result['step_cpu_us_p50']:.1f} µs, p95 "
          f"{result['step_cpu_us_p95']:.1f} µs, mean {result['step_cpu_us_mean']:.1f} µs over {result['ticks']} ticks "
          f"→ {result['cpu_pct_at_250hz']:.2f} % of one core at 250 Hz; update_odometry/attitude p50 "
          f"{result['inputs_us_p50']:.1f} µs per call", flush=True)
    for name, phase in result["phases"].items():
        print(f"    {name:9s} {phase['ticks']:6d} ticks  p50 {phase['p50_us']:7.1f} µs  p95 {phase['p95_us']:7.1f} µs",
              flush=True)


def measure(airframe: str, sources: str | None) -> dict:
    """One timed flight in a child process (a fresh interpreter for every tree measured)."""
    command = [sys.executable, __file__, "--airframe", airframe, "--figures-only"]
    child = subprocess.run(command + (["--sources", sources] if sources else []), check=True, capture_output=True,
                           text=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def median_round(rounds: list[dict]) -> dict:
    return sorted(rounds, key=lambda r: r["cpu_pct_at_250hz"])[len(rounds) // 2]


def loop_rate(diagnostics: list, since: float) -> float:
    """Median of the loop rates the node reported on /diagnostics after ``since`` (each over its last 1000 ticks)."""
    rates = [float(value.value) for at, msg in list(diagnostics) if at >= since for status in msg.status
             for value in status.values if value.key == "loop_rate_hz"]
    return percentile(rates, 50)


def node_cpu(airframe: str, sources: str | None) -> dict:
    """Sim + flight_controller as processes: CPU of the control thread and of the whole node while a plan flies,
    and the loop rate the node reports."""
    from diagnostic_msgs.msg import DiagnosticArray

    from mmchat_ros.core.launch_graph import load_graph
    from mmchat_ros.core.rosenv import ros_environment
    from mmchat_ros.msg import PlanAction
    from mmchat_ros.tools.flight_client import FlightClient, action
    from mmchat_ros.tools.launcher import Launcher
    from mmchat_ros.tools.ros_client import RosClient

    domain = 210 - os.getpid() % 20
    env = ros_environment(domain_id=domain)
    if sources:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.join(sources, "src"), env.get("PYTHONPATH")]))
    specs = [s for s in load_graph().resolve("sim", {"airframe": airframe}) if s.name in ("sim", "flight_controller")]
    launcher = Launcher(specs, log_dir=tempfile.mkdtemp(prefix="bench-control-loop-"), env=env,
                        out=open(os.devnull, "w"))
    launcher.start()
    ros = RosClient(domain, "bench_control_loop")
    try:
        flight = FlightClient(ros)
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        # The client's own /motor_command subscription would cost the node one more reader to publish to at 250 Hz.
        for subscription in list(ros.node.subscriptions):
            if subscription.topic_name == "/motor_command":
                ros.node.destroy_subscription(subscription)
        flight.take_off_and_settle()
        pid = next(n.process.pid for n in launcher.nodes if n.spec.name == "flight_controller")
        thread_before, process_before, t0 = control_thread_ticks(pid), cpu_ticks(pid), time.monotonic()
        flight.execute([action(PlanAction.MOVE_BY, x=2.0), action(PlanAction.ROTATE, yaw_deg=90.0),
                        action(PlanAction.MOVE_BY, x=-2.0)])
        thread_after, process_after, wall = control_thread_ticks(pid), cpu_ticks(pid), time.monotonic() - t0
        rate_hz = loop_rate(diagnostics, t0 + 4.0)     # reports from 1000 ticks into the plan on
        flight.land_and_wait()
    finally:
        ros.close()
        launcher.stop()
    if thread_before is None or thread_after is None:
        raise SystemExit("no SCHED_FIFO control thread in the flight controller (realtime priority refused?)")
    return {"node_control_thread_cpu_pct": 100.0 * (thread_after - thread_before) / CLK_TCK / wall,
            "node_process_cpu_pct": 100.0 * (process_after - process_before) / CLK_TCK / wall, "node_wall_s": wall,
            "node_loop_rate_hz": rate_hz}


def print_node(label: str, node: dict) -> None:
    print(f"{label}: flight_controller node while a plan flies ({node['node_wall_s']:.0f} s): control thread "
          f"{node['node_control_thread_cpu_pct']:.1f} % of one core, whole node {node['node_process_cpu_pct']:.1f} "
          f"%, loop {node['node_loop_rate_hz']:.0f} Hz", flush=True)


def extract(revision: str, tree: str) -> None:
    """The sources of a git revision under ``tree`` (git archive)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "src", "config", "sim", "package.xml"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--airframe", default="x500")
    parser.add_argument("--baseline", metavar="REV", help="also fly the sources of this git revision")
    parser.add_argument("--rounds", type=int, default=3, help="timed flights per tree, alternated (median counts)")
    parser.add_argument("--sources", metavar="DIR", help="measure the sources under DIR/src")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled flight")
    parser.add_argument("--node", action="store_true", help="also measure the flight_controller node's CPU")
    parser.add_argument("--node-rounds", type=int, default=2,
                        help="node flights per tree, alternated with the baseline's (median counts)")
    parser.add_argument("--profile-lines", type=int, default=25)
    parser.add_argument("--figures-only", action="store_true", help=argparse.SUPPRESS)   # a timed flight's child
    args = parser.parse_args()

    if args.sources:
        sys.path.insert(0, os.path.join(os.path.abspath(args.sources), "src"))
    if args.figures_only:
        print(json.dumps(figures(*fly(args.airframe))))
        return
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="control-loop-baseline-") as tree:
        if args.baseline:
            extract(args.baseline, tree)
        # Alternated, so that a change in the machine's load falls on both alike; the median round of each counts.
        before, now = [], []
        for _ in range(args.rounds):
            if args.baseline:
                before.append(measure(args.airframe, tree))
            now.append(measure(args.airframe, args.sources))
    if args.baseline:
        print(f"baseline ({args.baseline}) CPU per round: "
              + ", ".join(f"{r['cpu_pct_at_250hz']:.2f} %" for r in before))
        print_figures(f"baseline ({args.baseline}), median round", median_round(before))
        out.update({f"baseline_{key}": median_round(before)[key]
                    for key in ("step_us_p50", "step_us_p95", "step_cpu_us_p50", "cpu_pct_at_250hz")})
    print("this tree CPU per round: " + ", ".join(f"{r['cpu_pct_at_250hz']:.2f} %" for r in now))
    print_figures("this tree, median round", median_round(now))
    if not args.no_profile:
        profiler = cProfile.Profile()
        fly(args.airframe, profiler)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(args.profile_lines)
        print("profile of FlightCore.step (own time first):\n" + text.getvalue(), flush=True)
    out.update({key: median_round(now)[key] for key in (
        "step_us_p50", "step_us_p95", "step_us_mean", "step_cpu_us_p50", "step_cpu_us_p95", "step_cpu_us_mean",
        "cpu_pct_at_250hz", "inputs_us_p50")})
    if args.node:
        # The same alternation as the in-process flights; the baseline's node runs from its archived sources.
        node_before, node_now = [], []
        with tempfile.TemporaryDirectory(prefix="control-loop-baseline-") as tree:
            if args.baseline:
                extract(args.baseline, tree)
            for _ in range(args.node_rounds):
                if args.baseline:
                    node_before.append(node_cpu(args.airframe, tree))
                    print_node(f"baseline ({args.baseline})", node_before[-1])
                node_now.append(node_cpu(args.airframe, args.sources))
                print_node("this tree", node_now[-1])
        median_node = lambda rounds: sorted(rounds, key=lambda r: r["node_control_thread_cpu_pct"])[  # noqa: E731
            len(rounds) // 2]
        for prefix, rounds in (("baseline_", node_before), ("", node_now)):
            if rounds:
                out.update({prefix + key: median_node(rounds)[key] for key in (
                    "node_control_thread_cpu_pct", "node_process_cpu_pct", "node_loop_rate_hz")})
    if args.baseline:
        # CPU time: the wall-clock figures also count time the thread spent preempted on a busy machine.
        out["speedup_cpu"] = out["baseline_cpu_pct_at_250hz"] / out["cpu_pct_at_250hz"]
    emit(out)


if __name__ == "__main__":
    main()
