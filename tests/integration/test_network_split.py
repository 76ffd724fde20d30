"""The robot / ground split over a real network stack (issue 17, item 2): the robot part (simulator + flight
controller, from config/graph.yaml's part:=robot) in one network namespace, a ground station in another, joined by
a veth pair on link-local addresses; DDS on each side bound to its veth address with unicast discovery
(core.rosenv.network_profile), so nothing multicasts and nothing leaves the machine.

Shown: the ground takes off and lands the robot across the link; when the link is cut while the ground streams
velocity commands, the robot holds by itself (command watchdog → HOVER) and lands after hover_land_timeout_s.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from mmchat_ros.core.launch_graph import load_graph
from mmchat_ros.tools.launcher import resolve_executable
from tests.helpers.netns import namespaces_for_test
from tests.helpers.processes import python_cmd

pytestmark = pytest.mark.slow

HOVER_LAND_TIMEOUT_S = 4.0
ROBOT_NODES = ("sim", "flight_controller")


@pytest.fixture
def link():
    with namespaces_for_test(str(os.getpid() % 100000), 100 + os.getpid() % 100) as namespaces:
        yield namespaces


@pytest.fixture
def split(link, ros_env, tmp_path, spawn):
    """The robot part running in its namespace, a robot-side mode observer, and the ground's environment."""
    robot_env, ground_env = link.environments(tmp_path, ros_env)
    specs = {spec.name: spec for spec in load_graph().resolve("sim", {"part": "robot"})}
    assert set(ROBOT_NODES) <= set(specs), "the simulator and flight controller belong to the robot part"
    specs["flight_controller"].parameters["hover_land_timeout_s"] = HOVER_LAND_TIMEOUT_S
    for name in ROBOT_NODES:
        spawn(link.command("robot", [resolve_executable(specs[name].executable), *specs[name].ros_args()]),
              name=name, env=robot_env)
    observer = spawn(link.command("robot", python_cmd("tests.helpers.network_station", "robot-observe")),
                     name="robot_observer", env=robot_env)
    observer.wait_for_line(r"MODE LANDED", timeout=60)
    return observer, ground_env


def mode_changes(observer, since: float) -> list[tuple[str, float]]:
    changes = []
    for line in list(observer.lines):
        parts = line.split()
        if len(parts) == 3 and parts[0] == "MODE" and float(parts[2]) >= since:
            changes.append((parts[1], float(parts[2])))
    return changes


def wait_for_mode(observer, mode: str, since: float, timeout: float) -> list[tuple[str, float]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        changes = mode_changes(observer, since)
        if mode in (m for m, _ in changes):
            return changes
        time.sleep(0.1)
    raise TimeoutError(f"no {mode} within {timeout} s; mode changes since: {mode_changes(observer, since)}")


def test_ground_flies_the_robot_across_the_link_and_a_partition_ends_hover_then_land(link, split, spawn):
    observer, ground_env = split
    flown = subprocess.run(link.command("ground", python_cmd("tests.helpers.network_station", "ground-fly")),
                           env=ground_env, capture_output=True, text=True, timeout=150)
    assert flown.returncode == 0, flown.stdout[-3000:] + flown.stderr[-3000:]
    times = json.loads(flown.stdout.strip().splitlines()[-1])
    print(f"\n[network split] across the veth link: {times}")
    assert times["hover_altitude_m"] > 0.5
    assert [mode for mode, _ in mode_changes(observer, 0.0)][-1] == "LANDED"
    counters = link.link_counters()
    print(f"[network split] link traffic so far: {counters}")
    assert counters["rx_multicast"] == 0, "discovery must be unicast to the named peers"

    streamer = spawn(link.command("ground", python_cmd("tests.helpers.network_station", "ground-stream")),
                     name="ground_stream", env=ground_env)
    streamer.wait_for_line("STREAMING", timeout=90)
    cut = time.monotonic()
    link.set_link(up=False)
    try:
        after_cut = wait_for_mode(observer, "LANDED", since=cut, timeout=HOVER_LAND_TIMEOUT_S + 30)
    finally:
        link.set_link(up=True)
    modes = [mode for mode, _ in after_cut]
    assert modes[0] == "HOVER" and "LANDED" in modes, after_cut
    hover_after_s = after_cut[0][1] - cut
    landing_after_s = next(t for mode, t in after_cut if mode == "LANDING") - cut
    print(f"[network split] partition: {' → '.join(modes)}; hover {hover_after_s:.2f} s and landing "
          f"{landing_after_s:.2f} s after the cut (command_timeout_s 0.5, hover_land_timeout_s "
          f"{HOVER_LAND_TIMEOUT_S})")
    assert hover_after_s < 2.0
    assert HOVER_LAND_TIMEOUT_S - 0.5 < landing_after_s - hover_after_s < HOVER_LAND_TIMEOUT_S + 3.0
