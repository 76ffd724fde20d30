"""Run-time parameter changes: which are refused and why (core/live_parameters.py), and the flight controller's
envelope, which may change only within the airframe's hard limits (core/flight/envelope.py, FlightCore)."""
import math

import pytest

from mmchat_ros.core.flight.envelope import (EnvelopeConfig, EnvelopeHardLimits, envelope_from_json,
                                             envelope_to_json)
from mmchat_ros.core.flight.flight_core import FlightCore, FlightCoreConfig
from mmchat_ros.core.flight.gains import ControlLimits
from mmchat_ros.core.live_parameters import LiveRule, change_problem, changes_problem, three_numbers

SPEED = LiveRule(live=True, value_range=(0.1, 20.0))
FENCE = LiveRule(live=True, value_range=(-1000.0, 1000.0), check=three_numbers("geofence_max"))


def test_a_start_up_parameter_is_refused_with_what_to_do():
    assert change_problem("control_rate_hz", 500.0, LiveRule()) == \
        "control_rate_hz is read at start-up only: restart the node with the new value"


@pytest.mark.parametrize("value, reason", [
    (25.0, "max_speed_xy=25 is outside its range 0.1..20"),
    (0.0, "max_speed_xy=0 is outside its range 0.1..20"),
    (math.nan, "max_speed_xy=nan: nan is not a finite number"),
])
def test_a_live_value_outside_its_range_is_refused(value, reason):
    assert change_problem("max_speed_xy", value, SPEED) == reason


def test_a_live_value_inside_its_range_passes():
    assert change_problem("max_speed_xy", 1.5, SPEED) is None
    assert change_problem("geofence_max", [10.0, 10.0, 5.0], FENCE) is None


def test_array_values_are_checked_item_by_item_and_by_their_own_check():
    assert change_problem("geofence_max", [10.0, 2000.0, 5.0], FENCE) == \
        "geofence_max=[10, 2000, 5] is outside its range -1000..1000"
    assert change_problem("geofence_max", [10.0, 5.0], FENCE) == "geofence_max must be three numbers x, y, z, got [10, 5]"


def test_changes_made_together_fail_on_the_first_refusal_and_ignore_foreign_names():
    rules = {"max_speed_xy": SPEED, "control_rate_hz": LiveRule()}
    assert changes_problem({"use_sim_time": True, "max_speed_xy": 1.0}, rules) is None
    assert "read at start-up only" in changes_problem({"max_speed_xy": 1.0, "control_rate_hz": 100.0}, rules)


def test_constraints_line_for_the_descriptor():
    assert SPEED.constraints() == "live: may be set while the node runs; range 0.1..20"
    assert LiveRule().constraints() == "read at start-up only"


HARD = EnvelopeHardLimits.of("x", {"max_altitude_m": 50.0, "geofence_max": [30.0, 30.0, 50.0]},
                             ControlLimits(max_speed_xy=3.0, max_speed_z=1.5, max_yaw_rate_deg_s=90.0),
                             EnvelopeConfig())


@pytest.mark.parametrize("change, reason", [
    ({"max_speed_xy": 4.0}, "max_speed_xy=4 is above the airframe 'x' hard limit 3"),
    ({"max_altitude_m": 60.0}, "max_altitude_m=60 is above the airframe 'x' hard limit 50"),
    ({"geofence_max": (40.0, 20.0, 10.0)}, "geofence_max x=40 is beyond the airframe 'x' hard limit 30"),
    # no geofence_min in the airframe's limits: the start-up envelope's is the widest allowed
    ({"geofence_min": (-30.0, -20.0, -1.0)}, "geofence_min x=-30 is beyond the airframe 'x' hard limit -20"),
])
def test_hard_limits_name_the_bound_a_wider_envelope_breaks(change, reason):
    assert HARD.problem(EnvelopeConfig(**change)) == reason


def test_hard_limits_allow_tighter_and_wider_within():
    assert HARD.problem(EnvelopeConfig(max_speed_xy=3.0, max_altitude_m=40.0,
                                       geofence_max=(30.0, 30.0, 50.0))) is None
    with pytest.raises(ValueError, match="unknown envelope_limits keys"):
        EnvelopeHardLimits.of("x", {"ceiling": 3.0}, ControlLimits(), EnvelopeConfig())


def test_envelope_travels_as_json():
    config = EnvelopeConfig(max_speed_xy=1.2, geofence_min=(-5.0, -5.0, -1.0))
    assert envelope_from_json(envelope_to_json(config)) == config


def test_flight_core_takes_a_new_envelope_within_the_airframe_limits():
    core = FlightCore.from_names("x500", FlightCoreConfig())
    assert core.hard_limits.max_speed_xy == 2.0 and core.hard_limits.max_altitude_m == 120.0
    slower = EnvelopeConfig(max_speed_xy=0.5, geofence_max=(50.0, 50.0, 10.0))
    assert core.set_envelope(slower)
    assert core.envelope.config is slower and core.config.envelope is slower
    assert core.reference_limits.speed_xy < 0.5 and core.plan.limits is core.reference_limits
    assert core.envelope.position_violation([45.0, 0.0, 2.0]) is None
    refused = core.set_envelope(EnvelopeConfig(max_speed_xy=5.0))
    assert not refused and "max_speed_xy=5 is above the airframe 'x500' hard limit 2" in refused.reason
    assert core.envelope.config is slower
