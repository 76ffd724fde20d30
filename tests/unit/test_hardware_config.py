"""The per-vehicle hardware override files are valid ROS 2 parameter files that only set parameters the nodes
declare, and put the flight controller on the velocity interface."""
import importlib
from pathlib import Path

import pytest
import yaml

from mmchat_ros.core.launch_graph import validate_parameter_file

CONFIG = Path(__file__).resolve().parents[2] / "config"
NODE_MODULES = {"flight_controller": "mmchat_ros.nodes.flight_controller", "camera": "mmchat_ros.nodes.camera"}


@pytest.mark.parametrize("vehicle", ["tello", "mavlink"])
def test_hardware_overrides_name_declared_parameters(vehicle):
    path = CONFIG / f"hardware_{vehicle}.yaml"
    validate_parameter_file(path)
    data = yaml.safe_load(path.read_text())
    for node, body in data.items():
        params = importlib.import_module(NODE_MODULES[node]).PARAMS
        for name, value in body["ros__parameters"].items():
            assert name in params, f"{path.name}: {node} declares no parameter '{name}'"
            default = params[name].default
            assert type(value) is type(default) or isinstance(default, float) and isinstance(value, (int, float)), \
                f"{path.name}: {node}.{name} has the wrong type"
    assert data["flight_controller"]["ros__parameters"]["vehicle_interface"] == "velocity"
