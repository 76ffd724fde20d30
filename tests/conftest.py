"""Shared fixtures: every test talks DDS on loopback only, in its own ROS domain, with logs in a temp dir."""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Native load order. torch segfaulted when first imported late in a session, after PyAV, Piper and the ROS type
# supports had loaded their native libraries. triton (torch imports it lazily, e.g. via torchvision's models) bundles
# its own LLVM and segfaults on load once Mesa's LLVM is in the process, which the in-process vehicle emulators bring
# in by rendering the simulator's camera with EGL (reproduced: render with MuJoCo/EGL, then `import triton`).
# Loading both first gives them the order they expect.
import torch  # noqa: E402,F401

try:
    import triton  # noqa: E402,F401
except ImportError:     # CPU-only torch builds come without it
    pass

from mmchat_ros.core.rosenv import ros_environment  # noqa: E402

# Before anything in the test process initialises DDS.
os.environ.update({k: v for k, v in ros_environment().items()
                   if k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY", "FASTRTPS_DEFAULT_PROFILES_FILE",
                            "RMW_IMPLEMENTATION")})
os.environ.setdefault("ROS_LOG_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / f"mmchat-test-ros-log-{os.getpid()}"))

# Domain ids 1..100, spread by pid so parallel pytest runs on one machine do not share a domain.
_DOMAIN_IDS = itertools.cycle(range(1 + os.getpid() % 50, 101))


@pytest.fixture
def domain_id() -> int:
    return next(_DOMAIN_IDS)


@pytest.fixture
def ros_env(domain_id, tmp_path) -> dict:
    """Environment for child processes of this test."""
    return ros_environment(domain_id=domain_id, log_dir=str(tmp_path / "ros-log"))


@pytest.fixture
def spawn(ros_env, tmp_path):
    """spawn(cmd, name=None, env=None, interactive=False) -> NodeProcess; every process is stopped when the test
    ends, pass or fail."""
    from tests.helpers.processes import NodeProcess
    started: list[NodeProcess] = []

    def _spawn(cmd, name=None, env=None, interactive=False):
        name = name or Path(cmd[0]).name
        proc = NodeProcess(cmd, env or ros_env, tmp_path / f"{name}-{len(started)}.log", name=name,
                           interactive=interactive)
        started.append(proc)
        return proc

    yield _spawn
    for proc in reversed(started):
        proc.stop()


@pytest.fixture
def ros(domain_id):
    """An in-test rclpy participant on the test's domain."""
    from mmchat_ros.tools.ros_client import RosClient
    client = RosClient(domain_id)
    yield client
    client.close()


def pytest_sessionfinish(session, exitstatus):
    """No orphan processes after a run, whatever failed: stop anything a test left behind, and say so."""
    from tests.helpers.processes import stop_all_started
    leaked = stop_all_started()
    if leaked:
        print(f"\n[conftest] stopped {len(leaked)} process(es) a test left running: {', '.join(leaked)}")
