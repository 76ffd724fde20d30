"""`mmchat param list|get|set|dump NODE`: a running node's parameters through its parameter services (what
`ros2 param` does), for machines without ros2cli.

  mmchat param list NODE                 names, each with what it may do (live / read at start-up, range)
  mmchat param get NODE NAME             the current value
  mmchat param set NODE NAME VALUE       VALUE as YAML (2.5, true, "[1.0, 2.0, 3.0]"); a refusal prints its reason
  mmchat param dump NODE                 every value as a parameter file (config/<node>.yaml format)

cli.py wires them in with ``param_cli.add_subparser(sub)``.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from mmchat_ros.tools.node_services import SERVICE_WAIT_S, NodeServiceClient


class ParameterClient(NodeServiceClient):
    """Calls one node's parameter services from a temporary node."""

    def names(self) -> list[str]:
        from rcl_interfaces.srv import ListParameters
        return sorted(self.call(ListParameters, "list_parameters", ListParameters.Request()).result.names)

    def get(self, names: list[str]) -> list[Any]:
        """Values as Python (None for a name the node does not have)."""
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python
        values = self.call(GetParameters, "get_parameters", GetParameters.Request(names=names)).values
        return [parameter_value_to_python(v) for v in values]

    def describe(self, names: list[str]) -> list:
        from rcl_interfaces.srv import DescribeParameters
        return self.call(DescribeParameters, "describe_parameters",
                         DescribeParameters.Request(names=names)).descriptors

    def set(self, name: str, value: Any):
        """SetParametersResult of setting ``name`` to ``value`` (converted to the parameter's current type where
        YAML reads it otherwise: 2 for a float parameter is 2.0)."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter
        current = self.get([name])[0]
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif isinstance(current, list) and current and isinstance(current[0], float) and isinstance(value, list):
            value = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self.call(SetParameters, "set_parameters", request).results[0]


def _show(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("\n...")


def run(args: argparse.Namespace) -> int:
    client = ParameterClient(args.node, args.wait)
    try:
        if args.param_command == "list":
            names = client.names()
            for name, descriptor in zip(names, client.describe(names)):
                note = "read-only" if descriptor.read_only else descriptor.additional_constraints
                print(f"  {name}" + (f"  ({note})" if note else ""))
        elif args.param_command == "get":
            value = client.get([args.name])[0]
            if value is None:
                print(f"{client.target} has no parameter '{args.name}'", file=sys.stderr)
                return 1
            print(_show(value))
        elif args.param_command == "set":
            result = client.set(args.name, yaml.safe_load(args.value))
            if not result.successful:
                print(f"refused: {result.reason}", file=sys.stderr)
                return 1
            print(f"{args.name} set to {_show(client.get([args.name])[0])}")
        else:   # dump
            names = client.names()
            values = dict(zip(names, client.get(names)))
            sys.stdout.write(yaml.safe_dump({client.target.lstrip("/"): {"ros__parameters": values}},
                                            default_flow_style=None, sort_keys=False, width=1000))
        return 0
    finally:
        client.close()


def add_subparser(sub) -> None:
    param = sub.add_parser("param", help="list, get, set or dump a running node's parameters")
    param_sub = param.add_subparsers(dest="param_command", required=True)
    for command, help_text in (("list", "parameter names and whether each may change at run time"),
                               ("get", "a parameter's value"), ("set", "set a parameter (live ones only)"),
                               ("dump", "every value, as a parameter file")):
        parser = param_sub.add_parser(command, help=help_text)
        parser.add_argument("node", help="node name, e.g. flight_controller")
        if command in ("get", "set"):
            parser.add_argument("name", help="parameter name")
        if command == "set":
            parser.add_argument("value", help="the new value as YAML, e.g. 1.5 or \"[-10.0, -10.0, -1.0]\"")
        parser.add_argument("--wait", type=float, default=SERVICE_WAIT_S, help="seconds to wait for the node")
        parser.set_defaults(func=run)
