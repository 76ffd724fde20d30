"""The landmark gesture classifier (core.gestures) on landmark sets: a kinematic hand model posed, turned, scaled
and mirrored; landmarks MediaPipe measured on real hand photos (tests/data/gestures/landmarks.json); smoothing,
hysteresis, swipes and hand selection."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mmchat_ros.core.gestures import (NONE, STATIC_GESTURES, ClassifierConfig, FilterConfig, GestureFilter,
                                      GestureRecognizer, Hand, LandmarkError, RecognizerConfig, SwipeConfig,
                                      SwipeDetector, hand_features, mirrored, recognizer_config, static_scores)

DATA = Path(__file__).resolve().parents[1] / "data" / "gestures"
IMAGE = ClassifierConfig(mirror_directions=False)     # directions named in the image, as the model builds them

# ------------------------------------------------------------------------------------- a kinematic hand model
# Hand frame (palm facing the camera, a right hand): y from the wrist to the fingers, x towards the thumb, z towards
# the camera. Lengths in palm units (wrist → middle-finger base = 1).
_BASES = {"index": (0.32, 0.95), "middle": (0.05, 1.0), "ring": (-0.2, 0.93), "pinky": (-0.42, 0.8)}
_BONES = {"index": (0.45, 0.27, 0.2), "middle": (0.5, 0.3, 0.22), "ring": (0.46, 0.28, 0.2),
          "pinky": (0.36, 0.21, 0.18)}
_SPLAY_DEG = {"index": 8.0, "middle": 0.0, "ring": -8.0, "pinky": -16.0}
CURLED = (85.0, 100.0, 60.0)       # flexion at MCP, PIP, DIP (degrees)
STRAIGHT = (0.0, 0.0, 0.0)


def _finger(base, bones, splay_deg, flexion):
    """Joint positions of a finger splayed ``splay_deg`` towards the thumb that flexes towards the camera."""
    direction = np.array([math.sin(math.radians(splay_deg)), math.cos(math.radians(splay_deg)), 0.0])
    normal = np.array([0.0, 0.0, 1.0])
    position = np.array([base[0], base[1], 0.0])
    points, angle = [position], 0.0
    for bone, flex in zip(bones, flexion):
        angle += math.radians(flex)
        position = position + bone * (math.cos(angle) * direction + math.sin(angle) * normal)
        points.append(position)
    return points


def model_hand(extended=("thumb", "index", "middle", "ring", "pinky"), thumb="out", index_flex=None,
               victory_spread=0.0):
    """21 landmarks (hand frame) of a hand with ``extended`` fingers straight and the others curled.
    thumb: 'out' (sticking out sideways), 'across' (folded over the palm) or 'pinch' (tip on the index tip)."""
    points = np.zeros((21, 3))
    for name, first in (("index", 5), ("middle", 9), ("ring", 13), ("pinky", 17)):
        flexion = STRAIGHT if name in extended else CURLED
        if name == "index" and index_flex is not None:
            flexion = index_flex
        splay = _SPLAY_DEG[name] + (victory_spread if name == "index" else -victory_spread if name == "middle"
                                    else 0.0)
        for i, p in enumerate(_finger(_BASES[name], _BONES[name], splay, flexion)):
            points[first + i] = p
    points[1] = (0.35, 0.25, 0.0)
    if "thumb" in extended and thumb == "out":
        direction = np.array([math.cos(math.radians(35)), math.sin(math.radians(35)), 0.0])
        for i, reach in enumerate((0.35, 0.65, 0.9), start=2):
            points[i] = points[1] + reach * direction
    elif thumb == "pinch":
        tip = points[8]
        points[2] = points[1] + np.array([0.2, 0.25, 0.05])
        points[3] = points[2] + 0.5 * (tip - points[2])
        points[4] = tip + np.array([0.02, -0.02, 0.0])
    else:   # folded across the curled fingers, towards the middle finger's middle joint
        target = points[10] + np.array([0.0, 0.0, 0.1])
        points[2] = points[1] + np.array([0.1, 0.25, 0.1])
        points[3] = points[2] + 0.5 * (target - points[2])
        points[4] = target
    return points


def to_image(points, angle_deg=0.0, scale=0.3, centre=(0.5, 0.5), mirror=False, aspect=4.0 / 3.0):
    """Hand-frame points → normalised image landmarks (x right / width, y down / height, z depth ~ x scale).
    angle_deg turns the hand counter-clockwise in the image; scale is the palm size in image heights."""
    p = np.array(points, dtype=float)
    if mirror:
        p[:, 0] = -p[:, 0]                       # the other hand
    a = math.radians(angle_deg)
    x = p[:, 0] * math.cos(a) - p[:, 1] * math.sin(a)
    y = p[:, 0] * math.sin(a) + p[:, 1] * math.cos(a)
    out = np.empty_like(p)
    out[:, 0] = centre[0] + scale * x / aspect
    out[:, 1] = centre[1] - scale * y          # image y is down
    out[:, 2] = -scale * p[:, 2] / aspect      # nearer the camera = smaller z
    return out


def pose(name):
    """(hand-frame points, the angle that makes its pointing finger point up in the image) per static gesture."""
    fist = model_hand(extended=(), thumb="across")
    point = model_hand(extended=("index",), thumb="across")
    thumb = model_hand(extended=("thumb",))
    thumb_angle = math.degrees(math.atan2(thumb[4, 1] - thumb[2, 1], thumb[4, 0] - thumb[2, 0]))
    up = 90.0 - thumb_angle       # turns the thumb to point up
    return {
        "open_palm": (model_hand(), 0.0),
        "fist": (fist, 0.0),
        "pointing_up": (point, 0.0),
        "pointing_down": (point, 180.0),
        "thumbs_up": (thumb, up),
        "thumbs_down": (thumb, up + 180.0),
        "thumb_left": (thumb, up + 90.0),
        "thumb_right": (thumb, up - 90.0),
        "victory": (model_hand(extended=("index", "middle"), thumb="across", victory_spread=10.0), 0.0),
        "ok": (model_hand(extended=("middle", "ring", "pinky"), thumb="pinch", index_flex=(40.0, 60.0, 30.0)), 0.0),
    }[name]


def classify(landmarks, config=IMAGE, aspect=4.0 / 3.0):
    scores = static_scores(hand_features(Hand(landmarks), aspect, config), config)
    best = max(scores, key=scores.get)
    return (best if scores[best] >= 0.5 else NONE), scores[best]


# ---------------------------------------------------------------------------------------------- per frame
@pytest.mark.parametrize("gesture", STATIC_GESTURES)
def test_every_static_gesture_is_recognised_from_its_landmarks(gesture):
    points, angle = pose(gesture)
    name, confidence = classify(to_image(points, angle))
    assert name == gesture and confidence > 0.7, (name, confidence)


@pytest.mark.parametrize("gesture", ["open_palm", "fist", "victory", "ok"])
def test_hand_shapes_do_not_depend_on_rotation_scale_or_hand(gesture):
    points, _ = pose(gesture)
    for angle in range(0, 360, 30):
        for scale in (0.08, 0.3, 0.6):
            for mirror in (False, True):
                name, _ = classify(to_image(points, angle, scale, mirror=mirror))
                assert name == gesture, f"{gesture} read as {name} at {angle} deg, scale {scale}, mirror {mirror}"


@pytest.mark.parametrize("gesture", ["pointing_up", "thumbs_up"])
def test_direction_gestures_follow_the_finger_not_the_hand(gesture):
    points, angle = pose(gesture)       # the finger points up
    # Each quarter turn counter-clockwise moves the finger from up to left, down, right.
    order = {"pointing_up": ["pointing_up", NONE, "pointing_down", NONE],
             "thumbs_up": ["thumbs_up", "thumb_left", "thumbs_down", "thumb_right"]}[gesture]
    for quarter, expected in enumerate(order):
        for wobble in (-15.0, 0.0, 15.0):                  # within the direction tolerance
            for mirror in (False, True):
                # The other hand's finger starts mirrored: it needs the opposite turn to point up first.
                turn = (-angle if mirror else angle) + 90.0 * quarter + wobble
                name, _ = classify(to_image(points, turn, 0.25, mirror=mirror))
                assert name == expected, f"{gesture} turned {90 * quarter + wobble} deg (mirror {mirror}): {name}"


def test_a_finger_diagonal_between_two_directions_is_not_confidently_either():
    points, angle = pose("pointing_up")
    scores = static_scores(hand_features(Hand(to_image(points, angle + 45.0))), IMAGE)
    assert scores["pointing_up"] < 0.7 and scores["pointing_down"] < 0.05


def test_mirror_directions_names_left_and_right_from_the_users_side():
    points, angle = pose("thumb_left")
    landmarks = to_image(points, angle)
    assert classify(landmarks, IMAGE)[0] == "thumb_left"
    assert classify(landmarks, ClassifierConfig(mirror_directions=True))[0] == "thumb_right"
    pointing = to_image(*pose("pointing_up"))
    assert classify(pointing, ClassifierConfig(mirror_directions=True))[0] == "pointing_up"   # up stays up


def test_image_aspect_ratio_is_taken_into_account():
    points, angle = pose("thumb_right")
    for aspect in (4.0 / 3.0, 16.0 / 9.0, 1.0):
        assert classify(to_image(points, angle, aspect=aspect), aspect=aspect)[0] == "thumb_right"


def test_noisy_landmarks_keep_their_gesture():
    rng = np.random.default_rng(3)
    for gesture in STATIC_GESTURES:
        points, angle = pose(gesture)
        clean = to_image(points, angle, 0.3)
        hits = sum(classify(clean + rng.normal(0.0, 0.004, clean.shape))[0] == gesture for _ in range(20))
        assert hits >= 17, f"{gesture}: {hits}/20 noisy copies recognised"


def test_features_are_normalised_by_palm_size():
    points, _ = pose("open_palm")
    small = hand_features(Hand(to_image(points, 0, 0.1)))
    large = hand_features(Hand(to_image(points, 0, 0.5)))
    assert large.palm_size == pytest.approx(5 * small.palm_size, rel=1e-6)
    assert large.pinch == pytest.approx(small.pinch, rel=1e-6)
    for finger in small.extension:
        assert large.extension[finger] == pytest.approx(small.extension[finger], abs=1e-9)


@pytest.mark.parametrize("bad,message", [
    (np.zeros((20, 3)), "21 landmarks"),
    (np.full((21, 3), np.nan), "non-finite"),
    (np.zeros((21, 2)), "21 landmarks"),
])
def test_malformed_landmarks_are_rejected_with_the_reason(bad, message):
    with pytest.raises(LandmarkError, match=message):
        Hand(bad)


def test_degenerate_hand_is_rejected():
    with pytest.raises(LandmarkError, match="palm has no size"):
        hand_features(Hand(np.full((21, 3), 0.5)))


# --------------------------------------------------------------------- landmarks measured on real photographs
def recorded_sets():
    path = DATA / "landmarks.json"
    return json.loads(path.read_text())["hands"]


def test_recorded_landmark_file_covers_the_gestures_found_in_real_photos():
    names = {entry["gesture"] for entry in recorded_sets()}
    assert {"open_palm", "fist", "thumbs_up", "thumbs_down", "thumb_left", "thumb_right", "pointing_up",
            "pointing_down", "victory"} <= names


@pytest.mark.parametrize("entry", recorded_sets(), ids=lambda e: f"{e['gesture']}-{e['source']}")
def test_landmarks_mediapipe_measured_on_real_hands_classify_as_labelled(entry):
    """Regression on real measurements: the label is what the gesture shown in the frame is."""
    hand = Hand(np.array(entry["landmarks"]), entry["handedness"], entry["score"])
    name, confidence = classify(hand.landmarks, aspect=entry["aspect"])
    assert name == entry["gesture"], (name, confidence)


# ------------------------------------------------------------------------------- smoothing and hysteresis
def test_a_gesture_becomes_stable_only_after_hold_frames():
    f = GestureFilter(FilterConfig(hold_frames=4, smoothing=1.0))
    results = [f.update({"fist": 0.9, "open_palm": 0.05}) for _ in range(6)]
    assert [r.stable for r in results] == [False, False, False, True, True, True]
    assert all(r.name == "fist" for r in results)


def test_one_odd_frame_does_not_switch_a_stable_gesture():
    f = GestureFilter(FilterConfig(hold_frames=3, smoothing=0.5))
    for _ in range(5):
        f.update({"fist": 0.9})
    glitch = f.update({"open_palm": 0.95, "fist": 0.0})
    assert glitch.stable and glitch.name == "fist"
    back = f.update({"fist": 0.9})
    assert back.stable and back.name == "fist"


def test_hysteresis_keeps_a_gesture_between_the_exit_and_enter_thresholds_then_releases_it():
    f = GestureFilter(FilterConfig(hold_frames=2, release_frames=2, smoothing=1.0, enter_confidence=0.6,
                                   exit_confidence=0.3))
    for _ in range(3):
        f.update({"victory": 0.8})
    held = [f.update({"victory": 0.45}) for _ in range(5)]         # would not enter, but stays
    assert all(r.stable and r.name == "victory" for r in held)
    low = [f.update({"victory": 0.1}) for _ in range(2)]
    assert low[0].stable and not low[1].stable and low[1].name == NONE


def test_a_new_gesture_replaces_the_stable_one_once_held():
    f = GestureFilter(FilterConfig(hold_frames=3, release_frames=10, smoothing=1.0))
    for _ in range(4):
        f.update({"fist": 0.9})
    switching = [f.update({"open_palm": 0.9, "fist": 0.0}) for _ in range(3)]
    # The fist is kept until the open palm has been held for hold_frames, then replaced at once.
    assert [(r.name, r.stable) for r in switching] == [("fist", True), ("fist", True), ("open_palm", True)]


def test_filter_config_is_validated():
    with pytest.raises(ValueError, match="hold_frames"):
        FilterConfig(hold_frames=0)
    with pytest.raises(ValueError, match="exit_confidence"):
        FilterConfig(enter_confidence=0.3, exit_confidence=0.5)


# --------------------------------------------------------------------------------------------------- swipes
def trajectory(start, end, frames, fps=30.0, t0=0.0):
    return [(t0 + i / fps, np.array(start) + (np.array(end) - np.array(start)) * i / (frames - 1))
            for i in range(frames)]


@pytest.mark.parametrize("end,image_name", [((0.9, 0.5), "swipe_right"), ((0.1, 0.5), "swipe_left"),
                                            ((0.5, 0.1), "swipe_up"), ((0.5, 0.9), "swipe_down")])
def test_fast_straight_movements_are_swipes(end, image_name):
    detector = SwipeDetector(SwipeConfig(), mirror_directions=False)
    events = [detector.update(t, c, 0.1) for t, c in trajectory((0.5, 0.5), end, 10)]
    found = [e for e in events if e]
    assert len(found) == 1 and found[0].name == image_name and found[0].confidence >= 0.5


def test_mirrored_swipe_names_are_the_users():
    detector = SwipeDetector(SwipeConfig(), mirror_directions=True)
    found = [e for e in (detector.update(t, c, 0.1) for t, c in trajectory((0.2, 0.5), (0.8, 0.5), 10)) if e]
    assert [e.name for e in found] == ["swipe_left"]


@pytest.mark.parametrize("case", ["slow", "short", "diagonal", "zigzag", "small_hand_jitter"])
def test_other_movements_are_not_swipes(case):
    detector = SwipeDetector(SwipeConfig(), mirror_directions=False)
    if case == "slow":            # 0.4 image heights in 2 s
        samples = trajectory((0.2, 0.5), (0.6, 0.5), 60)
    elif case == "short":         # one palm size
        samples = trajectory((0.5, 0.5), (0.6, 0.5), 8)
    elif case == "diagonal":
        samples = trajectory((0.2, 0.2), (0.6, 0.6), 10)
    elif case == "zigzag":
        samples = [(i / 30.0, np.array([0.3 + 0.2 * (i % 2), 0.5])) for i in range(18)]
    else:                          # a tiny far hand moving 3 palm sizes is still only 0.06 of the image
        samples = trajectory((0.5, 0.5), (0.56, 0.5), 8)
    palm = 0.02 if case == "small_hand_jitter" else 0.1
    assert not any(detector.update(t, c, palm) for t, c in samples)


def test_swipe_distance_scales_with_the_hand():
    # The same image movement is a swipe for a small hand (many palm sizes) but not for a big one.
    movement = trajectory((0.3, 0.5), (0.6, 0.5), 8)
    small = SwipeDetector(SwipeConfig(), mirror_directions=False)
    big = SwipeDetector(SwipeConfig(), mirror_directions=False)
    assert any(small.update(t, c, 0.1) for t, c in movement)
    assert not any(big.update(t, c, 0.3) for t, c in movement)


def test_no_second_swipe_within_the_cooldown():
    detector = SwipeDetector(SwipeConfig(cooldown_s=1.0), mirror_directions=False)
    first = trajectory((0.2, 0.5), (0.8, 0.5), 8)
    back = trajectory((0.8, 0.5), (0.2, 0.5), 8, t0=first[-1][0] + 1 / 30)
    again = trajectory((0.2, 0.5), (0.8, 0.5), 8, t0=back[-1][0] + 1.0)
    names = [e.name for e in (detector.update(t, c, 0.1) for t, c in first + back + again) if e]
    assert names == ["swipe_right", "swipe_right"]


# ------------------------------------------------------------------------------------------------ recognizer
def frame_of(gesture, **placement):
    points, angle = pose(gesture)
    return Hand(to_image(points, angle + placement.pop("turn", 0.0), **placement), placement.get("hand", "right"))


def run(recognizer, hands_per_frame, fps=30.0, t0=0.0):
    return [recognizer.update(t0 + i / fps, hands) for i, hands in enumerate(hands_per_frame)]


def test_recognizer_reports_no_hand_as_none():
    result = GestureRecognizer().update(0.0, [])
    assert (result.name, result.num_hands, result.stable, result.hand) == (NONE, 0, False, None)


def test_recognizer_needs_hold_frames_then_reports_the_stable_gesture_with_its_hand():
    recognizer = GestureRecognizer(recognizer_config(classifier={"mirror_directions": False},
                                                     filter={"hold_frames": 5}))
    hand = Hand(to_image(*pose("fist")), "left", 0.9)
    results = run(recognizer, [[hand]] * 8)
    first_stable = next(i for i, r in enumerate(results) if r.stable)
    assert first_stable >= 4 and results[-1].name == "fist" and results[-1].handedness == "left"
    assert results[-1].num_hands == 1 and results[-1].hand is hand and results[-1].scores["fist"] > 0.7


def test_recognizer_ignores_low_confidence_detections():
    recognizer = GestureRecognizer(RecognizerConfig(min_hand_score=0.6))
    result = recognizer.update(0.0, [Hand(to_image(*pose("fist")), "right", 0.3)])
    assert result.name == NONE and result.num_hands == 0


def test_a_short_dropout_keeps_the_stable_gesture_a_long_one_resets_it():
    recognizer = GestureRecognizer(recognizer_config(filter={"hold_frames": 3}))
    hand = Hand(to_image(*pose("open_palm")), "right")
    run(recognizer, [[hand]] * 6)
    assert recognizer.update(6 / 30, []).name == NONE          # the frame without the hand says so...
    assert recognizer.update(7 / 30, [hand]).stable            # ... but the gesture is still held after it
    recognizer.update(8 / 30, [])
    recognizer.update(8 / 30 + 1.0, [])                         # a second without the hand
    assert not recognizer.update(8 / 30 + 1.1, [hand]).stable


def test_with_two_hands_the_tracked_hand_stays_primary():
    recognizer = GestureRecognizer(recognizer_config(classifier={"mirror_directions": False},
                                                     filter={"hold_frames": 2}))
    small_fist = Hand(to_image(*pose("fist"), scale=0.15, centre=(0.3, 0.5)), "right")
    big_palm = Hand(to_image(*pose("open_palm"), scale=0.3, centre=(0.7, 0.5), mirror=True), "left")
    # Alone first: the fist is tracked ...
    run(recognizer, [[small_fist]] * 4)
    # ... then a bigger second hand appears: the fist stays the primary hand.
    results = run(recognizer, [[big_palm, small_fist]] * 4, t0=4 / 30)
    assert all(r.name == "fist" and r.num_hands == 2 and r.handedness == "right" for r in results)
    # A fresh recognizer takes the bigger hand, or the preferred one.
    assert run(GestureRecognizer(), [[small_fist, big_palm]] * 6)[-1].name == "open_palm"
    preferring_right = GestureRecognizer(RecognizerConfig(preferred_hand="right"))
    assert run(preferring_right, [[big_palm, small_fist]] * 6)[-1].name == "fist"


def test_a_swipe_of_the_hand_is_reported_as_a_dynamic_gesture():
    recognizer = GestureRecognizer(recognizer_config(classifier={"mirror_directions": False}))
    points, _ = pose("open_palm")
    frames = [[Hand(to_image(points, 0.0, 0.12, centre=(x, 0.5)), "right")] for x in np.linspace(0.2, 0.8, 10)]
    results = run(recognizer, frames)
    dynamic = [r for r in results if r.is_dynamic]
    assert len(dynamic) == 1 and dynamic[0].name == "swipe_right" and dynamic[0].stable
    assert not any(r.is_dynamic for r in run(GestureRecognizer(RecognizerConfig(dynamic_enabled=False)), frames))


def test_mirrored_helper_swaps_handedness_and_x():
    hand = Hand(to_image(*pose("victory")), "left")
    other = mirrored(hand)
    assert other.handedness == "right"
    assert np.allclose(other.landmarks[:, 0], 1.0 - hand.landmarks[:, 0])
    assert classify(other.landmarks)[0] == "victory"
