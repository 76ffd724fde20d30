"""The activation policy (core/activation.py) and its file, config/activation_policy.yaml: rules, signals with
hold times, lifecycle steps and parameter changes, without ROS."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from mmchat_ros.core.activation import (SIGNALS, Decision, PolicyError, Signals, asks_about_scene, auth_evidence,
                                        is_flying, load_policy, next_transition, parameter_changes, parse_policy)
from mmchat_ros.core.launch_graph import load_graph

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = ROOT / "config" / "activation_policy.yaml"
HOLD = {name: 1.0 for name in SIGNALS}


def policy(nodes: dict, hold_s: dict | None = None):
    return parse_policy({"hold_s": hold_s or HOLD, "nodes": nodes})


def test_the_shipped_policy_follows_the_issue():
    shipped = load_policy(POLICY_FILE)
    # tracker: full rate (its own max_rate_hz) while following or just asked about the scene, 1 frame/s otherwise
    assert shipped.decide("tracker", set()) == Decision("active", {"max_rate_hz": 1.0})
    for signal in ("following", "scene_asked"):
        assert shipped.decide("tracker", {signal}) == Decision("active", {"max_rate_hz": None})
    # gesture: while flying or when a hand is expected (an operator in front of the camera), else off
    assert shipped.decide("gesture", set()).state == "inactive"
    assert shipped.decide("gesture", {"scene_asked", "following"}).state == "inactive"
    assert shipped.decide("gesture", {"flying"}).state == "active"
    assert shipped.decide("gesture", {"operator_seen"}).state == "active"
    # ... someone in front of the camera whom face_auth cannot (yet) match, or a graph where nobody is enrolled
    # (a fresh install: a thumbs up must still take off)
    assert shipped.decide("gesture", {"face_seen"}).state == "active"
    assert shipped.decide("gesture", {"nobody_enrolled"}).state == "active"
    # face_auth: always on, re-verifying an authorised operator once a second
    assert shipped.decide("face_auth", set(SIGNALS)) == Decision("active", {"reverify_period_s": 1.0})


def test_the_shipped_policy_names_graph_nodes_and_their_live_parameters():
    shipped = load_policy(POLICY_FILE)
    graph = load_graph()
    for node in shipped.nodes:
        assert node in graph.nodes, f"{node} is not a node of config/graph.yaml"
        params = importlib.import_module(f"mmchat_ros.nodes.{node}").PARAMS
        assert "start_state" in params, f"{node} is not a lifecycle node"
        for name in shipped.managed_parameters(node):
            assert params[name].live, f"{node}.{name} is not live: setting it at run time would be refused"


def test_rules_apply_in_order_and_unset_parameters_return_to_the_node_s_own():
    p = policy({"n": [{"when": ["flying"], "state": "active", "parameters": {"a": 1}},
                      {"when": ["following", "scene_asked"], "state": "active", "parameters": {"b": 2}},
                      {"state": "inactive"}]})
    assert p.managed_parameters("n") == ("a", "b")
    assert p.decide("n", {"flying", "following"}) == Decision("active", {"a": 1, "b": None})
    assert p.decide("n", {"scene_asked"}) == Decision("active", {"a": None, "b": 2})
    assert p.decide("n", {"operator_seen"}) == Decision("inactive", {"a": None, "b": None})


@pytest.mark.parametrize("data, complaint", [
    ({"nodes": {}}, "exactly the keys hold_s and nodes"),
    ({"hold_s": {"flying": 1.0}, "nodes": {"n": [{"state": "active"}]}}, "every signal"),
    ({"hold_s": {**HOLD, "flying": -1}, "nodes": {"n": [{"state": "active"}]}}, "hold_s.flying"),
    ({"hold_s": HOLD, "nodes": {"n": [{"state": "asleep"}]}}, "state 'asleep'"),
    ({"hold_s": HOLD, "nodes": {"n": [{"when": ["raining"], "state": "active"}, {"state": "inactive"}]}},
     "when must list signals"),
    ({"hold_s": HOLD, "nodes": {"n": [{"when": ["flying"], "state": "active"}]}}, "last rule must have no 'when'"),
    ({"hold_s": HOLD, "nodes": {"n": [{"state": "active"}, {"state": "inactive"}]}}, "only the last rule"),
    ({"hold_s": HOLD, "nodes": {"n": [{"state": "active", "parameters": {"a": None}}]}}, "parameters must map"),
    ({"hold_s": HOLD, "nodes": {"n": [{"state": "active", "rate": 2}]}}, "a rule has a state"),
])
def test_malformed_policies_are_refused_with_the_entry_named(data, complaint):
    with pytest.raises(PolicyError, match=complaint):
        parse_policy(data, "test.yaml")


def test_a_policy_file_error_names_the_file(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"hold_s": HOLD, "nodes": {"n": [{"state": "on"}]}}))
    with pytest.raises(PolicyError, match=rf"{path}: nodes.n\[0\]: state 'on'"):
        load_policy(path)


def test_signals_hold_for_their_time_after_the_latest_evidence_and_can_be_withdrawn():
    signals = Signals({**HOLD, "scene_asked": 30.0, "following": 3.0})
    signals.saw("scene_asked", 100.0)
    signals.saw("following", 100.0)
    assert signals.holding(102.0) == {"following", "scene_asked"}
    assert signals.holding(129.0) == {"scene_asked"}
    signals.saw("following", 110.0)                  # renewed: holds 3 s from the newest evidence
    assert "following" in signals.holding(112.9) and "following" not in signals.holding(113.1)
    signals.withdraw("following")
    assert signals.holding(110.5) == {"scene_asked"}
    assert signals.holding(130.1) == set()


def test_follow_switched_on_holds_until_it_is_switched_off():
    signals = Signals({**HOLD, "following": 3.0})
    signals.saw("following", 100.0, until_withdrawn=True)      # /follow/enable true, nobody found yet
    assert signals.holding(160.0) == {"following"}
    signals.saw("following", 161.0)                            # /cmd_vel/follow while it follows
    assert signals.holding(200.0) == {"following"}
    signals.withdraw("following")                              # /follow/enable false
    assert signals.holding(200.0) == set()
    signals.saw("following", 201.0)                            # a stray /cmd_vel/follow after: the hold only
    assert signals.holding(203.9) == {"following"} and signals.holding(204.1) == set()


def test_a_face_in_view_holds_until_a_state_says_it_left_then_for_its_hold_time():
    signals = Signals({**HOLD, "face_seen": 15.0})
    signals.saw("face_seen", 100.0, until_withdrawn=True)      # "unknown face": published once, not per frame
    assert signals.holding(190.0) == {"face_seen"}
    signals.release("face_seen", 200.0)                        # "no face"
    assert signals.holding(214.9) == {"face_seen"} and signals.holding(215.1) == set()
    signals.release("face_seen", 300.0)                        # another "no face": nothing to release
    assert signals.holding(300.0) == set()


@pytest.mark.parametrize("operator_id, reason, face, nobody", [
    ("", "unknown face", True, False), ("", "ambiguous match", True, False), ("op1", "face match", True, False),
    ("op1", "face match + pin", True, False), ("op1", "awaiting liveness check: blink", True, False),
    ("", "no face", False, False), ("", "waiting for a face", False, False), ("", "expired", False, False),
    ("", "no operators enrolled", False, True), ("", "database error: unreadable", False, False),
    ("", "face check inactive", False, False),
])
def test_auth_states_tell_whether_a_face_is_in_view_and_whether_anyone_is_enrolled(operator_id, reason, face,
                                                                                   nobody):
    assert auth_evidence(operator_id, reason) == {"face_seen": face, "nobody_enrolled": nobody}


@pytest.mark.parametrize("text, asked", [
    ("what do you see", True), ("is anyone there?", True), ("describe the scene", True),
    ("how many people are in front of you", True), ("take off", False), ("what is your battery level", False),
    ("follow the person on the left", False),
])
def test_questions_about_the_scene_are_told_apart(text, asked):
    assert asks_about_scene(text) is asked


def test_flying_is_any_mode_off_the_ground():
    assert [is_flying(m) for m in ("LANDED", "EMERGENCY", "", "ARMED", "TAKING_OFF", "HOVER", "LANDING")] == \
        [False, False, False, True, True, True, True]


def test_lifecycle_steps_towards_the_wanted_state():
    assert next_transition("unconfigured", "active") == "configure"
    assert next_transition("inactive", "active") == "activate"
    assert next_transition("active", "inactive") == "deactivate"
    assert next_transition("unconfigured", "inactive") == "configure"
    for current, wanted in (("active", "active"), ("inactive", "inactive"), ("finalized", "active"),
                            ("activating", "active")):
        assert next_transition(current, wanted) is None


def test_parameter_changes_set_what_differs_and_restore_the_node_s_own_value():
    original = {"max_rate_hz": 5.0}
    slow = Decision("active", {"max_rate_hz": 1.0})
    full = Decision("active", {"max_rate_hz": None})
    assert parameter_changes(slow, {"max_rate_hz": 5.0}, original) == {"max_rate_hz": 1.0}
    assert parameter_changes(slow, {"max_rate_hz": 1.0}, original) == {}
    changed = parameter_changes(Decision("active", {"max_rate_hz": 2}), {"max_rate_hz": 1.0}, original)
    assert changed == {"max_rate_hz": 2.0} and type(changed["max_rate_hz"]) is float   # ROS refuses int for double
    assert parameter_changes(full, {"max_rate_hz": 1.0}, original) == {"max_rate_hz": 5.0}
    assert parameter_changes(full, {"max_rate_hz": 5.0}, original) == {}
    assert parameter_changes(full, {"max_rate_hz": 1.0}, {}) == {}            # its own value not known yet
    assert parameter_changes(slow, {}, original) == {}                        # the node lacks the parameter


def test_an_unreadable_policy_file_is_named(tmp_path):
    with pytest.raises(PolicyError, match="missing.yaml: cannot read"):
        load_policy(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("hold_s: [1,\n")
    with pytest.raises(PolicyError, match=r"broken.yaml:\d+:\d+: YAML error"):
        load_policy(broken)
