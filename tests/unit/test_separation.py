"""core/separation.py: a plan whose path comes closer than the minimum to another vehicle is refused with the
reason; paths that keep clear, or vehicles already close that do not close in further, pass."""
import math
import random

import numpy as np
import pytest

from mmchat_ros.core.flight.plan import PlanVehicle
from mmchat_ros.core.flight.state_machine import FlightMode
from mmchat_ros.core.plan_vocabulary import ActionType, PlanStep
from mmchat_ros.core.separation import plan_path, polyline_distance, segment_distance, separation_problem

HOVERING = {"drone2": [(3.0, 0.0, 1.5)]}


def test_a_path_that_keeps_clear_passes():
    assert separation_problem("drone1", [(0.0, 0.0, 1.5), (0.0, 2.0, 1.5)], HOVERING, 2.0) is None


def test_a_path_through_another_vehicle_is_refused_with_the_distance():
    reason = separation_problem("drone1", [(0.0, 0.0, 1.5), (6.0, 0.0, 1.5)], HOVERING, 2.0)
    assert reason == "drone1's plan would come within 0.0 m of drone2 (minimum separation 2 m)"


def test_the_closest_point_may_lie_between_waypoints():
    # both ends 3.2 m away, the middle of the leg 1.0 m: refused
    path = [(0.0, 1.0, 1.5), (6.0, 1.0, 1.5)]
    assert separation_problem("drone1", path, HOVERING, 2.0) is not None
    assert separation_problem("drone1", path, HOVERING, 0.9) is None


def test_another_vehicle_s_planned_path_counts_as_occupied():
    crossing = {"drone2": [(3.0, -3.0, 1.5), (3.0, 3.0, 1.5)]}
    assert "within 0.0 m of drone2" in separation_problem("drone1", [(0.0, 0.0, 1.5), (6.0, 0.0, 1.5)],
                                                          crossing, 2.0)


def test_vehicles_already_too_close_may_move_apart_or_stay_but_not_close_in():
    parked = {"drone2": [(1.0, 0.0, 0.0)]}
    assert separation_problem("drone1", [(0.0, 0.0, 0.0), (-3.0, 0.0, 0.0)], parked, 2.0) is None
    assert separation_problem("drone1", [(0.0, 0.0, 0.0), (0.0, 0.0, 1.5)], parked, 2.0) is None   # straight up
    assert separation_problem("drone1", [(0.0, 0.0, 0.0), (0.5, 0.0, 0.0)], parked, 2.0) is not None


def test_every_other_vehicle_is_checked():
    others = {"drone2": [(10.0, 0.0, 1.5)], "drone3": [(0.0, 3.0, 1.5)]}
    reason = separation_problem("drone1", [(0.0, 0.0, 1.5), (0.0, 4.0, 1.5)], others, 2.0)
    assert reason is not None and "drone3" in reason


def test_no_path_or_no_position_is_an_error():
    with pytest.raises(ValueError):
        separation_problem("drone1", [], HOVERING, 2.0)
    with pytest.raises(ValueError, match="drone2"):
        separation_problem("drone1", [(0.0, 0.0, 0.0)], {"drone2": []}, 2.0)


def _sampled(p1, q1, p2, q2, n=60):
    def along(p, q):
        return [tuple(a + (b - a) * i / n for a, b in zip(p, q)) for i in range(n + 1)]
    return min(math.dist(u, v) for u in along(p1, q1) for v in along(p2, q2))


def test_segment_distance_matches_a_sampled_minimum():
    rng = random.Random(7)
    for _ in range(200):
        points = [tuple(rng.uniform(-3, 3) for _ in range(3)) for _ in range(4)]
        if rng.random() < 0.2:
            points[1] = points[0]                      # a point against a segment
        if rng.random() < 0.1:
            points[3] = tuple(c + 1.0 for c in points[2])
            points[1] = tuple(c + 2.0 for c in points[0])   # parallel segments
        exact = segment_distance(*points)
        assert exact <= _sampled(*points) + 1e-9
        assert exact >= _sampled(*points) - 0.15      # sampling finds the minimum to within its step


def test_polyline_distance_of_single_points_is_their_distance():
    assert polyline_distance([(0.0, 0.0, 0.0)], [(3.0, 4.0, 0.0)]) == pytest.approx(5.0)


def _vehicle(position, mode=FlightMode.HOVER, yaw_deg=0.0):
    return PlanVehicle(np.array(position, float), np.zeros(3), math.radians(yaw_deg), mode)


def test_plan_path_follows_take_off_moves_and_landing():
    steps = [PlanStep(ActionType.TAKEOFF), PlanStep(ActionType.MOVE_BY, x=1.0), PlanStep(ActionType.ROTATE, yaw_deg=90),
             PlanStep(ActionType.MOVE_BY, x=1.0), PlanStep(ActionType.RETURN_HOME), PlanStep(ActionType.LAND)]
    path = plan_path(steps, _vehicle((3.0, 0.0, 0.0), FlightMode.LANDED), None)
    np.testing.assert_allclose(path, [(3.0, 0.0, 0.0), (3.0, 0.0, 1.5), (4.0, 0.0, 1.5), (4.0, 1.0, 1.5),
                                      (3.0, 0.0, 1.5), (3.0, 0.0, 0.0)], atol=1e-9)


def test_plan_path_of_a_flying_vehicle_uses_its_heading_home_and_goto():
    steps = [PlanStep(ActionType.MOVE_BY, x=2.0), PlanStep(ActionType.GOTO, x=0.0, y=5.0, z=2.0),
             PlanStep(ActionType.TAKEOFF, z=3.0), PlanStep(ActionType.HOVER, duration_s=2.0)]
    path = plan_path(steps, _vehicle((0.0, 0.0, 1.5), yaw_deg=90.0), np.array([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(path, [(0.0, 0.0, 1.5), (0.0, 2.0, 1.5), (0.0, 5.0, 2.0), (0.0, 5.0, 3.0)], atol=1e-9)


def test_plan_path_ends_where_following_begins():
    steps = [PlanStep(ActionType.MOVE_BY, z=1.0), PlanStep(ActionType.FOLLOW, target_class="person")]
    np.testing.assert_allclose(plan_path(steps, _vehicle((0.0, 0.0, 1.5)), None), [(0.0, 0.0, 1.5), (0.0, 0.0, 2.5)])


def test_a_planned_take_off_next_to_a_hovering_vehicle_is_refused():
    # drone1 parked 1 m below drone2's hover: climbing would bring it within 0 m
    path = plan_path([PlanStep(ActionType.TAKEOFF)], _vehicle((3.0, 0.0, 0.0), FlightMode.LANDED), None)
    assert separation_problem("drone1", path, HOVERING, 2.0) is not None
