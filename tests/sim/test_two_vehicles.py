"""Several vehicles in one ROS domain (issue 17, item 3): two robot parts (simulator + flight controller, from
config/graph.yaml with vehicle_name:=drone1 / drone2 and start positions 3 m apart), each under its own namespace.

Shown (one test: starting four nodes costs seconds on 2 cores): the graph keeps them apart (each controller's topics all lie in its own namespace, one publisher and one
subscriber per vehicle topic, nothing on the root names), and flying them with different commands moves each only as
commanded: drone1 takes off while drone2 stays on the ground; drone2 then takes off and flies 1 m forward while
drone1 holds its hover.

Then the ground side (second test): one planner with vehicles:=[drone1, drone2] takes addressed commands, typed and
spoken ("drone one, take off", "drone two, take off", "drone two, go up one metre"), and each flies only the drone
it names; a plan that would bring drone1 within min_separation_m of drone2 is refused with drone2 named, and an
address to a drone that is not there moves nothing.
"""
from __future__ import annotations

import math
import time

import pytest

from std_msgs.msg import String

from mmchat_ros.core.launch_graph import load_graph
from mmchat_ros.msg import PlanAction, Transcript
from mmchat_ros.srv import SubmitCommand
from mmchat_ros.tools.flight_client import FlightClient, action
from mmchat_ros.tools.launcher import resolve_executable
from tests.helpers.domains import unused_domain_id
from tests.helpers.processes import python_cmd

pytestmark = [pytest.mark.slow, pytest.mark.sim]

STARTS = {"drone1": (0.0, 0.0, 0.0), "drone2": (3.0, 0.0, 0.0)}
ROBOT_NODES = ("sim", "flight_controller")
# What every rclpy node publishes or subscribes outside its namespace.
ROOT_TOPICS = {"/rosout", "/parameter_events"}
TEST_NODE = "test_client"   # the ros fixture's node (tools/ros_client.py)
# Each flight controller steps once per odometry message of its own simulator (its namespace's clock): on a busy
# 2-core machine a starved simulator then slows its vehicle's flight down instead of leaving its controller to
# fly on stale odometry (take-offs abandoned, drifting hovers).
LOCKSTEP = {"use_sim_time": "true"}


@pytest.fixture
def domain_id() -> int:
    return unused_domain_id()   # a stray simulator of another run on our domain would be cross-talk we did not make


@pytest.fixture
def vehicles(spawn, ros):
    graph = load_graph()
    started = []
    for vehicle, start in STARTS.items():
        specs = {spec.name: spec for spec in graph.resolve(
            "sim", {"part": "robot", "vehicle_name": vehicle, "start_position": str(list(start)), **LOCKSTEP})}
        specs["sim"].parameters["camera_enabled"] = False    # 2 cores: no rendering
        for name in ROBOT_NODES:
            assert specs[name].namespace == f"/{vehicle}"
            started.append(spawn([resolve_executable(specs[name].executable), *specs[name].ros_args()],
                                 name=f"{vehicle}_{name}"))
    for process in started:
        process.wait_for_line("simulator ready|flight controller ready", timeout=90)
    return {vehicle: FlightClient(ros, f"/{vehicle}") for vehicle in STARTS}


def horizontal(flight: FlightClient) -> tuple[float, float]:
    x, y, _ = flight.position()
    return x, y


def largest_move(flight: FlightClient, since: float, origin) -> float:
    return max(math.dist(origin, (m.pose.pose.position.x, m.pose.pose.position.y, m.pose.pose.position.z))
               for m in flight.odom_since(since))


def endpoints(infos) -> set[tuple[str, str]]:
    """(node name, namespace) of a topic's publishers or subscribers, the test's own node left out."""
    return {(info.node_name, info.node_namespace) for info in infos if info.node_name != TEST_NODE}


def assert_each_vehicle_keeps_to_its_namespace(node):
    names = set(node.get_node_names_and_namespaces())
    for vehicle in STARTS:
        assert {(name, f"/{vehicle}") for name in ROBOT_NODES} <= names, names
        for name in ROBOT_NODES:
            topics = [topic for topic, _ in node.get_publisher_names_and_types_by_node(name, f"/{vehicle}")
                      + node.get_subscriber_names_and_types_by_node(name, f"/{vehicle}")]
            strays = [t for t in topics if not t.startswith(f"/{vehicle}/") and t not in ROOT_TOPICS]
            assert not strays, f"/{vehicle}/{name} uses topics outside its namespace: {strays}"
        # who talks to whom on the control loop's topics: this vehicle's nodes alone (and this test, listening)
        for topic, publisher, subscriber in (("odom", "sim", "flight_controller"), ("imu", "sim", "flight_controller"),
                                             ("motor_command", "flight_controller", "sim")):
            assert endpoints(node.get_publishers_info_by_topic(f"/{vehicle}/{topic}")) == {(publisher, f"/{vehicle}")}
            assert endpoints(node.get_subscriptions_info_by_topic(f"/{vehicle}/{topic}")) == {
                (subscriber, f"/{vehicle}")}, topic
        assert {"takeoff", "land", "emergency_stop"} <= {
            service.rsplit("/", 1)[-1] for service, _ in node.get_service_names_and_types_by_node(
                "flight_controller", f"/{vehicle}") if service.startswith(f"/{vehicle}/")}
    for topic in ("/odom", "/motor_command", "/flight/state", "/cmd_vel/operator", "/clock"):
        assert node.count_publishers(topic) == 0 and node.count_subscribers(topic) == 0, topic


def once_discovered(check, timeout_s: float = 20.0) -> None:
    """Run a check of the ROS graph until it holds, or raise its last failure: discovery of every node's
    publishers, subscriptions and services completes over a few seconds (a service was missing once at the first
    look in a full run)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_two_vehicles_in_one_domain_fly_different_commands_without_cross_talk(vehicles, ros):
    once_discovered(lambda: assert_each_vehicle_keeps_to_its_namespace(ros.node))
    drone1, drone2 = vehicles["drone1"], vehicles["drone2"]
    for vehicle, flight in vehicles.items():
        assert math.dist(horizontal(flight), STARTS[vehicle][:2]) < 0.05, (vehicle, flight.position())
        assert flight.mode() == "LANDED"

    # drone1 up; drone2 stays where it is, disarmed
    drone2_ground = drone2.position()
    t0 = time.monotonic()
    drone1.take_off_and_settle()
    assert math.dist(horizontal(drone1), STARTS["drone1"][:2]) < 0.15
    assert drone2.mode() == "LANDED"
    assert largest_move(drone2, t0, drone2_ground) < 0.02
    assert not any(motors.armed for at, motors in list(drone2.motors) if at >= t0)

    # drone2 up and 1 m forward; drone1 holds its hover
    drone1_hover = drone1.position()
    t1 = time.monotonic()
    drone2.take_off_and_settle()
    start = drone2.position()
    result, _ = drone2.execute([action(PlanAction.MOVE_BY, x=1.0)])
    assert result.success, f"{result.message} ({drone2.describe_motion()}, from {start})"
    ros.wait_for(lambda: math.hypot(*(getattr(drone2.odom[-1][1].twist.twist.linear, a) for a in "xyz")) < 0.05, 10,
                 f"drone2 to come to rest ({drone2.describe_motion()})")
    end = drone2.position()
    error, drift = math.dist(end, (start[0] + 1.0, start[1], start[2])), largest_move(drone1, t1, drone1_hover)
    print(f"\n[two vehicles] drone2 ended {error:.3f} m from its target; drone1 moved at most {drift:.3f} m meanwhile")
    assert error < 0.15, (start, end)
    assert drift < 0.15, f"drone1 left its hover at {drone1_hover}: {drone1.describe_motion()}"
    assert drone1.mode() == "HOVER"
    # the plan went to drone2's controller alone
    assert all(state.active_source != "plan" for at, state in list(drone1.states) if at >= t1)
    assert drone1.state().rejection_count == 0


def flown_by(flight: FlightClient, since: float) -> bool:
    """Whether the vehicle's controller ran a plan since then."""
    return any(state.active_source == "plan" for at, state in list(flight.states) if at >= since)


def test_one_planner_flies_only_the_drone_each_command_names(vehicles, spawn, ros):
    planner = spawn(python_cmd("mmchat_ros.nodes.planner", "--ros-args", "-p", "llm_backend:=none",
                               "-p", "intent_classifier:=false", "-p", "require_authorisation:=false",
                               "-p", "vehicles:=[drone1,drone2]"), name="planner")
    for vehicle in STARTS:
        planner.wait_for_line(f"checking plans against the flight controller's envelope for {vehicle}", timeout=60)
    drone1, drone2 = vehicles["drone1"], vehicles["drone2"]
    replies = ros.collect(String, "/tts/say")
    say = ros.node.create_publisher(Transcript, "/speech/transcript", 10)
    ros.wait_for(lambda: say.get_subscription_count() > 0, 20, "the planner to subscribe to /speech/transcript")

    def typed(text: str):
        return ros.call(SubmitCommand, "/submit_command", SubmitCommand.Request(text=text), timeout=20)

    def settle(flight: FlightClient, what: str):
        ros.wait_for(lambda: flight.mode() == "HOVER" and math.hypot(*(
            getattr(flight.odom[-1][1].twist.twist.linear, a) for a in "xyz")) < 0.05, 60, what)

    # typed, to drone1: drone2 stays on the ground, disarmed
    t0, drone2_ground = time.monotonic(), drone2.position()
    response = typed("drone one, take off")
    assert response.accepted, response.reply
    settle(drone1, f"drone1 to hover after its take-off ({drone1.describe_motion()})")
    assert drone1.position()[2] > 1.3
    assert drone2.mode() == "LANDED" and largest_move(drone2, t0, drone2_ground) < 0.02
    assert not flown_by(drone2, t0)

    # spoken, to drone2: drone1 holds its hover
    t1, drone1_hover = time.monotonic(), drone1.position()
    say.publish(Transcript(text="drone two, take off", confidence=0.9, language="en"))
    drone2.wait_mode("TAKING_OFF", timeout=20)
    settle(drone2, f"drone2 to hover after its take-off ({drone2.describe_motion()})")
    start = drone2.position()

    # typed, to drone2 again
    response = typed("drone two, go up one metre")
    assert response.accepted, response.reply
    ros.wait_for(lambda: drone2.position()[2] > start[2] + 0.8, 30, f"drone2 to climb ({drone2.describe_motion()})")
    settle(drone2, f"drone2 to hover after its climb ({drone2.describe_motion()})")
    climb, drift = drone2.position()[2] - start[2], largest_move(drone1, t1, drone1_hover)
    print(f"\n[two vehicles, one planner] drone2 climbed {climb:.3f} m; drone1 moved at most {drift:.3f} m meanwhile")
    assert abs(climb - 1.0) < 0.25 and math.dist(drone2.position()[:2], start[:2]) < 0.15   # it flew the command
    assert drift < 0.15 and drone1.mode() == "HOVER" and not flown_by(drone1, t1)

    # 3 m forward would take drone1 under drone2 (1 m below it): refused, nothing moves
    t2, drone1_hover = time.monotonic(), drone1.position()
    response = typed("drone one, fly forward three metres")
    assert not response.accepted and "drone2" in response.reply and "minimum separation" in response.reply, \
        response.reply
    # an address to a drone that is not there: refused, the selection (drone1) does not move either
    response = typed("drone three, land")
    assert not response.accepted and "no drone3" in response.reply, response.reply
    time.sleep(1.0)
    assert largest_move(drone1, t2, drone1_hover) < 0.1 and not flown_by(drone1, t2) and not flown_by(drone2, t2)
    ros.wait_for_message(replies, lambda m: "no drone3" in m.data, what="the spoken refusal")
    assert drone1.state().rejection_count == 0 and drone2.state().rejection_count == 0
