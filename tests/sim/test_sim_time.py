"""Faster than real time: the simulator at 2x publishes /clock and sim-time stamps; the flight controller with
use_sim_time steps once per odometry message and flies exactly as in real time."""
import time

import pytest
from rosgraph_msgs.msg import Clock

from tests.helpers.flight import FlightClient, start_stack

pytestmark = [pytest.mark.slow, pytest.mark.sim]


def test_take_off_and_hover_faster_than_real_time(ros, ros_env, tmp_path):
    processes = start_stack(ros_env, tmp_path, sim_params={"real_time_factor": 2.0, "stamp_with_sim_time": True},
                            fc_params={"use_sim_time": True})
    try:
        clock = ros.collect(Clock, "/clock", "sensor")
        flight = FlightClient(ros)
        ros.wait_for(lambda: len(clock) > 10, 10, "/clock")
        wall0, sim0 = time.monotonic(), clock[-1][1].clock.sec + clock[-1][1].clock.nanosec * 1e-9
        flight.take_off_and_settle(1.5)
        time.sleep(2.0)
        wall = time.monotonic() - wall0
        sim = clock[-1][1].clock.sec + clock[-1][1].clock.nanosec * 1e-9 - sim0
        assert sim / wall > 1.3, f"sim advanced {sim:.1f} s in {wall:.1f} s of wall time"
        z = [m.pose.pose.position.z for m in flight.odom_since(time.monotonic() - 1.0)]
        assert z and max(abs(v - 1.5) for v in z) < 0.1
        stamp = flight.odom[-1][1].header.stamp
        assert abs(stamp.sec + stamp.nanosec * 1e-9 - (sim0 + sim)) < 5.0     # odometry carries sim time
        flight.land_and_wait()
    finally:
        for proc in processes:
            proc.stop()
