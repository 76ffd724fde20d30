"""A node's niceness holds against the other nodes (nodes/scheduling.py): with autogroup scheduling the CPU is shared
between sessions first, so a node leading its own session (as the launcher starts it) sets its autogroup's niceness
as well as its threads'; one in a shared session (a terminal, ``ros2 launch``) leaves the session's alone."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="kernel without autogroups")

PROBE = """
import os, threading
from mmchat_ros.nodes.scheduling import set_process_niceness
print(set_process_niceness(7))
later = threading.Thread(target=lambda: print('thread', os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
later.start(); later.join()
print('main', os.getpriority(os.PRIO_PROCESS, 0))
print('autogroup:', open('/proc/self/autogroup').read().strip())
"""


def run_probe(own_session: bool) -> str:
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True,
                          start_new_session=own_session).stdout


def test_a_process_leading_its_own_session_sets_its_threads_and_its_autogroup():
    out = run_probe(own_session=True)
    assert "threads and session (autogroup) at niceness 7" in out
    assert "main 7" in out and "thread 7" in out            # a thread started later inherits it
    assert out.strip().endswith("nice 7")


def test_a_process_in_a_shared_session_sets_its_threads_only():
    before = Path("/proc/self/autogroup").read_text().strip()
    out = run_probe(own_session=False)
    assert "threads at niceness 7" in out and "main 7" in out
    # The shared session's autogroup untouched (it reads empty where the session has none: the init session's
    # processes, as under some CI runners, are in the root task group, not in an autogroup).
    assert out.strip().splitlines()[-1] == f"autogroup: {before}".strip()
