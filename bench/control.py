#!/usr/bin/env python3
"""Flight control figures: the flight controller's loop rate and period jitter while flying (real sim and
flight_controller processes over DDS), the simulator's real-time factor with and without the onboard camera,
the altitude step response, and RMS position error along a figure-eight at 1 m/s (FlightCore and the MuJoCo
simulator in lockstep at the control rate, so the figures do not depend on this machine's load).

    python bench/control.py [--airframe x500] [--skip-ros]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, emit, percentile  # noqa: E402

import numpy as np  # noqa: E402

from mmchat_ros.backends.sim.quadrotor import QuadrotorSim  # noqa: E402
from mmchat_ros.core.airframe import load_airframe  # noqa: E402
from mmchat_ros.core.flight.control import VehicleState  # noqa: E402
from mmchat_ros.core.flight.flight_core import FlightCore, FlightCoreConfig  # noqa: E402

CONTROL_HZ = 250.0


class Lockstep:
    """FlightCore flying QuadrotorSim, one control tick per sim tick, with the sim's time as the clock."""

    def __init__(self, airframe: str, camera_hz: float = 0.0, world: str | None = None):
        self.sim = QuadrotorSim(load_airframe(airframe), world, physics_hz=500, camera=camera_hz > 0)
        self.core = FlightCore.from_names(airframe, FlightCoreConfig.from_dict(
            {"require_authorisation": False, "hover_land_timeout_s": None, "control_rate_hz": CONTROL_HZ}))
        self.dt = 1.0 / CONTROL_HZ
        self.camera_every = int(round(CONTROL_HZ / camera_hz)) if camera_hz > 0 else 0
        self.origin = np.array([0.0, 0.0, self.sim.rest_height_m])
        self.ticks = 0
        self.sim_wall = 0.0       # wall time spent inside the simulator (physics + camera)
        self.now = 0.0

    def tick(self):
        s = self.sim.state()
        self.now = s.time_s
        state = VehicleState(position=s.position - self.origin, velocity=s.linear_velocity_world,
                             quaternion_wxyz=s.quaternion_wxyz, angular_velocity_body=s.angular_velocity_body)
        self.core.update_odometry(state, self.now)
        thrusts, armed, status = self.core.step(self.now)
        t0 = time.perf_counter()
        self.sim.set_motor_commands(thrusts, armed)
        self.sim.step(self.dt)
        if self.camera_every and self.ticks % self.camera_every == 0:
            self.sim.render_camera()
        self.sim_wall += time.perf_counter() - t0
        self.ticks += 1
        return state, status

    def run(self, seconds: float, each=None):
        for _ in range(int(round(seconds * CONTROL_HZ))):
            state, status = self.tick()
            if each:
                each(state, status)
        return state, status

    def take_off(self, height: float = 1.5):
        self.run(0.5)
        assert self.core.takeoff(self.now, height), "take-off refused"
        for _ in range(int(30 * CONTROL_HZ)):
            _, status = self.tick()
            if status.mode == "HOVER":
                break
        self.run(3.0)   # settle


def real_time_factor(airframe: str, camera_hz: float, seconds: float = 20.0) -> float:
    loop = Lockstep(airframe, camera_hz=camera_hz, world=str(ROOT / "sim" / "worlds" / "default.yaml"))
    loop.take_off()
    loop.sim_wall = 0.0
    start = loop.now
    # Fly (not just hover) so contacts, drag and the moving target all cost what they cost in use.
    loop.core.submit_velocity("operator", 0.5, 0.3, 0.0, 0.2, loop.now)
    loop.run(seconds, each=lambda s, st: loop.core.submit_velocity("operator", 0.5, 0.3, 0.0, 0.2, loop.now))
    rtf = (loop.now - start) / loop.sim_wall
    loop.sim.close()
    return rtf


def altitude_step(airframe: str, step_m: float = 1.0) -> dict:
    loop = Lockstep(airframe)
    loop.take_off(1.5)
    x, y, z0 = (float(v) for v in loop.core.state.position)
    target = z0 + step_m
    samples = []

    def hold(state, _status):
        loop.core.submit_position("operator", x, y, target, 0.0, loop.now)
        samples.append((loop.now, state.position[2]))
    loop.run(8.0, each=hold)
    t0 = samples[0][0]
    times = np.array([t - t0 for t, _ in samples])
    z = np.array([v for _, v in samples])
    frac = (z - z0) / step_m
    rise = times[np.argmax(frac >= 0.9)] - times[np.argmax(frac >= 0.1)]
    overshoot = max(0.0, (z.max() - target) / step_m * 100.0)
    outside = np.nonzero(np.abs(z - target) > 0.05 * step_m)[0]
    settle = times[outside[-1] + 1] if len(outside) and outside[-1] + 1 < len(times) else times[0]
    loop.sim.close()
    return {"step_rise_s": float(rise), "step_overshoot_pct": float(overshoot), "step_settle_s": float(settle)}


def figure_eight_rms(airframe: str, speed: float = 1.0, size_m: float = 2.0, laps: int = 2) -> float:
    """Lemniscate of Gerono x = a sin(wt), y = a sin(wt) cos(wt), timed so the mean speed is ``speed``."""
    loop = Lockstep(airframe)
    loop.take_off(1.5)
    cx, cy, cz = (float(v) for v in loop.core.state.position)
    a = size_m
    theta = np.linspace(0, 2 * np.pi, 2001)
    length = np.sum(np.hypot(np.diff(a * np.sin(theta)), np.diff(a * np.sin(theta) * np.cos(theta))))
    omega = 2 * np.pi * speed / length
    errors = []
    t_start = loop.now

    def reference(t):
        s = omega * t
        pos = (cx + a * math.sin(s), cy + a * math.sin(s) * math.cos(s))
        vel = (a * omega * math.cos(s), a * omega * math.cos(2 * s))
        acc = (-a * omega ** 2 * math.sin(s), -2 * a * omega ** 2 * math.sin(2 * s))
        return pos, vel, acc

    # Lead-in: ramp the reference speed up over 2 s so the start is not a step in velocity.
    def follow(state, _status):
        t = loop.now - t_start
        pos, vel, acc = reference(t)
        loop.core.submit_position("operator", pos[0], pos[1], cz, 0.0, loop.now, (vel[0], vel[1], 0.0),
                                  (acc[0], acc[1], 0.0))
        if t > 2 * math.pi / omega * 0.25:     # measure after the first quarter lap
            ref_now, _, _ = reference(t - 1.0 / CONTROL_HZ)
            errors.append(math.hypot(state.position[0] - ref_now[0], state.position[1] - ref_now[1]) ** 2
                          + (state.position[2] - cz) ** 2)
    loop.run(laps * 2 * math.pi / omega, each=follow)
    loop.sim.close()
    return math.sqrt(sum(errors) / len(errors))


def ros_loop_statistics(airframe: str, seconds: float = 12.0) -> dict:
    """Start sim + flight_controller as processes, fly, and read the controller's own loop statistics."""
    from diagnostic_msgs.msg import DiagnosticArray

    from mmchat_ros.core.launch_graph import load_graph
    from mmchat_ros.core.rosenv import ros_environment
    from mmchat_ros.msg import PlanAction
    from mmchat_ros.tools.flight_client import FlightClient, action
    from mmchat_ros.tools.launcher import Launcher
    from mmchat_ros.tools.ros_client import RosClient

    domain = 230 - os.getpid() % 20
    specs = [s for s in load_graph().resolve("sim", {"airframe": airframe}) if s.name in ("sim", "flight_controller")]
    launcher = Launcher(specs, log_dir=tempfile.mkdtemp(prefix="bench-control-"),
                        env=ros_environment(domain_id=domain), out=open(os.devnull, "w"))
    launcher.start()
    ros = RosClient(domain, "bench_control")
    try:
        flight = FlightClient(ros)
        diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
        flight.take_off_and_settle()
        t0 = time.monotonic()
        flight.execute([action(PlanAction.MOVE_BY, x=2.0), action(PlanAction.ROTATE, yaw_deg=90.0),
                        action(PlanAction.MOVE_BY, x=-2.0)])
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        values = {kv.key: float(kv.value) for kv in diagnostics[-1][1].status[0].values if kv.key.startswith(
            ("loop_", "jitter_", "period_"))}
        flight.land_and_wait()
        return values
    finally:
        ros.close()
        launcher.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--airframe", default="x500")
    parser.add_argument("--skip-ros", action="store_true", help="only the in-process figures")
    args = parser.parse_args()
    figures = {}
    if not args.skip_ros:
        stats = ros_loop_statistics(args.airframe)
        figures.update(loop_rate_hz=stats["loop_rate_hz"], jitter_p50_ms=stats["jitter_p50_ms"],
                       jitter_p99_ms=stats["jitter_p99_ms"], period_max_ms=stats["period_max_ms"])
        print(f"control loop while flying: {stats['loop_rate_hz']:.1f} Hz, period jitter p50 "
              f"{stats['jitter_p50_ms']:.3f} ms, p99 {stats['jitter_p99_ms']:.3f} ms", flush=True)
    figures["rtf_no_camera"] = real_time_factor(args.airframe, camera_hz=0.0)
    figures["rtf_camera"] = real_time_factor(args.airframe, camera_hz=15.0)
    print(f"simulator real-time factor: {figures['rtf_no_camera']:.1f}x without camera, "
          f"{figures['rtf_camera']:.1f}x with the 320x240 camera at 15 Hz", flush=True)
    step = altitude_step(args.airframe)
    figures.update(step)
    print(f"altitude step +1 m: rise {step['step_rise_s']:.2f} s, overshoot {step['step_overshoot_pct']:.1f} %, "
          f"settling (5 %) {step['step_settle_s']:.2f} s", flush=True)
    figures["fig8_rms_m"] = figure_eight_rms(args.airframe)
    print(f"figure-eight at 1 m/s: RMS position error {figures['fig8_rms_m']:.3f} m", flush=True)
    emit(figures)


if __name__ == "__main__":
    main()
