"""core/language/addressing.py: an utterance's vehicle address (leading or trailing, digits or words) is split off;
unaddressed utterances go to the vehicle named last; an address of a vehicle that is not there is refused."""
import pytest

from mmchat_ros.core.language.addressing import Route, VehicleAddressing


@pytest.mark.parametrize("text, vehicle, command", [
    ("drone two, take off", "drone2", "take off"),
    ("drone 2 land", "drone2", "land"),
    ("drone1: go up one metre", "drone1", "go up one metre"),
    ("Drone Two, take off.", "drone2", "take off."),
    ("hey drone number one, land", "drone1", "land"),
    ("drone-2 land", "drone2", "land"),
    ("land, drone two", "drone2", "land"),
    ("go up one metre drone 1.", "drone1", "go up one metre"),
    ("alpha, hover", "alpha", "hover"),
])
def test_an_address_is_split_off(text, vehicle, command):
    assert VehicleAddressing(["drone1", "drone2", "alpha"]).route(text) == Route(vehicle, command)


def test_unaddressed_commands_go_to_the_first_vehicle_then_to_the_one_named_last():
    addressing = VehicleAddressing(["drone1", "drone2"])
    assert addressing.route("take off") == Route("drone1", "take off")
    addressing.route("drone two, land")
    assert addressing.route("go up two metres") == Route("drone2", "go up two metres")
    assert addressing.route("land the drone") == Route("drone2", "land the drone")   # "drone" alone names none


def test_an_address_alone_selects_the_vehicle():
    addressing = VehicleAddressing(["drone1", "drone2"])
    assert addressing.route("drone two") == Route("drone2", "")
    assert addressing.selected == "drone2"


def test_an_unknown_vehicle_is_refused_and_the_selection_kept():
    addressing = VehicleAddressing(["drone1", "drone2"])
    route = addressing.route("drone three, take off")
    assert route.vehicle == "" and route.command == "take off"
    assert route.refusal == "There is no drone3 here, so nothing will move. I fly drone1 and drone2."
    assert addressing.selected == "drone1"


def test_numbers_in_commands_are_not_addresses():
    addressing = VehicleAddressing(["drone1", "drone2"])
    for text in ("go up two metres", "turn left 2 times", "fly forward one metre and land"):
        assert addressing.route(text) == Route("drone1", text)


def test_without_vehicles_the_text_passes_unchanged():
    assert VehicleAddressing([]).route("drone two, take off") == Route("", "drone two, take off")


def test_repeated_names_are_an_error():
    with pytest.raises(ValueError):
        VehicleAddressing(["drone1", "drone1"])
