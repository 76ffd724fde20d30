"""Follow-me core: target selection, the centring/size controller and its limits, losing and re-acquiring."""
import math

import pytest

from mmchat_ros.core.detections import TrackedObject
from mmchat_ros.core.follow import (HOVER, EventKind, FollowConfig, FollowController, FollowRequest, FollowState,
                                    select_target, steering_command, truncated_vertically, vehicle_gate)

CONFIG = FollowConfig(target_height=0.5, smoothing_time_s=0.0, hold_timeout_s=0.5, lost_timeout_s=2.0)


def box(track_id=1, cx=0.5, cy=0.5, h=0.5, w=None, cls="person", score=0.9):
    return TrackedObject(track_id, cls, cx, cy, w if w is not None else h / 2, h, score)


# ------------------------------------------------------------------------------------------------ selection

def test_largest_of_the_class_is_selected_and_other_classes_ignored():
    objects = [box(1, h=0.3), box(2, h=0.5), box(3, h=0.9, cls="car"), box(-1, h=0.95)]
    assert select_target(objects, FollowRequest("person")).track_id == 2
    assert select_target(objects, FollowRequest("car")).track_id == 3
    assert select_target(objects, FollowRequest("dog")) is None


def test_an_explicit_track_id_wins_over_size_and_must_be_in_view():
    objects = [box(1, cx=0.2, h=0.3), box(2, h=0.5)]
    assert select_target(objects, FollowRequest("person", 1)).track_id == 1
    assert select_target(objects, FollowRequest("person", 7)) is None


def test_low_scores_are_ignored():
    objects = [box(1, h=0.6, score=0.2), box(2, h=0.3, score=0.8)]
    assert select_target(objects, FollowRequest(), min_score=0.5).track_id == 2


def test_pixel_boxes_are_normalised_and_an_empty_image_is_refused():
    b = TrackedObject(4, "person", 160, 60, 32, 120, 0.7).normalised(320, 240)
    assert (b.track_id, b.center_x, b.center_y, b.width, b.height, b.score) == (4, 0.5, 0.25, 0.1, 0.5, 0.7)
    with pytest.raises(ValueError, match="image size"):
        TrackedObject(4, "person", 1, 1, 1, 1).normalised(0, 240)


# ------------------------------------------------------------------------------------------------ controller

def test_centred_target_at_the_set_size_gives_a_hover():
    assert steering_command(box(cx=0.5, cy=0.5, h=0.5), CONFIG) == HOVER


def test_target_to_the_right_turns_right_and_to_the_left_turns_left():
    right = steering_command(box(cx=0.7), CONFIG)
    left = steering_command(box(cx=0.3), CONFIG)
    assert right.yaw_rate < 0 < left.yaw_rate
    assert right.yaw_rate == pytest.approx(-left.yaw_rate)
    # proportional beyond the dead band: 1.5 rad/s per image width times (0.2 - 0.03)
    assert right.yaw_rate == pytest.approx(-1.5 * 0.17)


def test_small_target_flies_forward_large_target_backs_off():
    far = steering_command(box(h=0.25), CONFIG)        # twice the set distance
    near = steering_command(box(h=0.8), CONFIG)
    assert far.forward == pytest.approx(1.0 * (1.0 - 0.05))
    assert near.forward < 0
    assert near.forward == pytest.approx(0.5 / 0.8 - 1.0 + 0.05)


def test_target_below_centre_descends_above_centre_climbs():
    assert steering_command(box(cy=0.7), CONFIG).up < 0 < steering_command(box(cy=0.3), CONFIG).up


def test_every_output_is_clamped_to_its_limit():
    config = FollowConfig(yaw_gain=100, forward_gain=100, vertical_gain=100, max_forward_mps=0.8,
                          max_backward_mps=0.3, max_vertical_mps=0.2, max_yaw_rate=math.radians(30))
    far_left_high = steering_command(box(cx=0.45, cy=0.1, h=0.05), config)
    assert far_left_high.forward == pytest.approx(0.8)
    assert far_left_high.up == pytest.approx(0.2)
    assert far_left_high.yaw_rate == pytest.approx(math.radians(30))
    near_right_low = steering_command(box(cx=0.99, cy=0.6, h=0.7), config)
    assert near_right_low.yaw_rate == pytest.approx(-math.radians(30))
    assert near_right_low.up == pytest.approx(-0.2)
    assert steering_command(box(cx=0.55, h=0.99, cy=0.5), config).forward == pytest.approx(-0.3)


def test_a_box_cut_off_by_the_image_edge_never_draws_the_vehicle_closer():
    cut = box(cy=0.2, h=0.4)          # top edge at y = 0: the object is bigger than its box
    assert truncated_vertically(cut)
    assert steering_command(cut, CONFIG).forward <= 0.0


def test_forward_motion_waits_for_the_turn_when_the_target_is_far_off_centre():
    centred = steering_command(box(cx=0.5, h=0.25), CONFIG)
    off = steering_command(box(cx=0.9, h=0.25), CONFIG)
    assert 0 <= off.forward < 0.3 * centred.forward


@pytest.mark.parametrize("bad", [dict(target_height=0.0), dict(target_height=1.5), dict(lost_timeout_s=-1),
                                 dict(max_forward_mps=float("nan")), dict(desired_center_x=1.2),
                                 dict(hold_timeout_s=5.0, lost_timeout_s=1.0)])
def test_invalid_configs_are_refused_with_the_field_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
        FollowConfig(**bad)


# ------------------------------------------------------------------------------------------------ behaviour

def test_idle_controller_publishes_nothing():
    controller = FollowController(CONFIG)
    out = controller.update(0.0)
    assert out.command is None and out.state is FollowState.IDLE and not out.events


def test_follow_acquires_the_largest_person_and_steers():
    controller = FollowController(CONFIG)
    started = controller.start(FollowRequest("person"), 0.0)
    assert started.kind is EventKind.STARTED and "largest person" in started.message
    assert controller.update(0.1).command == HOVER            # nothing seen yet: hover, searching
    events = controller.observe([box(4, cx=0.7, h=0.3), box(5, h=0.2)], 0.2)
    assert [e.kind for e in events] == [EventKind.ACQUIRED] and controller.track_id == 4
    out = controller.update(0.25)
    assert out.state is FollowState.TRACKING
    assert out.command.yaw_rate < 0 and out.command.forward > 0


def test_the_locked_track_is_kept_even_when_another_becomes_larger():
    controller = FollowController(CONFIG)
    controller.start(FollowRequest("person"), 0.0)
    controller.observe([box(4, h=0.3)], 0.1)
    controller.observe([box(4, h=0.3), box(9, cx=0.9, h=0.7)], 0.2)
    assert controller.track_id == 4


def test_target_missing_briefly_hovers_then_is_lost_and_said_once():
    controller = FollowController(CONFIG)
    controller.start(FollowRequest("person", 3), 0.0)
    controller.observe([box(3, cx=0.8)], 0.0)
    assert controller.update(0.3).state is FollowState.TRACKING
    searching = controller.update(1.0)                          # unseen 1.0 s > hold 0.5 s
    assert searching.command == HOVER and searching.state is FollowState.SEARCHING
    lost = controller.update(2.1)                               # unseen 2.1 s > lost 2.0 s
    assert lost.command is None and [e.kind for e in lost.events] == [EventKind.LOST]
    assert "person 3" in lost.events[0].message
    assert not controller.active
    assert controller.update(2.2).events == ()                  # said once


def test_a_requested_track_that_never_shows_up_is_lost_after_the_timeout():
    controller = FollowController(CONFIG)
    controller.start(FollowRequest("person", 8), 10.0)
    controller.observe([box(2)], 10.5)
    assert controller.update(11.9).command == HOVER
    lost = controller.update(12.1)
    assert lost.events[0].kind is EventKind.LOST and "not found within" in lost.events[0].message


def test_a_renumbered_target_is_reacquired_where_it_vanished_but_not_a_known_other():
    controller = FollowController(CONFIG)
    controller.start(FollowRequest("person"), 0.0)
    controller.observe([box(1, cx=0.5), box(2, cx=0.6)], 0.0)     # 2 walks beside the target: another person
    assert controller.track_id == 1
    events = controller.observe([box(2, cx=0.52)], 0.5)            # 1 vanished; 2 is near but known
    assert not events and controller.track_id == 1
    events = controller.observe([box(7, cx=0.55), box(2, cx=0.9)], 0.7)   # a new id where 1 was
    assert [e.kind for e in events] == [EventKind.REACQUIRED] and controller.track_id == 7
    assert controller.update(0.8).state is FollowState.TRACKING
    far = FollowController(CONFIG)
    far.start(FollowRequest("person"), 0.0)
    far.observe([box(1, cx=0.2)], 0.0)
    far.observe([box(5, cx=0.8)], 0.3)                             # too far from where 1 was
    assert far.track_id == 1


def test_stop_ends_the_follow_and_says_why():
    controller = FollowController(CONFIG)
    assert controller.stop("nothing") is None
    controller.start(FollowRequest("person", 2), 0.0)
    event = controller.stop("disabled on /follow/enable")
    assert event.kind is EventKind.STOPPED and "disabled" in event.message
    assert controller.update(0.1).command is None


def test_smoothing_filters_a_jumping_box():
    controller = FollowController(FollowConfig(smoothing_time_s=0.2))
    controller.start(FollowRequest(), 0.0)
    controller.observe([box(1, cx=0.5)], 0.0)
    controller.observe([box(1, cx=0.9)], 0.05)                     # one frame later (alpha = 1 - e^-0.25)
    yaw = controller.update(0.06).command.yaw_rate
    unfiltered = steering_command(box(1, cx=0.9), controller.config).yaw_rate
    assert unfiltered < yaw < 0


def test_vehicle_gate():
    assert vehicle_gate("HOVER") == (True, False)
    assert vehicle_gate("VELOCITY") == (True, False)
    assert vehicle_gate("TAKING_OFF") == (False, False)
    assert vehicle_gate("LANDING") == (False, True)
    assert vehicle_gate("EMERGENCY") == (False, True)
    assert vehicle_gate("") == (True, False)
