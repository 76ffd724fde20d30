"""`mmchat launch`: start every node of a mode as its own process, like `ros2 launch`, for machines without ros2cli.

Each node's output is prefixed with its name and copied to <log_dir>/<node>.log. Ctrl-C / SIGTERM stops all nodes
(SIGINT, then SIGTERM, then SIGKILL to each process group, so no grandchild survives). A node that dies is reported
with its exit status and respawned when the graph says so.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from mmchat_ros.core.launch_graph import NodeSpec
from mmchat_ros.core.rosenv import ros_environment

STOP_GRACE_S = 5.0
TERM_GRACE_S = 3.0


def resolve_executable(name: str) -> str:
    """A console script of this package: beside the running Python (venv bin/), lib/mmchat_ros/, or on PATH."""
    candidates = [Path(sys.executable).parent / name, Path(sys.prefix) / "lib" / "mmchat_ros" / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"executable '{name}' not found (looked in {candidates[0].parent}, "
                            f"{candidates[1].parent} and PATH); run ./setup.sh to install the console scripts")


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class ManagedNode:
    spec: NodeSpec
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    respawns: int = 0
    reader: threading.Thread | None = None
    log_file: TextIO | None = None
    next_start: float | None = None
    history: list[str] = field(default_factory=list)


class Launcher:
    def __init__(self, specs: list[NodeSpec], *, log_dir: str | Path | None = None, env: dict | None = None,
                 out: TextIO = sys.stdout, max_respawns: int = 5):
        self.specs = specs
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="mmchat-launch-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = ros_environment(env, log_dir=str(self.log_dir / "ros"))
        self.out = out
        self.out_lock = threading.Lock()
        self.max_respawns = max_respawns
        self.nodes = [ManagedNode(spec) for spec in specs]
        self.stopping = threading.Event()

    def say(self, line: str) -> None:
        with self.out_lock:
            self.out.write(line + "\n")
            self.out.flush()

    def _pump(self, node: ManagedNode) -> None:
        proc = node.process
        assert proc and proc.stdout
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self.say(f"[{node.spec.name}] {line}")
            if node.log_file:
                node.log_file.write(line + "\n")
                node.log_file.flush()

    def start_node(self, node: ManagedNode) -> None:
        cmd = [resolve_executable(node.spec.executable), *node.spec.ros_args()]
        node.log_file = open(self.log_dir / f"{node.spec.name}.log", "a", buffering=1)
        node.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=self.env, start_new_session=True)
        node.started_at = time.monotonic()
        node.next_start = None
        node.reader = threading.Thread(target=self._pump, args=(node,), daemon=True)
        node.reader.start()
        self.say(f"[launch] started '{node.spec.name}' (pid {node.process.pid}): {' '.join(cmd)}")

    def start(self) -> None:
        self.say(f"[launch] logs in {self.log_dir}; DDS discovery "
                 f"ROS_AUTOMATIC_DISCOVERY_RANGE={self.env['ROS_AUTOMATIC_DISCOVERY_RANGE']}, "
                 f"ROS_DOMAIN_ID={self.env.get('ROS_DOMAIN_ID', '0')}, "
                 f"profile {self.env.get('FASTRTPS_DEFAULT_PROFILES_FILE', '(none)')}")
        for node in self.nodes:
            self.start_node(node)

    def poll(self) -> int:
        """Check every node once; report deaths, schedule and perform respawns. Returns how many are alive."""
        alive = 0
        now = time.monotonic()
        for node in self.nodes:
            proc = node.process
            if proc is not None and proc.poll() is None:
                alive += 1
                continue
            if proc is not None and node.next_start is None:
                if node.reader:
                    node.reader.join(timeout=1.0)
                code = proc.returncode
                self.say(f"[launch] node '{node.spec.name}' died: {describe_exit(code)} after "
                         f"{now - node.started_at:.1f} s (log: {self.log_dir / (node.spec.name + '.log')})")
                node.history.append(describe_exit(code))
                if node.spec.respawn and node.respawns < self.max_respawns and not self.stopping.is_set():
                    node.next_start = now + node.spec.respawn_delay_s
                    self.say(f"[launch] respawning '{node.spec.name}' in {node.spec.respawn_delay_s:.1f} s "
                             f"({node.respawns + 1}/{self.max_respawns})")
                else:
                    node.next_start = float("inf")
            if node.next_start is not None and node.next_start <= now and not self.stopping.is_set():
                node.respawns += 1
                self.start_node(node)
                alive += 1
        return alive

    def stop(self) -> None:
        """SIGINT every node's process group, then escalate; returns once all are gone."""
        self.stopping.set()
        running = [n for n in self.nodes if n.process and n.process.poll() is None]
        stopped = list(running)
        for sig, grace in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, 2.0)):
            for node in running:
                try:
                    os.killpg(node.process.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            for node in running:
                try:
                    node.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            running = [n for n in running if n.process.poll() is None]
            if not running:
                break
            self.say(f"[launch] {', '.join(n.spec.name for n in running)} still running after {sig.name}")
        for node in stopped:
            self.say(f"[launch] node '{node.spec.name}' stopped: {describe_exit(node.process.returncode)}")
        for node in self.nodes:
            # Grandchildren of a node live in its session; make sure none survives the node.
            if node.process:
                try:
                    os.killpg(node.process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if node.reader:
                node.reader.join(timeout=1.0)
            if node.log_file:
                node.log_file.close()
        self.say("[launch] all nodes stopped")

    def run(self, duration_s: float | None = None) -> int:
        """Run until SIGINT/SIGTERM (or duration_s). Exit status 0 on a requested stop, 1 if every node died."""
        stop_requested = threading.Event()

        def on_signal(signum, _frame):
            self.say(f"[launch] {signal.Signals(signum).name} received, stopping nodes")
            stop_requested.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            deadline = time.monotonic() + duration_s if duration_s else None
            while not stop_requested.is_set():
                if self.poll() == 0 and all(n.next_start == float("inf") for n in self.nodes):
                    self.say("[launch] every node has exited")
                    self.stop()
                    return 1
                if deadline and time.monotonic() >= deadline:
                    break
                stop_requested.wait(0.2)
            self.stop()
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
