#!/usr/bin/env python3
"""Real-vehicle driver figures, each driver flying its protocol emulator on loopback (tests/helpers/): the real
flight_controller and tello_driver / mavlink_driver processes over DDS, the emulator in this process.

- command latency: an operator velocity step on /cmd_vel/operator → the flight controller's set-point on
  /cmd_vel/vehicle passing 0.1 m/s (as this process receives it; the controller ramps its set-point) → the first
  such set-point arriving at the vehicle through the driver and the Tello rc / MAVLink protocol; the driver's
  share (controller output → vehicle) and the whole (operator → vehicle), p50/p95 over the steps;
- set-point stream at the vehicle while hovering: rate and p99 interval (MAVLink: SET_POSITION_TARGET_LOCAL_NED,
  Tello: rc);
- odometry rate on /odom and the driver process's CPU while hovering (percent of one core).

    python bench/vehicle_drivers.py [--steps 8] [--only tello|mavlink]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, emit, percentile  # noqa: E402

sys.path.insert(0, str(ROOT))
from mmchat_ros.core.rosenv import ros_environment  # noqa: E402

os.environ.update({k: v for k, v in ros_environment().items()
                   if k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY", "FASTRTPS_DEFAULT_PROFILES_FILE",
                            "RMW_IMPLEMENTATION")})

from geometry_msgs.msg import Twist  # noqa: E402

from mmchat_ros.tools.ros_client import RosClient  # noqa: E402
from tests.helpers.flight import ros_args  # noqa: E402
from tests.helpers.processes import NodeProcess, python_cmd  # noqa: E402
from tests.helpers.vehicle_flight import VehicleStack, flight_controller_cmd, free_udp_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_tello(env, logs):
    from tests.helpers.tello_emulator import TelloEmulator
    state_port = free_udp_port()
    emulator = TelloEmulator(state_port).start()
    driver = NodeProcess(python_cmd("mmchat_ros.nodes.tello_driver", *ros_args({
        "tello_host": "127.0.0.1", "command_port": emulator.command_port, "state_port": state_port,
        "bind_host": "127.0.0.1", "video_enabled": False})), env, logs / "tello_driver.log", "tello_driver")

    def moving_setpoints(since):      # rc with a forward stick (the b channel) of 0.1 m/s or more
        return [t for t, text in list(emulator.command_log) if t >= since and text.startswith("rc ")
                and int(text.split()[2]) * emulator.full_xy / 100.0 >= 0.1 - 1e-9]

    def setpoint_times():
        return [t for t, text in list(emulator.command_log) if text.startswith("rc ")]
    return emulator, driver, moving_setpoints, setpoint_times


def start_mavlink(env, logs):
    from tests.helpers.mavlink_emulator import MavlinkVehicleEmulator
    port = free_udp_port()
    emulator = MavlinkVehicleEmulator(port).start()
    driver = NodeProcess(python_cmd("mmchat_ros.nodes.mavlink_driver", *ros_args({
        "connection_url": f"udpin:127.0.0.1:{port}"})), env, logs / "mavlink_driver.log", "mavlink_driver")

    def moving_setpoints(since):      # ENU x velocity of 0.1 m/s or more
        return [t for t, v in list(emulator.setpoint_log) if t >= since and v[0] >= 0.1]

    def setpoint_times():
        return [t for t, _ in list(emulator.setpoint_log)]
    return emulator, driver, moving_setpoints, setpoint_times


def run(kind: str, steps: int, domain_id: int, logs: Path) -> dict:
    env = ros_environment(domain_id=domain_id, log_dir=str(logs / "ros"))
    emulator, driver, moving_setpoints, setpoint_times = (start_tello if kind == "tello" else start_mavlink)(env, logs)
    fc = NodeProcess(flight_controller_cmd(kind), env, logs / f"fc-{kind}.log", "flight_controller")
    ros = RosClient(domain_id, name=f"bench_{kind}")
    try:
        driver.wait_for_line("link up", 60)
        fc.wait_for_line("flight controller ready", 60)
        stack = VehicleStack(ros)
        controller_output = ros.collect(Twist, "/cmd_vel/vehicle", "sensor")
        stack.take_off()
        time.sleep(2.0)
        # Hover: stream, odometry and CPU over 8 s.
        t0, cpu0 = time.monotonic(), cpu_seconds(driver.proc.pid)
        time.sleep(8.0)
        t1, cpu1 = time.monotonic(), cpu_seconds(driver.proc.pid)
        times = [t for t in setpoint_times() if t0 <= t <= t1]
        intervals = [b - a for a, b in zip(times, times[1:])]
        odometry_hz = stack.odometry_count_since(t0) / (t1 - t0)
        # Operator velocity steps (0.4 m/s along odom x, which both emulators start facing).
        total, driver_share = [], []
        for _ in range(steps):
            start = time.monotonic()
            stack.fly("odom", 0.8, vx=0.4)
            output = [t for t, m in list(controller_output) if t >= start and m.linear.x >= 0.1]
            moving = moving_setpoints(start)
            if output and moving:
                total.append(moving[0] - start)
                driver_share.append(moving[0] - output[0])
            time.sleep(1.5)
        stack.land()
        prefix = f"{kind}_"
        return {prefix + "driver_latency_p50_ms": 1000 * percentile(driver_share, 50),
                prefix + "driver_latency_p95_ms": 1000 * percentile(driver_share, 95),
                prefix + "operator_to_vehicle_p50_ms": 1000 * percentile(total, 50),
                prefix + "operator_to_vehicle_p95_ms": 1000 * percentile(total, 95),
                prefix + "command_steps_seen": len(total),
                prefix + "setpoint_rate_hz": len(times) / (t1 - t0),
                prefix + "setpoint_interval_p99_ms": 1000 * percentile(intervals, 99),
                prefix + "odometry_rate_hz": odometry_hz,
                prefix + "driver_cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0)}
    finally:
        ros.close()
        for proc in (driver, fc):
            proc.stop()
        emulator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--only", choices=["tello", "mavlink"])
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory(prefix="mmchat-bench-vehicles-") as tmp:
        for i, kind in enumerate(["tello", "mavlink"]):
            if args.only in (None, kind):
                figures.update(run(kind, args.steps, 90 + os.getpid() % 5 + i, Path(tmp)))
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
