"""Write a node's declared parameters as a documented ROS 2 parameter file (config/<node>.yaml).

    python -m mmchat_ros.tools.paramdoc mmchat_ros.nodes.sim sim > config/sim.yaml

tests/unit/test_parameter_files.py checks that every node's config file lists exactly the parameters the node
declares, each with its description.
"""
from __future__ import annotations

import importlib
import sys

import yaml


def render(node_name: str, params: dict, title: str = "") -> str:
    lines = [f"# Parameters of the {node_name} node{': ' + title if title else ''}.",
             "# Every parameter the node declares, with its default; edit values here or override at launch.",
             f"{node_name}:", "  ros__parameters:"]
    for name, param in params.items():
        lines.append(f"    # {param.description}")
        value = yaml.safe_dump({name: param.default}, default_flow_style=True, width=1000).strip()[1:-1]
        lines.append(f"    {value}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = argv if argv is not None else sys.argv[1:]
    module = importlib.import_module(argv[0])
    doc = (module.__doc__ or "").strip().splitlines()[0]
    sys.stdout.write(render(argv[1], module.PARAMS, doc.split(":", 1)[-1].strip().rstrip(".")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
