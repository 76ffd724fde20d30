"""The plan vocabulary: the message it mirrors, a complete entry for every action, and the schema, the spoken
description and the panel all taken from it."""
import math
import re
from dataclasses import fields
from pathlib import Path

import pytest

from mmchat_ros.core.panel import plan_action_text
from mmchat_ros.core.plan_schema import SYSTEM_PROMPT, PlanSchemaError, json_schema, parse_llm_output
from mmchat_ros.core.plan_vocabulary import (ACTIONS, ACTIONS_BY_NAME, ARGUMENTS, NUMBER_ARGUMENTS, ActionType,
                                             PlanStep, describe)
from mmchat_ros.msg import PlanAction

MSG_FILE = Path(__file__).resolve().parents[2] / "msg" / "PlanAction.msg"


def test_action_types_are_the_plan_action_constants():
    assert {t.name: t.value for t in ActionType} == {
        name: int(value) for name, value in re.findall(r"^uint8\s+([A-Z_]+)\s*=\s*(\d+)", MSG_FILE.read_text(), re.M)}
    for kind in ActionType:
        assert getattr(PlanAction, kind.name) == kind.value


def test_plan_step_mirrors_plan_action_field_for_field():
    msg_fields = re.findall(r"^(?:uint8|float64|int64|string)\s+([a-z_]+)\s*(?:#.*)?$", MSG_FILE.read_text(), re.M)
    assert msg_fields == [f.name for f in fields(PlanStep)]

    class FakeMsg:                                            # duck-typed PlanAction
        type, x, y, z, yaw_deg, duration_s, speed, target_track_id, target_class = 3, 1.0, 2.0, 0.5, 0, 0, 0.4, -1, ""

    assert PlanStep.from_msg(FakeMsg) == PlanStep(3, 1.0, 2.0, 0.5, 0.0, 0.0, 0.4, -1, "")
    step = PlanStep(ActionType.FOLLOW, speed=0.5, target_track_id=4, target_class="person")
    message = PlanAction(**step.message_fields())
    assert message.type == PlanAction.FOLLOW and PlanStep.from_msg(message) == step


def test_every_action_has_a_name_arguments_words_and_a_panel_entry():
    assert set(ACTIONS) == set(ActionType) and len(ACTIONS_BY_NAME) == len(ActionType)
    assert set(ARGUMENTS) == {f.name for f in fields(PlanStep)} - {"type"}
    for kind, action in ACTIONS.items():
        assert action.type is kind and action.name == kind.name.lower()
        assert set(action.required) <= set(action.arguments) <= set(ARGUMENTS), action
        assert set(action.shown) <= set(action.arguments), action
        assert action.words(PlanStep(kind, target_class="person")), action
        assert action.name in SYSTEM_PROMPT, f"the LLM prompt does not offer {action.name}"
    assert NUMBER_ARGUMENTS == {"x", "y", "z", "yaw_deg", "duration_s", "speed"}


def test_the_schema_takes_actions_and_arguments_from_the_vocabulary():
    variants = json_schema()["properties"]["actions"]["items"]["anyOf"]
    by_name = {variant["properties"]["action"]["const"]: variant for variant in variants}
    assert set(by_name) == set(ACTIONS_BY_NAME)
    for name, variant in by_name.items():
        action = ACTIONS_BY_NAME[name]
        assert set(variant["properties"]) == {"action", *action.arguments}
        assert variant["required"] == ["action", *action.required]
        for argument in action.arguments:
            assert variant["properties"][argument]["type"] == ARGUMENTS[argument].json_type
    with pytest.raises(PlanSchemaError, match="unexpected argument"):
        parse_llm_output('{"actions": [{"action": "rotate", "x": 1}], "reply": ""}')


def test_steps_are_described_in_words_with_their_units():
    steps = [PlanStep(ActionType.TAKEOFF, z=1), PlanStep(ActionType.HOVER, duration_s=2.5),
             PlanStep(ActionType.MOVE_BY, x=-1.0, z=2.0), PlanStep(ActionType.ROTATE, yaw_deg=-90.0),
             PlanStep(ActionType.GOTO, x=1.0, y=2.0, z=math.nan), PlanStep(ActionType.FOLLOW, target_class="dog"),
             PlanStep(ActionType.RETURN_HOME), PlanStep(ActionType.STOP), PlanStep(ActionType.LAND)]
    assert describe(steps) == ("Taking off to 1 meter, then hovering for 2.5 seconds, then flying back 1 meter and up "
                               "2 meters, then turning right 90 degrees, then flying to 1, 2, then following the dog, "
                               "then coming back home, then stopping, then landing")
    assert describe([]) == ""


def test_the_panel_shows_what_the_vocabulary_lists():
    assert plan_action_text(PlanAction(type=PlanAction.GOTO, x=1.0)) == "GOTO x=1 y=0 z=0"      # coordinates: all
    assert plan_action_text(PlanAction(type=PlanAction.HOVER, duration_s=3.0, speed=0.4)) == "HOVER s=3"
    assert plan_action_text(PlanAction(type=PlanAction.ROTATE, yaw_deg=-1.0)) == "ROTATE deg=-1"
    assert plan_action_text(PlanAction(type=PlanAction.FOLLOW, target_track_id=0, target_class="person")) == \
        "FOLLOW track=0 class=person"
    assert plan_action_text(PlanAction(type=PlanAction.RETURN_HOME, speed=1.0)) == "RETURN_HOME"
