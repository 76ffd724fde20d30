"""Every node's config/<node>.yaml lists exactly the parameters the node declares, each described, and every
launch graph entry points at an installed node module."""
import importlib
from pathlib import Path

import pytest
import yaml

from mmchat_ros.core.launch_graph import load_graph
from mmchat_ros.tools.paramdoc import render

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = {line.split("=")[0].strip(): line.split("=")[1].strip()
                for line in (ROOT / "entry_points.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
NODES = {name: target.split(":")[0] for name, target in ENTRY_POINTS.items() if ".nodes." in target}


@pytest.mark.parametrize("node", sorted(NODES))
def test_config_file_documents_every_declared_parameter(node):
    module = importlib.import_module(NODES[node])
    path = ROOT / "config" / f"{node}.yaml"
    assert path.exists(), f"config/{node}.yaml missing: python -m mmchat_ros.tools.paramdoc {NODES[node]} {node}"
    data = yaml.safe_load(path.read_text())
    assert set(data) == {node}
    declared = set(module.PARAMS)
    documented = set(data[node]["ros__parameters"])
    assert documented == declared, f"only declared: {declared - documented}; only in file: {documented - declared}"
    text = path.read_text()
    for name, param in module.PARAMS.items():
        assert f"# {param.description}" in text, f"{node}.{name}: description missing from config/{node}.yaml"
        assert param.description.strip(), f"{node}.{name} has no description"
        assert type(data[node]["ros__parameters"][name]) is type(param.default) or \
            isinstance(param.default, float) and isinstance(data[node]["ros__parameters"][name], (int, float)), \
            f"{node}.{name}: type in the file differs from the declared default's"


def test_paramdoc_round_trips():
    from mmchat_ros.nodes.common import Param
    text = render("n", {"a": Param(1.5, "a float"), "b": Param([1.0, 2.0], "a list"), "c": Param("", "empty")})
    assert yaml.safe_load(text) == {"n": {"ros__parameters": {"a": 1.5, "b": [1.0, 2.0], "c": ""}}}


def test_graph_executables_are_entry_points():
    graph = load_graph()
    for name, spec in graph.nodes.items():
        assert spec["executable"] in ENTRY_POINTS, f"graph node {name}: '{spec['executable']}' not in entry_points.txt"
