"""Simulation in the loop: the real sim and flight_controller processes over DDS, flown by the test.

One vehicle serves the module (start-up costs seconds on 2 cores); every test first brings it to the state it
needs (landed or hovering), so each test can also run alone.
"""
from __future__ import annotations

import math
import os
import signal
import time

import pytest
from geometry_msgs.msg import PoseStamped, TwistStamped

from mmchat_ros.core.geometry import tilt_from_quat
from mmchat_ros.core.rosenv import ros_environment
from mmchat_ros.msg import PlanAction
from tests.helpers.flight import FlightClient, action, start_stack, yaw_of
from tests.helpers.processes import NodeProcess, python_cmd
from mmchat_ros.tools.ros_client import RosClient

pytestmark = [pytest.mark.slow, pytest.mark.sim]
HOVER_LAND_TIMEOUT_S = 4.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    domain = 101 + os.getpid() % 60
    log_dir = tmp_path_factory.mktemp("flight")
    env = ros_environment(domain_id=domain, log_dir=str(log_dir / "ros"))
    processes = start_stack(env, log_dir, fc_params={
        "geofence_min": [-10.0, -10.0, -1.0], "geofence_max": [10.0, 10.0, 6.0]})
    ros = None
    try:
        ros = RosClient(domain, "flight_test")
        yield FlightClient(ros), ros, env, log_dir, processes
    finally:
        if ros is not None:
            ros.close()
        for proc in processes:
            proc.stop()


def test_takeoff_to_1_5_m_and_hold_within_10_cm_for_5_s(stack):
    flight, ros, *_ = stack
    flight.land_and_wait()
    assert flight.trigger("/takeoff").success
    flight.wait_mode("HOVER", timeout=40)
    flight.wait_altitude(1.5, 0.1, timeout=20)
    t0 = time.monotonic()
    time.sleep(5.0)
    window = flight.odom_since(t0)
    assert len(window) > 100, "odometry must keep arriving while hovering"
    heights = [m.pose.pose.position.z for m in window]
    drift = [math.hypot(m.pose.pose.position.x, m.pose.pose.position.y) for m in window]
    assert max(abs(z - 1.5) for z in heights) <= 0.1, (min(heights), max(heights))
    assert max(drift) < 0.1


def test_move_by_2_m_forward_ends_within_15_cm(stack):
    flight, *_ = stack
    flight.take_off_and_settle()
    start = flight.position()
    heading = yaw_of(flight.odom[-1][1])
    result, feedback = flight.execute([action(PlanAction.MOVE_BY, x=2.0)])
    assert result.success, result.message
    assert result.actions_completed == 1
    assert feedback and feedback[-1].action == "MOVE_BY"
    time.sleep(1.0)
    end = flight.position()
    target = (start[0] + 2.0 * math.cos(heading), start[1] + 2.0 * math.sin(heading), start[2])
    error = math.dist(end, target)
    assert error <= 0.15, f"ended {error:.3f} m from the target {target} at {end}"


def test_nan_setpoints_are_rejected_and_the_drone_keeps_hovering(stack):
    flight, ros, *_ = stack
    flight.take_off_and_settle()
    before = flight.position()
    rejections_before = flight.state().rejection_count
    pub_vel = ros.node.create_publisher(TwistStamped, "/cmd_vel/teleop", 10)
    pub_pose = ros.node.create_publisher(PoseStamped, "/cmd_pose/operator", 10)
    ros.wait_for_subscribers(pub_vel)
    ros.wait_for_subscribers(pub_pose)
    bad_vel = TwistStamped()
    bad_vel.header.frame_id = "base_link"
    bad_vel.twist.linear.x = float("nan")
    bad_pose = PoseStamped()
    bad_pose.header.frame_id = "odom"
    bad_pose.pose.position.x, bad_pose.pose.position.z = 1.0, float("inf")
    bad_pose.pose.orientation.w = 1.0
    t0 = time.monotonic()
    for _ in range(20):
        pub_vel.publish(bad_vel)
        pub_pose.publish(bad_pose)
        time.sleep(0.05)
    state = ros.wait_for(lambda: flight.state().rejection_count >= rejections_before + 2 and flight.state(), 5,
                         "rejections counted")
    assert "not a finite number" in state.last_rejection, state.last_rejection
    time.sleep(1.0)
    window = flight.odom_since(t0)
    assert all(math.isfinite(m.pose.pose.position.z) for m in window)
    assert max(math.dist(before, (m.pose.pose.position.x, m.pose.pose.position.y, m.pose.pose.position.z))
               for m in window) < 0.15
    assert flight.mode() == "HOVER"


def test_command_outside_the_geofence_is_rejected_with_a_reason(stack):
    flight, ros, *_ = stack
    flight.take_off_and_settle()
    before = flight.position()
    pub = ros.node.create_publisher(PoseStamped, "/cmd_pose/operator", 10)
    ros.wait_for_subscribers(pub)
    goal = PoseStamped()
    goal.header.frame_id = "odom"
    goal.pose.position.x, goal.pose.position.y, goal.pose.position.z = 50.0, 0.0, 1.5
    goal.pose.orientation.w = 1.0
    count = flight.state().rejection_count
    pub.publish(goal)
    state = ros.wait_for(lambda: flight.state().rejection_count > count and flight.state(), 5, "a rejection")
    assert "geofence" in state.last_rejection and "x" in state.last_rejection, state.last_rejection
    # A plan step outside the fence is refused whole, before anything moves.
    result, _ = flight.execute([action(PlanAction.MOVE_BY, x=1.0), action(PlanAction.GOTO, x=0.0, y=30.0, z=1.5)])
    assert not result.success and "geofence" in result.message, result.message
    time.sleep(0.5)
    assert math.dist(before, flight.position()) < 0.15


def test_killing_the_command_sender_makes_the_drone_hover_then_land(tmp_path):
    # A vehicle of its own, whose hover-then-land timeout is short enough to watch.
    domain = 161 + os.getpid() % 30
    env = ros_environment(domain_id=domain, log_dir=str(tmp_path / "ros"))
    processes = start_stack(env, tmp_path, fc_params={"hover_land_timeout_s": HOVER_LAND_TIMEOUT_S})
    ros = None
    try:
        ros = RosClient(domain, "kill_test")
        fly_sender_then_kill_it(FlightClient(ros), ros, env, tmp_path)
    finally:
        if ros is not None:
            ros.close()
        for proc in processes:
            proc.stop()


def fly_sender_then_kill_it(flight, ros, env, log_dir):
    # The hover-then-land clock starts when the climb completes. A sender started only then spent seconds of
    # those 4 s starting Python and being discovered over DDS (2-4 s on a loaded 2-core machine), and the vehicle
    # sometimes began landing, refusing its commands, before the first one arrived. So the sender starts on the
    # ground, speaks only once the vehicle flies, and the take-off waits until it is matched with the controller.
    sender = NodeProcess(python_cmd("tests.helpers.velocity_sender", "--ros-args", "-p", "vx:=0.4",
                                    "-p", "require_flying:=true"), env, log_dir / "sender.log", name="sender")
    try:
        sender.wait_for_line("velocity sender ready", timeout=30)
        flight.take_off()
        flight.wait_mode("VELOCITY", timeout=40)
        ros.wait_for(lambda: flight.odom[-1][1].twist.twist.linear.x > 0.3, 10, "forward flight at 0.4 m/s")
        os.killpg(sender.proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        state = flight.wait_mode("HOVER", timeout=3)
        assert state.active_source == ""
        ros.wait_for(lambda: abs(flight.odom[-1][1].twist.twist.linear.x) < 0.1, 5, "the vehicle to stop")
        hover_z = flight.position()[2]
        assert abs(hover_z - 1.5) < 0.15
        state = flight.wait_mode("LANDING", timeout=HOVER_LAND_TIMEOUT_S + 5)
        assert time.monotonic() - killed_at >= HOVER_LAND_TIMEOUT_S * 0.8
        flight.wait_mode("LANDED", timeout=40)
        assert flight.position()[2] < 0.15
    finally:
        sender.stop()


def test_land_ends_with_motors_off(stack):
    flight, ros, *_ = stack
    flight.take_off_and_settle()
    assert flight.trigger("/land").success
    flight.wait_mode("LANDED", timeout=60)
    time.sleep(0.5)
    assert flight.position()[2] < 0.15
    q = flight.odom[-1][1].pose.pose.orientation
    tilt_deg = math.degrees(tilt_from_quat((q.w, q.x, q.y, q.z)))
    assert tilt_deg < 10.0, f"landed leaning {tilt_deg:.0f} deg: {flight.describe_motion()}"
    recent = [m for _, m in list(flight.motors)[-50:]]
    assert recent and all(not m.armed and max(m.thrust_n) == 0.0 for m in recent)
    assert flight.state().armed is False


def test_emergency_stop_cuts_the_motors(stack):
    flight, ros, *_ = stack
    flight.take_off_and_settle()
    response = flight.trigger("/emergency_stop")
    assert response.success, response.message
    state = flight.wait_mode("EMERGENCY", timeout=2)
    assert state.armed is False
    time.sleep(0.2)
    recent = [m for _, m in list(flight.motors)[-20:]]
    assert all(not m.armed and max(m.thrust_n) == 0.0 for m in recent)
    # The vehicle falls: it is on the ground within a couple of seconds, and a take-off is refused until reset.
    ros.wait_for(lambda: flight.position()[2] < 0.2, 5, "the vehicle to fall")
    refused = flight.trigger("/takeoff")
    assert not refused.success and refused.message
    # Reset is refused until the crashed vehicle has lain still for a while, then accepted.
    ros.wait_for(lambda: flight.trigger("/reset_emergency").success, 15, "reset once at rest on the ground", poll=0.5)
    flight.wait_mode("LANDED", timeout=5)
