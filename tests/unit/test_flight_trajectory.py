"""Time-scaled references (core/flight/trajectory.py): never beyond a limit, always ending at the target; and the
gain rule (core/flight/gains.py) that derives every airframe's gains from its physical constants."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from mmchat_ros.core.airframe import load_airframe
from mmchat_ros.core.flight.control import CascadedController
from mmchat_ros.core.flight.flight_core import FlightCore, FlightCoreConfig
from mmchat_ros.core.flight.gains import GainRule, default_gains_file, derive_gains_spec, load_gains
from mmchat_ros.core.flight.plan import PlanExecutor, PlanVehicle
from mmchat_ros.core.flight.state_machine import FlightMode
from mmchat_ros.core.flight.trajectory import (FigureEight, GoToShaper, KinematicLimits, SmoothProfile,
                                               TrapezoidProfile, time_scale_factor)
from mmchat_ros.core.plan_vocabulary import PlanStep

DT = 0.004
LIMITS = KinematicLimits(speed_xy=1.0, speed_z=1.8, accel_xy=3.6, accel_up=3.2, accel_down=2.5, jerk_xy=20.0,
                         jerk_z=40.0)
TOL = 1e-6


def _sample(profile, dt=0.001):
    t = np.arange(0.0, profile.duration + 0.5, dt)
    return t, np.array([profile.at(float(x)) for x in t])


@pytest.mark.parametrize("distance, speed, accel, jerk", [
    (3.0, 1.0, 2.0, 10.0), (0.3, 1.0, 2.0, 10.0), (0.02, 2.0, 4.0, 30.0), (10.0, 1.5, 0.5, 2.0),
    (1.0, 2.0, 4.0, math.inf)])
def test_smooth_profile_stays_within_speed_acceleration_and_jerk_and_ends_at_the_distance(distance, speed, accel,
                                                                                          jerk):
    profile = SmoothProfile(distance, speed, accel, jerk)
    t, samples = _sample(profile)
    s, v, a = samples.T
    assert v.max() <= speed + TOL and np.abs(a).max() <= accel + TOL
    if math.isfinite(jerk):
        assert np.abs(np.diff(a) / np.diff(t)).max() <= jerk * (1 + 1e-6) + TOL
    assert s[-1] == pytest.approx(distance, abs=1e-9) and v[-1] == 0.0 and a[-1] == 0.0
    assert np.all(np.diff(s) >= -1e-12)                                     # never backs up
    np.testing.assert_allclose(np.gradient(s, t), v, atol=5e-3 * max(1.0, speed))   # consistent feed-forward
    np.testing.assert_allclose(np.gradient(v, t), a, atol=0.05 * accel + (jerk * 2e-3 if math.isfinite(jerk) else
                                                                           2 * accel))


def test_smooth_profile_without_jerk_limit_is_the_trapezoid():
    smooth, trapezoid = SmoothProfile(2.0, 0.5, 1.0), TrapezoidProfile(2.0, 0.5, 1.0)
    assert smooth.duration == trapezoid.duration
    for t in np.linspace(0, smooth.duration, 50):
        assert smooth.at(t) == pytest.approx(trapezoid.at(t))


def _fly_shaper(shaper, seconds, retarget=None):
    out = []
    for i in range(int(seconds / DT)):
        if retarget and i == retarget[0]:
            shaper.set_target(retarget[1])
        out.append(np.concatenate(shaper.update(DT)))
    return np.array(out)


@pytest.mark.parametrize("target", [(0, 0, 1), (0, 0, -1), (3, 0, 0), (1, -1, 0.5), (0.05, 0.0, 0.0), (-2, 1, -0.3)])
def test_go_to_shaper_never_exceeds_a_limit_and_ends_exactly_at_the_target(target):
    shaper = GoToShaper(LIMITS)
    shaper.reset((0.0, 0.0, 0.0))
    shaper.set_target(target)
    states = _fly_shaper(shaper, 8.0)
    p, v, a = states[:, :3], states[:, 3:6], states[:, 6:]
    assert np.hypot(v[:, 0], v[:, 1]).max() <= LIMITS.speed_xy + TOL
    assert np.abs(v[:, 2]).max() <= LIMITS.speed_z + TOL
    assert np.hypot(a[:, 0], a[:, 1]).max() <= LIMITS.accel_xy + TOL
    assert a[:, 2].max() <= LIMITS.accel_up + TOL and -a[:, 2].min() <= LIMITS.accel_down + TOL
    np.testing.assert_allclose(p[-1], target, atol=1e-9)
    assert shaper.done
    # Straight line, no overshoot: progress along the line only grows, up to exactly 1.
    direction = np.asarray(target, float)
    progress = p @ direction / (direction @ direction)
    assert progress.max() <= 1.0 + 1e-9 and np.all(np.diff(progress) >= -1e-12)


def test_go_to_shaper_redirected_mid_flight_brakes_within_the_limits_then_reaches_the_new_target():
    shaper = GoToShaper(LIMITS)
    shaper.reset((0.0, 0.0, 1.0))
    shaper.set_target((4.0, 0.0, 1.0))
    states = _fly_shaper(shaper, 10.0, retarget=(400, (0.0, 2.0, 2.0)))
    v, a = states[:, 3:6], states[:, 6:]
    assert np.hypot(v[:, 0], v[:, 1]).max() <= LIMITS.speed_xy + TOL
    assert np.hypot(a[:, 0], a[:, 1]).max() <= LIMITS.accel_xy + TOL
    assert a[:, 2].max() <= LIMITS.accel_up + TOL and -a[:, 2].min() <= LIMITS.accel_down + TOL
    np.testing.assert_allclose(states[-1, :3], (0.0, 2.0, 2.0), atol=1e-9)
    # Velocity is continuous through the redirect (no step asked of the vehicle).
    assert np.abs(np.diff(v, axis=0)).max() <= max(LIMITS.accel_xy, LIMITS.accel_up) * DT + TOL


def test_go_to_shaper_starting_in_motion_brakes_first():
    shaper = GoToShaper(LIMITS)
    shaper.reset((0.0, 0.0, 1.0), velocity=(0.8, 0.0, 0.0))
    shaper.set_target((-1.0, 0.0, 1.0))
    states = _fly_shaper(shaper, 8.0)
    assert states[0, 3] == pytest.approx(0.8, abs=0.02)
    np.testing.assert_allclose(states[-1, :3], (-1.0, 0.0, 1.0), atol=1e-9)


def test_time_scale_factor_scales_speed_linearly_acceleration_squared_and_jerk_cubed():
    assert time_scale_factor(0.5, 1.0, 1.0, 1.0, 2.0, 2.0) == 1.0
    assert time_scale_factor(2.0, 1.0, 1.0, 1.0, 10, 10) == pytest.approx(0.5)
    assert time_scale_factor(1.0, 4.0, 1.0, 10, 1.0, 10) == pytest.approx(0.5)
    assert time_scale_factor(1.0, 1.0, 8.0, 10, 10, 1.0) == pytest.approx(0.5)


@pytest.mark.parametrize("mean_speed", [0.3, 1.0, 2.5])
def test_figure_eight_is_slowed_to_fit_the_limits_and_starts_at_rest(mean_speed):
    path = FigureEight((1.0, -1.0, 1.5), 2.0, mean_speed, LIMITS)
    t = np.arange(0.0, path.ramp_s + 1.2 * path.period_s, 0.002)
    ref = [path.reference(float(x)) for x in t]
    p = np.array([r[0] for r in ref])
    v = np.array([r[1] for r in ref])
    a = np.array([r[2] for r in ref])
    assert np.hypot(v[:, 0], v[:, 1]).max() <= LIMITS.speed_xy + 1e-6
    assert np.hypot(a[:, 0], a[:, 1]).max() <= LIMITS.accel_xy + 1e-6
    jerk = np.diff(a, axis=0) / 0.002
    assert np.hypot(jerk[:, 0], jerk[:, 1]).max() <= LIMITS.jerk_xy * 1.01
    np.testing.assert_allclose(p[0], (1.0, -1.0, 1.5), atol=1e-12)
    np.testing.assert_allclose(v[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(np.gradient(p[:, 0], t), v[:, 0], atol=2e-3)
    if mean_speed <= 0.3:
        assert path.scale == 1.0 and path.slowdown_pct == 0.0
    else:
        assert 0.0 < path.scale < 1.0
        assert path.slowdown_pct == pytest.approx(100.0 * (1.0 - path.scale))


# ----------------------------------------------------------------------------------------------- plans, core
def test_plan_moves_are_time_scaled_to_the_vehicle_limits():
    executor = PlanExecutor(limits=LIMITS)
    vehicle = PlanVehicle(np.array([0.0, 0.0, 1.5]), np.zeros(3), 0.0, FlightMode.HOVER)
    assert executor.start([PlanStep(3, x=3.0, speed=5.0)], vehicle, 0.0) is None     # asks 5 m/s
    speeds, accels, t = [], [], 0.0
    while executor.running and t < 30.0:
        out = executor.update(t, vehicle)
        if out.setpoint is not None:
            sp = out.setpoint
            speeds.append(math.hypot(sp.vx, sp.vy))
            accels.append(math.hypot(sp.ax, sp.ay))
            vehicle = PlanVehicle(np.array([sp.x, sp.y, sp.z]), np.array([sp.vx, sp.vy, sp.vz]), 0.0,
                                  FlightMode.POSITION)
        t += DT
    assert not executor.running and executor.feedback().message == "done"
    assert max(speeds) == pytest.approx(LIMITS.speed_xy, rel=1e-3) and max(speeds) <= LIMITS.speed_xy + TOL
    assert max(accels) <= min(executor.config.acceleration_m_s2, LIMITS.accel_xy) + TOL
    np.testing.assert_allclose(vehicle.position, (3.0, 0.0, 1.5), atol=1e-9)


@pytest.mark.parametrize("name", ["crazyflie", "x500", "quad250"])
def test_flight_core_reference_limits_are_inside_the_airframe_and_the_envelope(name):
    core = FlightCore.from_names(name, FlightCoreConfig.from_dict({"envelope": {"max_speed_xy": 0.8}}))
    lim, ctl = core.reference_limits, core.controller
    assert lim.speed_xy <= min(0.8, ctl.gains.limits.max_speed_xy)
    assert lim.speed_z <= min(core.envelope.config.max_speed_z, ctl.gains.limits.max_speed_z)
    assert lim.accel_up <= ctl.max_accel_up and lim.accel_down <= ctl.max_accel_down
    assert lim.accel_xy <= 9.81 * math.tan(ctl.max_tilt)


# ------------------------------------------------------------------------------------------------ gain rule
def test_gains_follow_the_rule_from_the_physical_constants():
    rule = GainRule.from_dict(yaml.safe_load(default_gains_file().read_text())["rule"])
    for name in ("crazyflie", "x500", "quad250"):
        airframe = load_airframe(name)
        gains = load_gains(name, airframe=airframe)
        spec = derive_gains_spec(airframe, 250.0, rule)
        assert gains.rate_roll_pitch.kp == pytest.approx(spec["rate"]["roll_pitch"]["kp"])
        # The loops are nested with the rule's separation, fastest inside.
        assert gains.rate_roll_pitch.kp > gains.attitude_roll_pitch > gains.velocity_xy.kp > gains.position_xy.kp
        assert gains.observer.velocity_bw > 0 and gains.observer.rate_bw > 0
    # A slower motor gives a slower rate loop (the rule reads the motor lag), a faster loop rate a faster one.
    cf = load_airframe("crazyflie")
    slow = derive_gains_spec(type(cf)(**{**cf.__dict__, "motor_time_constant_s": 0.06}), 250.0, rule)
    fast = derive_gains_spec(cf, 500.0, rule)
    base = derive_gains_spec(cf, 250.0, rule)
    assert slow["rate"]["roll_pitch"]["kp"] < base["rate"]["roll_pitch"]["kp"] < fast["rate"]["roll_pitch"]["kp"]


def test_an_airframe_without_a_gains_entry_gets_derived_limits_and_an_unknown_one_is_refused():
    gains = load_gains("quad250")
    assert 10.0 <= gains.limits.max_tilt_deg <= 30.0 and gains.limits.max_accel_up > 0
    CascadedController(load_airframe("quad250"), gains)
    with pytest.raises(KeyError, match="no flight gains"):
        load_gains("no_such_airframe")
    with pytest.raises(ValueError, match="rule: unknown keys"):
        GainRule.from_dict({"dampnig": 0.7})


def test_go_to_shaper_brake_stops_within_the_limits_where_it_says():
    shaper = GoToShaper(LIMITS)
    shaper.reset((0.0, 0.0, 1.0), velocity=(0.9, 0.3, -0.5))
    stop = shaper.brake()
    states = _fly_shaper(shaper, 3.0)
    v, a = states[:, 3:6], states[:, 6:]
    assert np.hypot(a[:, 0], a[:, 1]).max() <= LIMITS.accel_xy + TOL
    assert a[:, 2].max() <= LIMITS.accel_up + TOL and -a[:, 2].min() <= LIMITS.accel_down + TOL
    assert np.all(np.diff(np.linalg.norm(v, axis=1)) <= 1e-12)            # only ever slows down
    np.testing.assert_allclose(states[-1, :3], stop, atol=1e-9)
    assert shaper.done and np.linalg.norm(stop - (0.0, 0.0, 1.0)) < 0.5
