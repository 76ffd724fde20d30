"""Gesture teleoperation rules (core.teleop): the mapping file, edge-triggered actions, velocity limits, the
dead-man rule and gating on flight."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from mmchat_ros.core.gestures import ALL_GESTURES
from mmchat_ros.core.teleop import (ZERO, GestureInput, MappingError, TeleopConfig, TeleopController, Velocity)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MAPPING = ROOT / "config" / "gestures.yaml"
FPS = 30.0


def config(**teleop):
    gestures = {"thumbs_up": {"action": "takeoff"}, "fist": {"action": "land"}, "open_palm": {"velocity": {}},
                "pointing_up": {"velocity": {"z": 0.4}}, "thumb_left": {"velocity": {"yaw_rate_deg_s": 30.0}},
                "victory": {"action": "follow_toggle"},
                "swipe_left": {"velocity": {"y": 0.5}, "duration_s": 1.0}}
    return TeleopConfig.from_dict({"teleop": teleop, "gestures": gestures})


def feed(controller, name, frames, t0=0.0, **gesture):
    """``frames`` gesture messages at FPS; returns (time after, outputs)."""
    outputs = []
    for i in range(frames):
        outputs.append(controller.on_gesture(t0 + i / FPS, GestureInput(name, **gesture)))
    return t0 + frames / FPS, outputs


NO_HAND = dict(num_hands=0, stable=False, confidence=0.0)


# ------------------------------------------------------------------------------------------------- mapping
def test_the_default_mapping_file_loads_and_uses_known_gestures():
    cfg = TeleopConfig.load(DEFAULT_MAPPING)
    assert set(cfg.bindings) <= set(ALL_GESTURES)
    assert cfg.bindings["thumbs_up"].action == "takeoff" and cfg.bindings["fist"].action == "land"
    assert cfg.bindings["open_palm"].velocity == ZERO
    assert cfg.bindings["pointing_up"].velocity.z > 0 > cfg.bindings["pointing_down"].velocity.z
    assert cfg.bindings["thumb_left"].velocity.yaw_rate > 0 > cfg.bindings["thumb_right"].velocity.yaw_rate
    assert cfg.bindings["victory"].action == "follow_toggle"
    assert cfg.bindings["swipe_left"].duration_s > 0
    assert cfg.deadman_ms == 500 and cfg.limits.max_speed_z == 0.5


@pytest.mark.parametrize("data,message", [
    ({"gestures": {"fist": {"action": "explode"}}}, "unknown action 'explode'"),
    ({"gestures": {"fist": {"action": "land", "velocity": {"z": 1}}}}, "exactly one of"),
    ({"gestures": {"fist": {}}}, "exactly one of"),
    ({"gestures": {"fist": {"velocity": {"up": 1}}}}, "unknown velocity keys"),
    ({"gestures": {"fist": {"velocity": {"z": "fast"}}}}, "velocity.z must be a finite number"),
    ({"gestures": {"fist": {"velocity": {"z": float("nan")}}}}, "finite"),
    ({"gestures": {"fist": "land"}}, "expected a mapping"),
    ({"gestures": {"fist": {"action": "land", "speed": 1}}}, "unknown keys"),
    ({"gestures": {}, "teleop": {"deadman_ms": 0}}, "deadman_ms must be > 0"),
    ({"gestures": {}, "teleop": {"limits": {"max_speed_z": -1}}}, "max_speed_z must be >= 0"),
    ({"gestures": {}, "teleop": {"min_confidence": 2}}, "min_confidence must be in"),
    ({"gestures": {}, "teleop": {"deadman": 5}}, "unknown teleop keys"),
    ({"gesture": {}}, "unknown top-level keys"),
])
def test_bad_mappings_are_refused_naming_the_problem(data, message):
    with pytest.raises(MappingError, match=message):
        TeleopConfig.from_dict(data)


def test_load_reports_the_file_for_bad_yaml_and_missing_files(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("gestures: {fist: [unclosed\n")
    with pytest.raises(MappingError, match="not valid YAML"):
        TeleopConfig.load(broken)
    with pytest.raises(MappingError, match="cannot read"):
        TeleopConfig.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"gestures": {"fist": {"action": "nope"}}}))
    with pytest.raises(MappingError, match=str(bad)):
        TeleopConfig.load(bad)


# ------------------------------------------------------------------------------------------------- actions
def test_an_action_fires_once_while_its_gesture_is_held():
    controller = TeleopController(config())
    _, outputs = feed(controller, "thumbs_up", 60)
    assert [a for o in outputs for a in o.actions] == ["takeoff"]
    assert outputs[0].actions == ("takeoff",)


def test_an_action_needs_a_stable_confident_gesture():
    controller = TeleopController(config(min_confidence=0.6))
    _, unstable = feed(controller, "thumbs_up", 10, stable=False)
    _, unsure = feed(controller, "thumbs_up", 10, t0=1.0, confidence=0.4)
    assert not any(o.actions for o in unstable + unsure)


def test_an_action_fires_again_after_release_but_not_within_the_cooldown():
    controller = TeleopController(config(action_cooldown_s=2.0))
    t, first = feed(controller, "fist", 10)
    t, _ = feed(controller, "open_palm", 5, t0=t)
    t, too_soon = feed(controller, "fist", 10, t0=t)
    t, _ = feed(controller, "open_palm", 5, t0=t + 2.0)
    _, later = feed(controller, "fist", 10, t0=t)
    fired = [len([a for o in batch for a in o.actions]) for batch in (first, too_soon, later)]
    assert fired == [1, 0, 1]


def test_a_frame_without_the_hand_does_not_re_arm_an_action():
    controller = TeleopController(config(action_cooldown_s=0.0))
    t, first = feed(controller, "thumbs_up", 5)
    t, _ = feed(controller, "none", 2, t0=t, **NO_HAND)          # tracking dropout
    _, after = feed(controller, "thumbs_up", 5, t0=t)
    assert sum(len(o.actions) for o in first + after) == 1


def test_follow_toggle_is_an_action_too():
    controller = TeleopController(config())
    _, outputs = feed(controller, "victory", 3)
    assert outputs[0].actions == ("follow_toggle",)


# ------------------------------------------------------------------------------------------------ velocity
def test_a_held_motion_gesture_commands_its_velocity():
    controller = TeleopController(config())
    _, outputs = feed(controller, "pointing_up", 5)
    assert all(o.velocity == Velocity(z=0.4) for o in outputs)
    _, turning = feed(controller, "thumb_left", 2, t0=1.0)
    assert turning[-1].velocity.yaw_rate == pytest.approx(math.radians(30.0))


def test_a_hand_without_a_motion_gesture_holds_zero_velocity():
    controller = TeleopController(config())
    for name, extra in (("open_palm", {}), ("pointing_up", {"stable": False}), ("ok", {}), ("fist", {}),
                        ("none", {"stable": False})):
        output = controller.on_gesture(1.0, GestureInput(name, **extra))
        assert output.velocity == ZERO, (name, output)
        assert "hover" in output.reason or name == "open_palm"      # open palm maps to zero velocity itself


def test_velocities_are_clamped_to_the_limits():
    cfg = TeleopConfig.from_dict({
        "teleop": {"limits": {"max_speed_xy": 1.0, "max_speed_z": 0.5, "max_yaw_rate_deg_s": 20.0}},
        "gestures": {"fist": {"velocity": {"x": 3.0, "y": 4.0, "z": -2.0, "yaw_rate_deg_s": -90.0}}}})
    v = TeleopController(cfg).on_gesture(0.0, GestureInput("fist")).velocity
    assert math.hypot(v.x, v.y) == pytest.approx(1.0) and v.x / v.y == pytest.approx(0.75)   # direction kept
    assert v.z == -0.5 and v.yaw_rate == pytest.approx(-math.radians(20.0))


def test_a_swipe_commands_its_velocity_for_its_duration():
    controller = TeleopController(config())
    controller.on_gesture(0.0, GestureInput("open_palm"))
    swipe = controller.on_gesture(0.1, GestureInput("swipe_left", is_dynamic=True))
    assert swipe.velocity == Velocity(y=0.5)
    during = controller.on_gesture(0.9, GestureInput("open_palm"))
    after = controller.on_gesture(1.2, GestureInput("open_palm"))
    assert during.velocity == Velocity(y=0.5) and after.velocity == ZERO


# -------------------------------------------------------------------------------------------------- dead-man
def test_dead_man_bridges_short_dropouts_then_stops_then_releases():
    controller = TeleopController(config(deadman_ms=500, stop_ms=300))
    t, _ = feed(controller, "pointing_up", 10)
    last_hand = t - 1 / FPS
    outputs = {}
    for ms in (100, 400, 600, 750, 900, 1500):
        outputs[ms] = controller.on_gesture(last_hand + ms / 1000, GestureInput("none", **NO_HAND))
    assert outputs[100].velocity == Velocity(z=0.4) and outputs[400].velocity == Velocity(z=0.4)
    assert outputs[600].velocity == ZERO and outputs[750].velocity == ZERO and "dead-man" in outputs[600].reason
    assert outputs[900].velocity is None and outputs[1500].velocity is None
    # The hand coming back takes control again.
    back = controller.on_gesture(last_hand + 2.0, GestureInput("pointing_up"))
    assert back.velocity == Velocity(z=0.4)


def test_dead_man_applies_when_gesture_messages_stop_altogether():
    controller = TeleopController(config(deadman_ms=500, stop_ms=300))
    t, _ = feed(controller, "thumb_left", 5)
    assert controller.on_tick(t + 0.2) is None            # messages still fresh: they drive the output
    stopping = controller.on_tick(t + 0.6)
    assert stopping is not None and stopping.velocity == ZERO
    assert controller.on_tick(t + 1.0).velocity is None


def test_dead_man_cancels_a_swipe_in_progress():
    controller = TeleopController(config(deadman_ms=300, stop_ms=200))
    controller.on_gesture(0.0, GestureInput("swipe_left", is_dynamic=True))
    kept = controller.on_gesture(0.2, GestureInput("none", **NO_HAND))
    stopped = controller.on_gesture(0.4, GestureInput("none", **NO_HAND))
    assert kept.velocity == Velocity(y=0.5) and stopped.velocity == ZERO


def test_nothing_is_sent_before_any_hand_was_seen():
    controller = TeleopController(config())
    assert controller.on_gesture(0.0, GestureInput("none", **NO_HAND)).velocity is None
    assert controller.on_tick(5.0).velocity is None


# ---------------------------------------------------------------------------------------------------- gating
def test_no_velocity_while_not_flying_but_actions_still_fire():
    controller = TeleopController(config())
    grounded = controller.on_gesture(0.0, GestureInput("thumbs_up"), flying=False)
    assert grounded.velocity is None and grounded.actions == ("takeoff",) and "not flying" in grounded.reason
    climbing = controller.on_gesture(0.1, GestureInput("pointing_up"), flying=False)
    assert climbing.velocity is None
    assert controller.on_gesture(0.2, GestureInput("pointing_up"), flying=True).velocity == Velocity(z=0.4)
