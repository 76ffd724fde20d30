"""Documentation generated from the parameters the nodes declare (each node module's ``PARAMS``).

    python -m mmchat_ros.tools.paramdoc mmchat_ros.nodes.sim sim > config/sim.yaml   # one node's parameter file
    python -m mmchat_ros.tools.paramdoc --markdown > docs/parameters.md              # every node, for people

tests/unit/test_parameter_files.py checks that every node's config file lists exactly the parameters the node
declares, each with its description; tests/unit/test_parameter_reference.py that docs/parameters.md is what
``--markdown`` writes now.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

import yaml

from mmchat_ros.core.launch_graph import Graph, load_graph


def yaml_value(value) -> str:
    """``value`` as a parameter file writes it (flow style: ``0.5``, ``device``, ``''``, ``[1.0, 2.0]``)."""
    return yaml.safe_dump({"v": value}, default_flow_style=True, width=1000).strip()[1:-1].split(": ", 1)[1]


def render(node_name: str, params: dict, title: str = "") -> str:
    lines = [f"# Parameters of the {node_name} node{': ' + title if title else ''}.",
             "# Every parameter the node declares, with its default; edit values here or override at launch.",
             f"{node_name}:", "  ros__parameters:"]
    for name, param in params.items():
        lines.append(f"    # {param.description}")
        if constraints(param):
            lines.append(f"    #   ({constraints(param)})")
        lines.append(f"    {name}: {yaml_value(param.default)}")
    return "\n".join(lines) + "\n"


def constraints(param) -> str:
    """What a parameter file and the reference say of a live or bounded parameter ('' for the rest)."""
    return param.rule.constraints() if param.live or param.value_range else ""


def node_modules(graph: Graph) -> dict[str, str]:
    """Graph node name -> the module its executable's entry point runs (installed console scripts)."""
    scripts = {entry.name: entry.value.split(":")[0] for entry in entry_points(group="console_scripts")}
    missing = sorted(spec["executable"] for spec in graph.nodes.values() if spec["executable"] not in scripts)
    if missing:
        raise SystemExit(f"no console script for {', '.join(missing)}: run ./setup.sh (entry_points.txt changed?)")
    return {name: scripts[spec["executable"]] for name, spec in graph.nodes.items()}


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(graph: Graph) -> str:
    """docs/parameters.md: every node of config/graph.yaml with its declared parameters, and the launch arguments."""
    modules = node_modules(graph)
    lines = ["# Node and parameter reference", "",
             "Generated from the parameters each node declares (`PARAMS` in its module) and from `config/graph.yaml`",
             "by `python -m mmchat_ros.tools.paramdoc --markdown > docs/parameters.md`; do not edit it by hand",
             "(`tests/unit/test_parameter_reference.py` fails when it is out of date). Defaults are written as in the",
             "parameter files, `config/<node>.yaml`, where values are edited; `mmchat launch MODE name:=value` sets a",
             "launch argument, `--ros-args -p name:=value` a parameter of a node run on its own.", "",
             "| node | modes | what it does |", "|---|---|---|"]
    for name, spec in graph.nodes.items():
        lines.append(f"| [`{name}`](#{name}) | {', '.join(spec['modes'])} | {_cell(spec.get('description', ''))} |")
    lines += ["", "## Modes and launch arguments", "",
              "`mmchat launch MODE [name:=value ...]` here, `ros2 launch mmchat_ros MODE.launch.py [name:=value ...]`"
              " on a full ROS 2 install.", "", "| mode | what it runs on |", "|---|---|"]
    lines += [f"| `{mode}` | {_cell(text)} |" for mode, text in graph.modes.items()]
    lines += ["", "| launch argument | default | description |", "|---|---|---|"]
    for argument, spec in graph.launch_arguments.items():
        lines.append(f"| `{argument}` | `{_cell(spec['default']) or chr(39) * 2}` | {_cell(spec['description'])} |")
    for name, spec in graph.nodes.items():
        module = importlib.import_module(modules[name])
        when = ", ".join(f"{key}:={value}" for key, value in spec.get("when", {}).items())
        lines += ["", f"## {name}", "", _cell(spec.get("description", "")), "",
                  f"Executable `{spec['executable']}` (`{modules[name]}`); modes: {', '.join(spec['modes'])}"
                  + (f", only with {when}" if when else "") + f"; parameter file `config/{name}.yaml`.", "",
                  "| parameter | default | description |", "|---|---|---|"]
        for param_name, param in module.PARAMS.items():
            note = " (read-only)" if param.read_only else f" ({constraints(param)})" if constraints(param) else ""
            lines.append(f"| `{param_name}` | `{_cell(yaml_value(param.default))}` | {_cell(param.description)}{note} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmchat_ros.tools.paramdoc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true",
                        help="write the reference of every node in config/graph.yaml (docs/parameters.md)")
    parser.add_argument("module", nargs="?", help="a node module, e.g. mmchat_ros.nodes.sim")
    parser.add_argument("node", nargs="?", help="the node's name, e.g. sim")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(render_markdown(load_graph()))
        return 0
    if not (args.module and args.node):
        parser.error("give MODULE and NODE, or --markdown")
    module = importlib.import_module(args.module)
    doc = (module.__doc__ or "").strip().splitlines()[0]
    sys.stdout.write(render(args.node, module.PARAMS, doc.split(":", 1)[-1].strip().rstrip(".")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
