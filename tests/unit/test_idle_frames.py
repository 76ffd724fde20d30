"""The gesture node's idle rate (core/idle_frames.py): every frame while a hand was seen lately, idle_rate_hz frames
a second once none has been for idle_after_s, every frame again from the first that shows one."""
from __future__ import annotations

import pytest

from mmchat_ros.core.idle_frames import PERIOD_TOLERANCE, IdleFrameGate

CAMERA_HZ = 15.0


def admitted(gate: IdleFrameGate, start: float, seconds: float, hand=lambda t: False) -> list[float]:
    """Frame times the gate lets through of a camera at CAMERA_HZ; ``hand(t)``: whether the frame at t shows one."""
    times = []
    for i in range(round(seconds * CAMERA_HZ)):
        t = start + i / CAMERA_HZ
        if gate.admit(t):
            times.append(t)
            gate.seen(hand(t))
    return times


def test_without_a_hand_frames_are_thinned_to_the_idle_rate_after_the_settle_time():
    gate = IdleFrameGate(idle_hz=5.0, settle_s=1.0)
    times = admitted(gate, 0.0, 4.0)
    settled = [t for t in times if t < 1.0]
    assert len(settled) == 15                               # the first second: every frame
    idle = [t for t in times if t >= 1.2]
    assert 13 <= len(idle) <= 15                            # 2.8 s at 5 Hz
    assert all(b - a >= PERIOD_TOLERANCE * 0.2 for a, b in zip(idle, idle[1:]))
    assert gate.skipped == 60 - len(times)


def test_a_hand_brings_every_frame_back_from_the_first_frame_that_shows_it():
    gate = IdleFrameGate(idle_hz=5.0, settle_s=1.0)
    appears = 3.03
    times = admitted(gate, 0.0, 5.0, hand=lambda t: t >= appears)
    first_seen = next(t for t in times if t >= appears)
    assert first_seen - appears < 1.0 / 5.0 + 1e-9          # at worst one idle period late
    assert gate.worst_first_sight_delay_s == pytest.approx(0.2)
    after = [t for t in times if t >= first_seen]
    assert all(b - a < 0.07 for a, b in zip(after, after[1:]))   # every frame from then on


def test_a_hand_that_goes_keeps_every_frame_for_the_settle_time():
    gate = IdleFrameGate(idle_hz=2.0, settle_s=1.0)
    times = admitted(gate, 0.0, 4.0, hand=lambda t: t < 1.0)
    assert all(b - a < 0.07 for a, b in zip(times, times[1:]) if b < 2.0)   # the hand, then 1 s settling
    late = [t for t in times if t > 2.1]
    assert all(b - a >= PERIOD_TOLERANCE * 0.5 for a, b in zip(late, late[1:]))


def test_idle_rate_zero_never_thins_and_a_retune_applies_at_once():
    gate = IdleFrameGate(idle_hz=0.0, settle_s=0.0)
    assert len(admitted(gate, 0.0, 2.0)) == 30
    assert gate.worst_first_sight_delay_s == 0.0
    gate.retune(3.0, 0.0)
    assert len(admitted(gate, 2.0, 2.0)) in (6, 7)
    with pytest.raises(ValueError):
        gate.retune(-1.0, 0.0)
    with pytest.raises(ValueError):
        gate.retune(1.0, -1.0)
