"""The planner node with vehicles:=[drone1, drone2] as a real process, against stand-in flight controllers (each
vehicle's flight state and execute_plan action): a command goes to the vehicle it names, or to the one named last;
an address alone selects; unknown vehicles, plans that would bring the drones closer than min_separation_m, and
plans while another drone's position is unknown are refused with the reason, and nothing is sent."""
from __future__ import annotations

import threading

import pytest
from rclpy.action import ActionServer
from std_msgs.msg import String

from mmchat_ros.action import ExecutePlan
from mmchat_ros.msg import FlightState, PlanAction
from mmchat_ros.nodes.common import STATE_QOS
from mmchat_ros.srv import SubmitCommand
from tests.helpers.processes import python_cmd

pytestmark = pytest.mark.slow

HOVERING = {"drone1": (0.0, 0.0, 1.5), "drone2": (3.0, 0.0, 1.5)}


@pytest.fixture
def planner(spawn):
    node = spawn(python_cmd("mmchat_ros.nodes.planner", "--ros-args", "-p", "llm_backend:=none",
                            "-p", "intent_classifier:=false", "-p", "require_authorisation:=false",
                            "-p", "vehicles:=[drone1,drone2]", "-p", "min_separation_m:=2.0"), name="planner")
    node.wait_for_line("planner ready", timeout=60)
    return node


def test_commands_go_to_the_vehicle_named_and_unsafe_or_unknown_ones_are_refused(planner, ros):
    goals: list[tuple[str, list[int]]] = []
    for vehicle in HOVERING:
        def execute(goal_handle, vehicle=vehicle):
            goals.append((vehicle, [a.type for a in goal_handle.request.plan.actions]))
            goal_handle.succeed()
            return ExecutePlan.Result(success=True, actions_completed=len(goal_handle.request.plan.actions),
                                      message="done")
        ActionServer(ros.node, ExecutePlan, f"/{vehicle}/execute_plan", execute)
    publishers = {v: ros.node.create_publisher(FlightState, f"/{v}/flight/state", STATE_QOS) for v in HOVERING}
    publishing = {"drone1"}            # drone2's state is not heard at first
    stop = threading.Event()

    def publish():
        while not stop.is_set():
            for vehicle in list(publishing):
                state = FlightState(mode="HOVER", armed=True, battery_percentage=0.9)
                state.pose.position.x, state.pose.position.y, state.pose.position.z = HOVERING[vehicle]
                state.pose.orientation.w = 1.0
                publishers[vehicle].publish(state)
            stop.wait(0.1)
    threading.Thread(target=publish, daemon=True).start()
    replies = ros.collect(String, "/tts/say")

    def typed(text: str):
        return ros.call(SubmitCommand, "/submit_command", SubmitCommand.Request(text=text), timeout=20)

    try:
        unknown = "I don't know where drone2 is yet, so drone1 will not move."
        ros.wait_for(lambda: typed("drone one, go up one metre").reply == unknown, 20,
                     "the refusal once the planner has drone1's state")

        publishing.add("drone2")
        # refused ("on the ground") until the planner hears drone2's hover
        ros.wait_for(lambda: typed("drone two, go up one metre").accepted, 20, "drone2's state at the planner")
        ros.wait_for(lambda: goals, 10, "drone2's plan")
        assert goals == [("drone2", [PlanAction.MOVE_BY])]
        assert typed("go down one metre").accepted                      # to drone2, named last
        response = typed("drone one")
        assert not response.accepted and response.reply == "drone1 is listening."
        assert typed("fly left one metre").accepted                     # now to drone1
        ros.wait_for(lambda: len(goals) == 3, 10, "the two plans")
        assert goals[1:] == [("drone2", [PlanAction.MOVE_BY]), ("drone1", [PlanAction.MOVE_BY])]

        # 3 m forward would take drone1 where drone2 hovers
        response = typed("drone one, fly forward three metres")
        assert not response.accepted
        assert response.reply == ("I won't do that: drone1's plan would come within 0.0 m of drone2 (minimum "
                                  "separation 2 m).")
        response = typed("drone three, land")
        assert not response.accepted and response.reply.startswith("There is no drone3 here")
        ros.wait_for_message(replies, lambda m: m.data.startswith("There is no drone3"), what="the spoken refusal")
        assert len(goals) == 3
        planner.wait_for_line(r"typed command 'drone one, fly forward three metres' for drone1 → refuse")
    finally:
        stop.set()

