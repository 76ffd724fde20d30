"""The operator panel's model: event framing, state summaries, command validation, per-page event queues."""
import json
import math

import pytest

from mmchat_ros.core.panel import (EventFanout, PanelState, auth_summary, flight_summary, plan_text, sse_event,
                                   validate_command)
from mmchat_ros.msg import ActionPlan, AuthState, FlightState, PlanAction


def parse_sse(event: bytes):
    lines = event.decode().split("\n")
    assert event.endswith(b"\n\n") and lines[0].startswith("event: ") and lines[1].startswith("data: ")
    return lines[0][7:], json.loads(lines[1][6:])


def test_events_are_one_json_line_and_nan_becomes_null():
    name, data = parse_sse(sse_event("flight", {"battery": float("nan"), "text": "a\nb", "xs": [1.0, math.inf]}))
    assert name == "flight" and data == {"battery": None, "text": "a\nb", "xs": [1.0, None]}


def test_flight_and_auth_summaries_read_the_messages():
    state = FlightState(mode="HOVER", armed=True, battery_percentage=float("nan"), active_source="plan",
                        rejection_count=2, last_rejection="too fast")
    state.pose.position.z = 1.49
    state.pose.orientation.w = 1.0
    state.velocity.linear.x, state.velocity.linear.y = 3.0, 4.0
    summary = flight_summary(state)
    assert summary["mode"] == "HOVER" and summary["altitude"] == pytest.approx(1.49)
    assert summary["speed"] == pytest.approx(5.0) and summary["yaw_deg"] == 0.0
    assert math.isnan(summary["battery"]) and summary["rejection_count"] == 2
    auth = auth_summary(AuthState(authorised=True, operator_name="Ada", confidence=0.9, reason="face match"))
    assert auth["authorised"] and auth["operator"] == "Ada" and auth["reason"] == "face match"


def test_plan_text_lists_the_actions():
    plan = ActionPlan(source="grammar", utterance="take off then fly forward 2 m", actions=[
        PlanAction(type=PlanAction.TAKEOFF), PlanAction(type=PlanAction.MOVE_BY, x=2.0),
        PlanAction(type=PlanAction.ROTATE, yaw_deg=-90.0), PlanAction(type=99)])
    assert plan_text(plan) == ('plan from grammar: "take off then fly forward 2 m" -> TAKEOFF, MOVE_BY x=2 y=0 z=0, '
                               'ROTATE deg=-90, UNKNOWN(99)')


@pytest.mark.parametrize("text,problem", [("", "empty"), ("   \n", "empty"), (None, "text"), ("x" * 501, "longer")])
def test_commands_must_be_short_text(text, problem):
    with pytest.raises(ValueError, match=problem):
        validate_command(text)


def test_commands_are_trimmed():
    assert validate_command("  take   off \n") == "take off"


def test_a_slow_page_loses_frames_never_state():
    fanout = EventFanout(max_queue=3)
    slow = fanout.subscribe([b"snapshot"])
    fast = fanout.subscribe()
    assert fanout.clients == 2
    fanout.publish(b"frame1", droppable=True)
    fanout.publish(b"frame2", droppable=True)
    assert fanout.publish(b"frame3", droppable=True) == 1       # the slow page's queue is full
    fanout.publish(b"state", droppable=False)                   # pushes out the oldest instead
    assert [slow.get_nowait() for _ in range(3)] == [b"frame1", b"frame2", b"state"]
    assert [fast.get_nowait() for _ in range(3)] == [b"frame2", b"frame3", b"state"]
    fanout.unsubscribe(slow)
    assert fanout.clients == 1


def test_state_snapshot_keeps_the_last_log_entries():
    state = PanelState(log_length=2)
    for i in range(3):
        state.add_log("plan", f"p{i}", t=float(i))
    state.set_flight({"mode": "LANDED"})
    snap = state.snapshot()
    assert [e["text"] for e in snap["log"]] == ["p1", "p2"] and snap["flight"] == {"mode": "LANDED"}
    assert snap["auth"] is None
