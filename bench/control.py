#!/usr/bin/env python3
"""Flight control figures: the flight controller's loop rate and period jitter while flying (real sim and
flight_controller processes over DDS), the simulator's real-time factor with and without the onboard camera,
altitude and lateral step responses, the figure-eight (time-scaled to the airframe's limits) on every airframe,
and a model-mismatch sweep: the simulated vehicle perturbed away from the airframe file the controller was built
from. Everything but the loop statistics runs FlightCore and the MuJoCo simulator in lockstep at the control
rate, so those figures do not depend on this machine's load.

    python bench/control.py [--airframe x500] [--skip-ros] [--skip-sweep] [--sweep-airframes crazyflie,x500]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, emit  # noqa: E402

import numpy as np  # noqa: E402

from mmchat_ros.backends.sim.lockstep import Lockstep  # noqa: E402
from mmchat_ros.backends.sim.quadrotor import Perturbation  # noqa: E402
from mmchat_ros.core.flight.trajectory import FigureEight  # noqa: E402

CONTROL_HZ = 250.0
UNTUNED_AIRFRAME = "quad250"      # no entry in flight_gains.yaml: gains and limits from its constants only

# The mismatch sweep: (name, Perturbation fields, IMU noise (accel m/s², gyro rad/s)).
MISMATCH_CASES = [
    ("mass x0.75", {"mass_scale": 0.75}, None),
    ("mass x1.25", {"mass_scale": 1.25}, None),
    ("inertia x0.7", {"inertia_scale": 0.7}, None),
    ("inertia x1.3", {"inertia_scale": 1.3}, None),
    ("max thrust x0.8", {"max_thrust_scale": 0.8}, None),
    ("motor lag x3", {"motor_lag_scale": 3.0}, None),
    ("drag x0", {"drag_scale": 0.0}, None),
    ("drag x3", {"drag_scale": 3.0}, None),
    ("yaw torque x0.25", {"yaw_torque_scale": 0.25}, None),
    ("yaw torque x4", {"yaw_torque_scale": 4.0}, None),
    ("CoM 1 cm off", {"com_offset_m": (0.01, 0.0, 0.0)}, None),
    ("IMU noise+bias", {"gyro_bias_rad_s": (0.02, -0.02, 0.01), "accel_bias_m_s2": (0.1, -0.1, 0.2)}, (0.1, 0.01)),
    ("odom latency 30 ms", {"odom_latency_s": 0.03}, None),
    ("wind 3 m/s + gusts", {"wind_m_s": (3.0, 0.0, 0.0), "gust_m_s": 1.0}, None),
]


def real_time_factor(airframe: str, camera_hz: float, seconds: float = 20.0) -> float:
    loop = Lockstep(airframe, CONTROL_HZ, camera_hz=camera_hz, world=str(ROOT / "sim" / "worlds" / "default.yaml"))
    loop.take_off()
    loop.sim_wall = 0.0
    start = loop.now
    # Fly (not just hover) so contacts, drag and the moving target all cost what they cost in use.
    loop.core.submit_velocity("operator", 0.5, 0.3, 0.0, 0.2, loop.now)
    loop.run(seconds, each=lambda s, st: loop.core.submit_velocity("operator", 0.5, 0.3, 0.0, 0.2, loop.now))
    rtf = (loop.now - start) / loop.sim_wall
    loop.close()
    return rtf


class Crash(Exception):
    pass


def _watch(loop: Lockstep, reference_error: float | None = None) -> None:
    """A flip, a fall or a fly-away ends the run as a crash."""
    if loop.max_tilt_deg > 70.0:
        raise Crash(f"tilt {loop.max_tilt_deg:.0f} deg")
    if loop.core.mode.value in ("LANDING", "LANDED", "EMERGENCY"):
        raise Crash(f"mode {loop.core.mode.value}")
    if loop.true_position()[2] < 0.3:
        raise Crash("hit the ground")
    if reference_error is not None and reference_error > 1.5:
        raise Crash(f"{reference_error:.2f} m off the reference")


def step_response(loop: Lockstep, axis: int, step_m: float = 1.0, seconds: float = 6.0) -> dict:
    """Bare position target step_m away along axis (the flight core shapes it); rise 10-90 %, overshoot, 5 %
    settling."""
    start = loop.true_position()
    target = start.copy()
    target[axis] += step_m
    yaw = loop.core.controller.yaw_target or 0.0
    samples = []

    def hold(_state, _status):
        loop.core.submit_position("operator", *target, yaw, loop.now)
        samples.append(loop.true_position()[axis])
        _watch(loop, float(np.linalg.norm(loop.true_position() - target)) - abs(step_m))
    loop.run(seconds, each=hold)
    times = np.arange(len(samples)) / CONTROL_HZ
    x = np.array(samples)
    frac = (x - start[axis]) / step_m
    rise = times[np.argmax(frac >= 0.9)] - times[np.argmax(frac >= 0.1)]
    overshoot = max(0.0, (frac.max() - 1.0) * 100.0)
    outside = np.nonzero(np.abs(frac - 1.0) > 0.05)[0]
    settle = times[outside[-1] + 1] if len(outside) and outside[-1] + 1 < len(times) else 0.0
    return {"rise_s": float(rise), "overshoot_pct": float(overshoot), "settle_s": float(settle)}


def figure_eight(loop: Lockstep, mean_speed: float = 1.0, size_m: float = 2.0, laps: float = 2.0) -> dict:
    """Lemniscate at mean_speed, slowed to the airframe's limits; RMS / max of the distance between the vehicle's
    true position and the reference, from a quarter lap after the ramp-in to the end."""
    centre = loop.true_position()
    path = FigureEight(centre, size_m, mean_speed, loop.core.reference_limits)
    t0 = loop.now
    errors = []

    def follow(_state, _status):
        t = loop.now - t0
        pos, vel, acc = path.reference(t)
        loop.core.submit_position("operator", *pos, 0.0, loop.now, tuple(vel), tuple(acc))
        error = float(np.linalg.norm(loop.true_position() - path.reference(t - 1.0 / CONTROL_HZ)[0]))
        _watch(loop, error)
        if t > path.ramp_s + 0.25 * path.period_s:
            errors.append(error)
    loop.run(path.ramp_s + laps * path.period_s, each=follow)
    # Back to the centre and still before whatever comes next.
    loop.run(3.0, each=lambda s, st: (loop.core.submit_position("operator", *centre, 0.0, loop.now),
                                      _watch(loop)))
    errors = np.array(errors)
    return {"rms_m": float(np.sqrt(np.mean(errors ** 2))), "max_m": float(errors.max()),
            "slowdown_pct": path.slowdown_pct}


def flight(airframe: str, perturbation: Perturbation | None = None, imu_noise=None, lateral: bool = False,
           laps: float = 2.0) -> dict:
    """One flight: take off, figure-eight, +1 m altitude step (and a 1 m lateral step)."""
    loop = Lockstep(airframe, CONTROL_HZ, perturbation=perturbation, imu_noise=imu_noise or (0.0, 0.0))
    result: dict = {"crashed": False}
    try:
        loop.take_off(1.5)
        result["fig8"] = figure_eight(loop, laps=laps)
        result["step_z"] = step_response(loop, 2)
        if lateral:
            result["step_x"] = step_response(loop, 0)
    except (Crash, AssertionError) as exc:
        result["crashed"] = True
        result["why"] = str(exc)
    finally:
        result["max_tilt_deg"] = loop.max_tilt_deg
        loop.close()
    return result


SWEEP_LAPS = 1.25       # a shorter figure-eight per case (3/4 of a lap measured), baseline flown the same way


def mismatch_sweep(airframes: list[str]) -> tuple[list[dict], float, int]:
    rows, worst, crashes = [], 0.0, 0
    for airframe in airframes:
        baseline = flight(airframe, laps=SWEEP_LAPS)
        if baseline["crashed"]:
            raise SystemExit(f"{airframe}: unperturbed sweep flight crashed: {baseline.get('why')}")
        base = baseline["fig8"]["rms_m"]
        print(f"  {airframe:9s} {'(as the file says)':20s} fig-8 RMS {base:.4f} m", flush=True)
        for name, fields, noise in MISMATCH_CASES:
            t0 = time.monotonic()
            result = flight(airframe, Perturbation(**fields), noise, laps=SWEEP_LAPS)
            row = {"airframe": airframe, "case": name, "crashed": result["crashed"]}
            if result["crashed"]:
                crashes += 1
                row["why"] = result.get("why", "")
                print(f"  {airframe:9s} {name:20s} CRASH ({row['why']})", flush=True)
            else:
                row.update(fig8_rms_m=result["fig8"]["rms_m"], ratio=result["fig8"]["rms_m"] / base,
                           step_rise_s=result["step_z"]["rise_s"], step_overshoot_pct=result["step_z"]["overshoot_pct"],
                           step_settle_s=result["step_z"]["settle_s"])
                worst = max(worst, row["ratio"])
                print(f"  {airframe:9s} {name:20s} fig-8 RMS {row['fig8_rms_m']:.4f} m (x{row['ratio']:.2f})  "
                      f"step rise {row['step_rise_s']:.2f} s overshoot {row['step_overshoot_pct']:.1f} % "
                      f"settle {row['step_settle_s']:.2f} s  [{time.monotonic() - t0:.0f} s]", flush=True)
            rows.append(row)
    return rows, worst, crashes


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--airframe", default="x500", help="airframe of the ROS loop statistics and the "
                        "legacy step_* / fig8_rms_m keys")
    parser.add_argument("--skip-ros", action="store_true", help="only the in-process figures")
    parser.add_argument("--skip-rtf", action="store_true", help="skip the real-time factor runs")
    parser.add_argument("--skip-sweep", action="store_true", help="skip the model-mismatch sweep")
    parser.add_argument("--sweep-airframes", default="crazyflie,x500")
    args = parser.parse_args()
    figures = {}
    if not args.skip_ros:
        stats = ros_loop_statistics(args.airframe)
        figures.update(loop_rate_hz=stats["loop_rate_hz"], jitter_p50_ms=stats["jitter_p50_ms"],
                       jitter_p99_ms=stats["jitter_p99_ms"], period_max_ms=stats["period_max_ms"])
        print(f"control loop while flying: {stats['loop_rate_hz']:.1f} Hz, period jitter p50 "
              f"{stats['jitter_p50_ms']:.3f} ms, p99 {stats['jitter_p99_ms']:.3f} ms", flush=True)
    if not args.skip_rtf:
        figures["rtf_no_camera"] = real_time_factor(args.airframe, camera_hz=0.0)
        figures["rtf_camera"] = real_time_factor(args.airframe, camera_hz=15.0)
        print(f"simulator real-time factor: {figures['rtf_no_camera']:.1f}x without camera, "
              f"{figures['rtf_camera']:.1f}x with the 320x240 camera at 15 Hz", flush=True)

    nominal = {}
    for airframe in dict.fromkeys(["crazyflie", "x500", UNTUNED_AIRFRAME, args.airframe]):
        result = flight(airframe, lateral=True)
        if result["crashed"]:
            raise SystemExit(f"{airframe}: nominal flight crashed: {result.get('why')}")
        nominal[airframe] = result
        f8, sz, sx = result["fig8"], result["step_z"], result["step_x"]
        print(f"{airframe}: figure-eight (1 m/s asked, slowed {f8['slowdown_pct']:.0f} % to fit the limits): RMS "
              f"{f8['rms_m']:.4f} m, max {f8['max_m']:.4f} m; +1 m altitude step: rise {sz['rise_s']:.2f} s, "
              f"overshoot {sz['overshoot_pct']:.1f} %, settling (5 %) {sz['settle_s']:.2f} s; 1 m lateral step: "
              f"rise {sx['rise_s']:.2f} s, overshoot {sx['overshoot_pct']:.1f} %, settling {sx['settle_s']:.2f} s",
              flush=True)
    legacy = nominal[args.airframe]
    figures.update(step_rise_s=legacy["step_z"]["rise_s"], step_overshoot_pct=legacy["step_z"]["overshoot_pct"],
                   step_settle_s=legacy["step_z"]["settle_s"], fig8_rms_m=legacy["fig8"]["rms_m"])
    cf, x5 = nominal["crazyflie"], nominal["x500"]
    figures.update(
        fig8_rms_m_crazyflie=cf["fig8"]["rms_m"], fig8_max_m_crazyflie=cf["fig8"]["max_m"],
        fig8_rms_m_x500=x5["fig8"]["rms_m"], fig8_max_m_x500=x5["fig8"]["max_m"],
        fig8_slowdown_pct=cf["fig8"]["slowdown_pct"], fig8_slowdown_pct_x500=x5["fig8"]["slowdown_pct"],
        step_rise_s_crazyflie=cf["step_z"]["rise_s"], step_overshoot_pct_crazyflie=cf["step_z"]["overshoot_pct"],
        step_settle_s_crazyflie=cf["step_z"]["settle_s"],
        step_rise_s_x500=x5["step_z"]["rise_s"], step_overshoot_pct_x500=x5["step_z"]["overshoot_pct"],
        step_settle_s_x500=x5["step_z"]["settle_s"],
        lateral_step_rise_s_crazyflie=cf["step_x"]["rise_s"],
        lateral_step_overshoot_pct_crazyflie=cf["step_x"]["overshoot_pct"],
        lateral_step_rise_s_x500=x5["step_x"]["rise_s"], lateral_step_overshoot_pct_x500=x5["step_x"]["overshoot_pct"],
        new_airframe_fig8_rms_m=nominal[UNTUNED_AIRFRAME]["fig8"]["rms_m"],
        new_airframe_step_rise_s=nominal[UNTUNED_AIRFRAME]["step_z"]["rise_s"],
        new_airframe_step_overshoot_pct=nominal[UNTUNED_AIRFRAME]["step_z"]["overshoot_pct"])
    if not args.skip_sweep:
        print("model-mismatch sweep (controller from the airframe file, physics perturbed):", flush=True)
        airframes = [a for a in args.sweep_airframes.split(",") if a]
        _rows, worst, crashes = mismatch_sweep(airframes)
        figures.update(mismatch_worst_rms_ratio=worst, mismatch_crashes=crashes,
                       mismatch_cases=len(_rows))
    emit(figures)


if __name__ == "__main__":
    main()
