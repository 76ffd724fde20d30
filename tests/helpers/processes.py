"""Real node processes for tests: started in their own session, output captured, always cleaned up."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


_STARTED: list["NodeProcess"] = []


def stop_all_started() -> list[str]:
    """Safety net run at the end of the session: stop every process a test started and left running (a fixture
    that failed half-way, a crashed test). Returns the names of those it had to stop."""
    leaked = [proc for proc in _STARTED if proc.alive()]
    for proc in leaked:
        proc.stop(timeout=3.0)
    return [proc.name for proc in leaked]


class NodeProcess:
    """One child process (a node, the launcher, ...) whose output is collected and searchable."""

    def __init__(self, cmd: list[str], env: dict, log_path: Path, name: str | None = None, interactive: bool = False):
        """``interactive``: the process reads lines that ``send`` writes to its standard input."""
        self.name = name or Path(cmd[0]).name
        self.cmd = cmd
        self.log_path = log_path
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._log = open(log_path, "w", buffering=1)
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE if interactive else subprocess.DEVNULL,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        _STARTED.append(self)

    def _pump(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self._log.write(line + "\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = 30.0, start: int = 0) -> re.Match:
        """Block until a line matches (regex search), looking from line ``start`` on (``len(lines)`` before an
        action: a line it causes, not an earlier one alike); fail with the output so far on timeout or exit."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = start
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.name}: no line matching {pattern!r} in {timeout} s; output:\n"
                                       + "\n".join(self.lines[-60:]))
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) before printing {pattern!r}; "
                                       "output:\n" + "\n".join(self.lines[-60:]))
                self._cond.wait(min(remaining, 0.2))

    def send(self, line: str) -> None:
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, then SIGTERM, then SIGKILL the whole process group. Returns the exit status."""
        for sig, grace in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            if self.proc.poll() is not None:
                break
            self.signal(sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        self.signal(signal.SIGKILL)  # anything left in the group
        self._reader.join(timeout=2.0)
        self._log.close()
        return self.proc.returncode


def python_cmd(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def cpu_percent(pid: int, seconds: float) -> float:
    """A process's CPU use over the next ``seconds`` (user + system time from /proc/<pid>/stat), % of one core."""
    def cpu_s() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime, stime (fields 14, 15)
    start, t0 = cpu_s(), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_s() - start) / (time.monotonic() - t0)
