"""A resting vehicle's loops idle (core/idle_rate.py, FlightCore.resting, PacedLoop.set_rate): the flight
controller and the simulator step slowly while the vehicle stands disarmed on the ground, and are back at full rate
the moment anything asks for motion."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mmchat_ros.core.idle_rate import IdleRate, RestLimits, at_rest
from mmchat_ros.nodes.base import PacedLoop

sys.path.insert(0, str(Path(__file__).parent))
from test_flight_control import FlightHarness  # noqa: E402  (FlightCore flying the rigid-body test double)
from test_node_workers import StandInNode, wait_until  # noqa: E402

FULL_HZ, IDLE_HZ, SETTLE_S = 250.0, 10.0, 1.0


def test_the_rate_drops_after_the_settle_time_and_a_wake_brings_it_back_at_once():
    rate = IdleRate(FULL_HZ, IDLE_HZ, SETTLE_S)
    assert rate.rate_hz(True, 0.0) == FULL_HZ
    assert rate.rate_hz(True, 0.99) == FULL_HZ
    assert rate.rate_hz(True, 1.0) == IDLE_HZ
    assert rate.wake() == FULL_HZ
    assert rate.rate_hz(True, 1.5) == FULL_HZ               # the settling starts again after a wake
    assert rate.rate_hz(True, 2.5) == IDLE_HZ
    assert rate.rate_hz(False, 2.6) == FULL_HZ              # no longer resting: full rate on that very tick
    assert rate.rate_hz(True, 2.7) == FULL_HZ


def test_an_idle_rate_of_zero_never_idles_and_a_bad_configuration_is_refused():
    never = IdleRate(FULL_HZ, 0.0, SETTLE_S)
    assert not never.enabled and never.rate_hz(True, 0.0) == never.rate_hz(True, 100.0) == FULL_HZ
    with pytest.raises(ValueError, match="below the full rate"):
        IdleRate(FULL_HZ, FULL_HZ, SETTLE_S)
    with pytest.raises(ValueError, match="settle time"):
        IdleRate(FULL_HZ, IDLE_HZ, -1.0)


def test_at_rest_needs_both_speeds_below_their_limits_and_finite():
    still, limits = np.zeros(3), RestLimits()
    assert at_rest(still, still)
    assert not at_rest(np.array([0.0, 0.0, -2 * limits.speed_m_s]), still)         # falling, lifted
    assert not at_rest(still, np.array([0.0, 2 * limits.angular_rate_rad_s, 0.0]))  # tipping over
    assert not at_rest(np.array([math.nan, 0.0, 0.0]), still)


def test_the_flight_core_rests_only_landed_disarmed_and_still():
    harness = FlightHarness()
    harness.run(0.5)
    assert harness.core.resting()
    assert harness.core.takeoff(harness.now)
    assert not harness.core.resting()                        # armed the moment the take-off is accepted
    harness.run(10.0, until=lambda s: s.mode == "HOVER")
    assert not harness.core.resting()
    assert harness.core.land(harness.now)
    status = harness.run(20.0, until=lambda s: s.mode == "LANDED")
    assert status.mode == "LANDED"
    harness.run(0.5)
    assert harness.core.resting()
    pushed = harness.sim.state()
    pushed.velocity = np.array([0.5, 0.0, 0.0])
    harness.core.update_odometry(pushed, harness.now)
    assert not harness.core.resting()


def test_a_landed_controller_ticks_at_the_idle_rate_and_a_take_off_gets_its_first_tick_at_once():
    """The node's wiring on simulated time: the loop's next tick comes one period (of the rate the last tick chose)
    later, or at once when a request wakes it (PacedLoop.set_rate ends the wait)."""
    harness, rate = FlightHarness(), IdleRate(FULL_HZ, IDLE_HZ, SETTLE_S)
    ticks, now, period = [], 0.0, 1.0 / FULL_HZ
    while now < 5.0:
        harness.core.update_odometry(harness.sim.state(), now)
        harness.core.control(now)
        ticks.append(now)
        period = 1.0 / rate.rate_hz(harness.core.resting(), now)
        now += period
    idle_ticks = [t for t in ticks if t > SETTLE_S + 0.1]
    assert period == 1.0 / IDLE_HZ and abs(len(idle_ticks) - (5.0 - SETTLE_S - 0.1) * IDLE_HZ) <= 1
    asked = ticks[-1] + 0.5 * period                         # between two slow ticks
    assert harness.core.takeoff(asked)
    assert rate.wake() == FULL_HZ                            # the node sets this rate: the wait ends, a tick runs now
    thrusts, armed = harness.core.control(asked)
    assert armed and rate.rate_hz(harness.core.resting(), asked) == FULL_HZ


def test_a_paced_loop_set_faster_steps_at_once_and_a_slow_one_still_stops_promptly():
    node, steps = StandInNode(), []
    loop = PacedLoop(node, "control", 2.0, lambda: steps.append(time.monotonic()))
    loop.start()
    assert wait_until(lambda: len(steps) >= 1)
    asked = time.monotonic()
    loop.set_rate(200.0)                                     # mid-wait of a 0.5 s period
    assert wait_until(lambda: len(steps) >= 2, 0.4)
    assert steps[1] - asked < 0.1 and loop.period_s == 1.0 / 200.0
    assert wait_until(lambda: len(steps) >= 30)
    loop.set_rate(2.0)
    time.sleep(0.1)
    count = len(steps)
    time.sleep(0.3)
    assert len(steps) - count <= 1                           # slow now
    asked = time.monotonic()
    loop.stop()
    assert not loop.thread.is_alive() and time.monotonic() - asked < 0.3
