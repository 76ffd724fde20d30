"""A landed, disarmed vehicle costs little (core/idle_rate.py): the real sim and flight_controller processes idle
(/odom at idle_odom_rate_hz, /motor_command at idle_control_rate_hz) while /flight/state keeps its rate and an
emergency stop is answered; a take-off gets its first armed motor command within one slow tick and both are back
at full rate."""
from __future__ import annotations

import time

import pytest
from std_srvs.srv import Trigger

from tests.helpers.flight import FlightClient, start_stack

pytestmark = [pytest.mark.slow, pytest.mark.sim]
IDLE_CONTROL_HZ, IDLE_ODOM_HZ = 10.0, 15.0            # the defaults (config/flight_controller.yaml, config/sim.yaml)
SLOW_TICK_S = 1.0 / IDLE_CONTROL_HZ


def rate_hz(samples: list, t0: float, t1: float) -> float:
    return sum(1 for t, _ in list(samples) if t0 <= t < t1) / (t1 - t0)


def test_a_landed_vehicle_idles_and_takes_off_within_one_slow_tick(ros, ros_env, tmp_path):
    sim, fc = start_stack(ros_env, tmp_path)
    try:
        flight = FlightClient(ros)
        fc.wait_for_line(r"control loop at 10 Hz \(landed, disarmed, at rest\)", timeout=20)
        sim.wait_for_line(r"odometry at 15 Hz \(disarmed, at rest\)", timeout=20)
        t0 = time.monotonic()
        time.sleep(3.0)
        t1 = time.monotonic()
        motors, odom, states = (rate_hz(flight.motors, t0, t1), rate_hz(flight.odom, t0, t1),
                                rate_hz(flight.states, t0, t1))
        assert 0.7 * IDLE_CONTROL_HZ <= motors <= 1.2 * IDLE_CONTROL_HZ, f"motor commands at {motors:.1f} Hz"
        assert 0.7 * IDLE_ODOM_HZ <= odom <= 1.2 * IDLE_ODOM_HZ, f"odometry at {odom:.1f} Hz"
        assert states >= 7.0, f"/flight/state at {states:.1f} Hz"          # state_rate_hz 10, idle or not
        assert flight.mode() == "LANDED"

        takeoff = ros.node.create_client(Trigger, "/takeoff")
        assert takeoff.wait_for_service(timeout_sec=10.0)
        time.sleep(1.0)       # discovery of the reply's route ends too: measured is the controller, not DDS matching
        seen = len(flight.motors)
        asked = time.monotonic()
        future = takeoff.call_async(Trigger.Request())
        first_armed = ros.wait_for(lambda: next((t for t, m in list(flight.motors)[seen:] if m.armed), None), 5.0,
                                   "an armed motor command")
        ros.wait_for(future.done, 5.0, "the take-off reply")
        assert future.result().success, future.result().message
        latency = first_armed - asked
        print(f"take-off asked → first armed motor command: {1000 * latency:.0f} ms")
        assert latency < SLOW_TICK_S, f"{1000 * latency:.0f} ms"
        time.sleep(1.0)
        t0 = time.monotonic()
        time.sleep(1.0)
        t1 = time.monotonic()
        assert rate_hz(flight.motors, t0, t1) > 150 and rate_hz(flight.odom, t0, t1) > 150   # 250 Hz nominal
        flight.wait_mode("HOVER", timeout=40)

        flight.land_and_wait()
        idle_again = len(fc.lines)
        fc.wait_for_line(r"control loop at 10 Hz", timeout=20, start=idle_again)
        response = flight.trigger("/emergency_stop")                     # answered while idling
        assert response.success, response.message
        ros.wait_for(lambda: flight.mode() == "EMERGENCY", 2.0, "EMERGENCY on /flight/state")
    finally:
        sim.stop()
        fc.stop()
