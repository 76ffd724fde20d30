"""launch/*.launch.py on a full ROS 2 install: `launch`/`launch_ros` are not installable here, so a minimal
test double of their API records what the launch files build; the node set must equal what `mmchat launch`
starts for the same mode and arguments (both read config/graph.yaml)."""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

from mmchat_ros.core.launch_graph import load_graph

ROOT = Path(__file__).resolve().parents[2]


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    values: dict = {}

    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context.arguments.get(self.name, _LaunchConfiguration.defaults[self.name])


@pytest.fixture
def fake_launch_api(monkeypatch):
    launch = types.ModuleType("launch")
    launch.LaunchDescription = lambda actions: actions
    actions = types.ModuleType("launch.actions")
    actions.DeclareLaunchArgument = type("DeclareLaunchArgument", (_Recorded,), {})
    actions.OpaqueFunction = type("OpaqueFunction", (_Recorded,), {})
    actions.SetEnvironmentVariable = type("SetEnvironmentVariable", (_Recorded,), {})
    substitutions = types.ModuleType("launch.substitutions")
    substitutions.LaunchConfiguration = _LaunchConfiguration
    substitutions.EnvironmentVariable = type("EnvironmentVariable", (_Recorded,), {})
    launch_ros = types.ModuleType("launch_ros")
    launch_ros_actions = types.ModuleType("launch_ros.actions")
    launch_ros_actions.Node = type("Node", (_Recorded,), {})
    for name, module in {"launch": launch, "launch.actions": actions, "launch.substitutions": substitutions,
                         "launch_ros": launch_ros, "launch_ros.actions": launch_ros_actions}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return actions


def load_launch_file(name: str):
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), ROOT / "launch" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


@pytest.mark.parametrize("mode", ["sim", "hardware"])
def test_launch_file_starts_the_graph_nodes(fake_launch_api, mode):
    description = load_launch_file(f"{mode}.launch.py")
    graph = load_graph()
    declared = {a.args[0]: a.kwargs["default_value"] for a in description
                if type(a).__name__ == "DeclareLaunchArgument"}
    assert set(declared) == set(graph.launch_arguments)
    env_vars = {a.args[0] for a in description if type(a).__name__ == "SetEnvironmentVariable"}
    assert {"ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY", "FASTRTPS_DEFAULT_PROFILES_FILE"} <= env_vars
    opaque = next(a for a in description if type(a).__name__ == "OpaqueFunction")
    _LaunchConfiguration.defaults = declared
    context = types.SimpleNamespace(arguments={"airframe": "crazyflie"})
    nodes = opaque.kwargs["function"](context)
    expected = graph.resolve(mode, {"airframe": "crazyflie"})
    assert [n.kwargs["name"] for n in nodes] == [s.name for s in expected]
    for node, spec in zip(nodes, expected):
        assert node.kwargs["package"] == "mmchat_ros"
        assert node.kwargs["executable"] == spec.executable
        assert node.kwargs["respawn"] == spec.respawn
        files = [p for p in node.kwargs["parameters"] if isinstance(p, str)]
        assert files == [str(p) for p in spec.parameter_files] and all(Path(f).exists() for f in files)
        inline = [p for p in node.kwargs["parameters"] if isinstance(p, dict)]
        if "airframe" in spec.parameters:
            assert inline[0]["airframe"] == "crazyflie"
