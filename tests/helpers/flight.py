"""A running sim + flight controller pair (real processes over DDS) for tests."""
from __future__ import annotations

from pathlib import Path

from mmchat_ros.tools.flight_client import FlightClient, action, yaw_of  # noqa: F401  (re-exported for tests)
from tests.helpers.processes import NodeProcess, python_cmd

FAST_SIM = {"camera_enabled": False}


def ros_args(params: dict) -> list[str]:
    args = ["--ros-args"]
    for key, value in params.items():
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, (list, tuple)):
            value = "[" + ",".join(str(float(v)) for v in value) + "]"
        args += ["-p", f"{key}:={value}"]
    return args


def start_stack(env: dict, log_dir: Path, sim_params: dict | None = None, fc_params: dict | None = None
                ) -> list[NodeProcess]:
    sim = NodeProcess(python_cmd("mmchat_ros.nodes.sim", *ros_args({**FAST_SIM, **(sim_params or {})})), env,
                      log_dir / "sim.log", name="sim")
    fc = NodeProcess(python_cmd("mmchat_ros.nodes.flight_controller",
                                *ros_args({"require_authorisation": False, **(fc_params or {})})), env,
                     log_dir / "flight_controller.log", name="flight_controller")
    try:
        sim.wait_for_line("simulator ready", timeout=60)
        fc.wait_for_line("flight controller ready", timeout=60)
    except Exception:
        sim.stop()   # never leave a half-started stack behind
        fc.stop()
        raise
    return [sim, fc]
