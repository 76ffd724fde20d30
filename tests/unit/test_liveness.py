"""core.liveness on landmark sets: eye aspect ratio, yaw ratio, and the challenge state machine (a static or moved
photo never passes; a blink or the asked turn within the time does; the wrong turn, a swap or a timeout fail)."""
from __future__ import annotations

import random

import numpy as np
import pytest

from mmchat_ros.core import liveness as lv


def face(eye_open: float = 1.0, yaw: float = 0.0, shift=(0.0, 0.0), scale: float = 1.0, roll_deg: float = 0.0
         ) -> np.ndarray:
    """468 landmarks of a schematic 100 px face: eyes open by ``eye_open`` (1 = EAR 0.3), nose moved sideways by
    ``yaw`` (share of the half width, as a turning head does), then the whole set moved, scaled and rolled."""
    p = np.zeros((468, 2))
    p[:, 0] = np.linspace(-50, 50, 468)   # filler spread over the face width
    gap = 6.0 * eye_open
    for eye, cx in ((lv.LEFT_EYE, -25.0), (lv.RIGHT_EYE, 25.0)):
        c1, u1, u2, c2, l2, l1 = eye
        p[c1], p[c2] = (cx - 10, -10), (cx + 10, -10)
        p[u1], p[u2] = (cx - 4, -10 - gap / 2), (cx + 4, -10 - gap / 2)
        p[l1], p[l2] = (cx - 4, -10 + gap / 2), (cx + 4, -10 + gap / 2)
    p[lv.CHEEK_IMAGE_LEFT], p[lv.CHEEK_IMAGE_RIGHT] = (-50, 5), (50, 5)
    p[lv.NOSE_TIP] = (50 * yaw, 10)
    a = np.radians(roll_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (p @ rot.T) * scale + np.array(shift)


def test_ratios():
    assert lv.mean_ear(face()) == pytest.approx(0.3)
    assert lv.mean_ear(face(eye_open=0.1)) == pytest.approx(0.03)
    assert lv.yaw_ratio(face()) == pytest.approx(0.0, abs=1e-9)
    assert lv.yaw_ratio(face(yaw=0.5)) > 0.4 and lv.yaw_ratio(face(yaw=-0.5)) < -0.4
    # A photo moved, scaled or rolled in front of the camera keeps both ratios.
    for moved in (face(shift=(80, -30)), face(scale=1.7), face(roll_deg=25), face(shift=(5, 5), roll_deg=-15)):
        assert lv.mean_ear(moved) == pytest.approx(0.3) and lv.yaw_ratio(moved) == pytest.approx(0.0, abs=1e-9)


def run(kind: str, frames) -> lv.LivenessChallenge:
    challenge = lv.LivenessChallenge(rng=random.Random(0))
    challenge.rng.choice = lambda options: kind   # the test picks the challenge
    t = 0.0
    for points in frames:
        challenge.observe(points, t)
        t += 0.2
    return challenge


NEUTRAL = [face()] * 3


@pytest.mark.parametrize("kind", lv.CHALLENGES)
def test_a_static_or_moved_photo_never_passes(kind):
    still = run(kind, NEUTRAL + [face()] * 40)
    assert still.state == lv.FAILED and "within" in still.reason
    moved = run(kind, NEUTRAL + [face(shift=(3 * i, 2 * i), roll_deg=i, scale=1 + 0.01 * i) for i in range(40)])
    assert moved.state == lv.FAILED, moved.reason


def test_blink_and_turns_pass_in_time():
    blink = run(lv.BLINK, NEUTRAL + [face(), face(0.3), face(0.1), face(0.9), face()])
    assert blink.state == lv.PASSED and blink.prompt == "" and "blinked" in blink.reason
    assert run(lv.TURN_LEFT, NEUTRAL + [face(yaw=0.2), face(yaw=0.45)]).state == lv.PASSED
    assert run(lv.TURN_RIGHT, NEUTRAL + [face(yaw=-0.2), face(yaw=-0.45)]).state == lv.PASSED


def test_half_a_blink_the_wrong_turn_a_swap_or_too_late_fail():
    assert run(lv.BLINK, NEUTRAL + [face(0.1)] * 40).state == lv.FAILED            # eyes closed, never reopened
    assert run(lv.BLINK, NEUTRAL + [face(0.75)] * 40).state == lv.FAILED           # squint, not a blink
    wrong = run(lv.TURN_LEFT, NEUTRAL + [face(yaw=-0.5)])
    assert wrong.state == lv.FAILED and "wrong way" in wrong.reason
    swap = run(lv.BLINK, NEUTRAL + [face(shift=(200, 0))])
    assert swap.state == lv.FAILED and "jumped" in swap.reason
    late = run(lv.TURN_RIGHT, NEUTRAL + [face()] * 31 + [face(yaw=-0.5)])         # 6.2 s after the prompt
    assert late.state == lv.FAILED


def test_prompt_and_baseline_needs_an_open_facing_face():
    c = lv.LivenessChallenge(rng=random.Random(1))
    assert c.observe(None, 0.0) == lv.WAITING
    assert c.observe(face(yaw=0.6), 0.1) == lv.WAITING          # not facing the camera: no baseline
    assert c.observe(face(eye_open=0.2), 0.2) == lv.WAITING     # eyes (nearly) shut: no baseline
    for t in (0.3, 0.4, 0.5):
        c.observe(face(), t)
    assert c.state == lv.ISSUED and c.kind in lv.CHALLENGES and c.prompt == lv.PROMPTS[c.kind]
    kinds = set()
    for seed in range(30):
        c = lv.LivenessChallenge(rng=random.Random(seed))
        for t in (0.0, 0.1, 0.2):
            c.observe(face(), t)
        kinds.add(c.kind)
    assert kinds == set(lv.CHALLENGES)   # every challenge gets chosen
