"""The node graph as data (config/graph.yaml): loading, validation and per-mode resolution.

One description drives both `ros2 launch mmchat_ros <mode>.launch.py` on a full ROS 2 install and `mmchat launch
<mode>` here. Errors name the file, the line and the offending key so a broken edit is found at once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmchat_ros.core.paths import share_dir

NODE_KEYS = {"executable", "description", "modes", "parameters", "remappings", "respawn", "respawn_delay_s",
             "arguments", "mode_overrides", "inline_parameters", "when", "part"}
# Which machine runs a node: the vehicle's companion computer or the operator's station (docs/deployment.md).
PARTS = ("robot", "ground")
ALL_PARTS = "all"
# vehicle_name:=NAME starts every node of the launch under the ROS namespace /NAME: nodes name their topics,
# services and actions relatively, so one vehicle's graph stays apart from another's in the same ROS domain.
VEHICLE_NAME_ARGUMENT = "vehicle_name"
_NAMESPACE_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TOP_KEYS = {"modes", "nodes", "launch_arguments"}


class GraphError(ValueError):
    """A malformed graph or parameter file; the message names the file, line and key."""


@dataclass
class NodeSpec:
    name: str
    executable: str
    parameter_files: list[Path] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)       # inline overrides, applied after the files
    remappings: dict[str, str] = field(default_factory=dict)
    respawn: bool = False
    respawn_delay_s: float = 1.0
    arguments: list[str] = field(default_factory=list)
    description: str = ""
    part: str = ""
    namespace: str = ""     # "/drone1", or "" for the root namespace

    def ros_args(self) -> list[str]:
        """Command-line arguments for rclpy, exactly what `ros2 run` / launch_ros would pass."""
        args = [*self.arguments, "--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:={self.namespace}"]
        for path in self.parameter_files_applied():
            args += ["--params-file", str(path)]
        for key, value in self.parameters_applied().items():
            args += ["-p", f"{key}:={_param_literal(value)}"]
        for src, dst in self.remappings.items():
            args += ["-r", f"{src}:={dst}"]
        return args

    # rcl applies a parameter file's 'sim:' section to the node /sim only, not to /drone1/sim: a namespaced node gets
    # its files' values as parameters instead.
    def parameter_files_applied(self) -> list[Path]:
        """The parameter files as given to the node: none in a namespace (parameters_applied holds their values)."""
        return [] if self.namespace else list(self.parameter_files)

    def parameters_applied(self) -> dict[str, Any]:
        """The inline parameters given to the node, after its files' values in a namespace."""
        if not self.namespace:
            return dict(self.parameters)
        from_files: dict[str, Any] = {}
        for path in self.parameter_files:
            section = validate_parameter_file(path).get(self.name) or {}
            from_files.update(section.get("ros__parameters") or {})
        return {**from_files, **self.parameters}


def _param_literal(value: Any) -> str:
    # rcl parses -p values as YAML; dump keeps strings/bools/lists typed correctly.
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that records each mapping key's line, for error messages."""


def _construct_mapping(loader, node, deep=False):
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
    lines = {}
    for key_node, _ in node.value:
        lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1
    mapping_with_lines = _LinedDict(mapping)
    mapping_with_lines.lines = lines
    return mapping_with_lines


class _LinedDict(dict):
    lines: dict


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> Any:
    """Parse YAML, turning syntax errors into GraphError with file:line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise GraphError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        return yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise GraphError(f"{where}: YAML error: {exc.problem or exc.context}") from exc


def _line(mapping: Any, key: str) -> str:
    lines = getattr(mapping, "lines", {})
    return f":{lines[key]}" if key in lines else ""


def validate_parameter_file(path: Path, node_name: str | None = None) -> dict:
    """A ROS 2 parameter file: {node: {ros__parameters: {...}}}. Returns the parsed data."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise GraphError(f"{path}:1: a parameter file must be a mapping of node names to 'ros__parameters'")
    for node_key, body in data.items():
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise GraphError(f"{path}{_line(data, node_key)}: key '{node_key}' must contain 'ros__parameters'")
        extra = set(body) - {"ros__parameters"}
        if extra:
            bad = sorted(extra)[0]
            raise GraphError(f"{path}{_line(body, bad)}: unexpected key '{bad}' under '{node_key}' "
                             "(only 'ros__parameters' is allowed)")
        params = body["ros__parameters"]
        if params is not None and not isinstance(params, dict):
            raise GraphError(f"{path}{_line(body, 'ros__parameters')}: '{node_key}.ros__parameters' must be a mapping")
    return data


@dataclass
class Graph:
    path: Path
    modes: dict[str, str]
    nodes: dict[str, dict]
    launch_arguments: dict[str, dict]

    def _parameter_files(self, node: str, entries: list, args: dict[str, str]) -> list[Path]:
        files = []
        for entry in entries:
            path = self.path.parent / _substitute_in_text(str(entry), args, f"node '{node}' parameters")
            if "$(arg" in str(entry):   # only known now: check it as load_graph checks the fixed ones
                try:
                    validate_parameter_file(path)
                except GraphError as exc:
                    raise GraphError(f"node '{node}': {exc}") from exc
            files.append(path)
        return files

    def resolve(self, mode: str, arguments: dict[str, str] | None = None) -> list[NodeSpec]:
        """The nodes to start in ``mode``, with launch arguments substituted ("$(arg name)")."""
        if mode not in self.modes:
            raise GraphError(f"unknown mode '{mode}'; known modes: {', '.join(sorted(self.modes))} "
                             f"(defined in {self.path})")
        args = {name: str(spec.get("default", "")) for name, spec in self.launch_arguments.items()}
        for key, value in (arguments or {}).items():
            if key not in self.launch_arguments:
                raise GraphError(f"unknown launch argument '{key}'; known: {', '.join(sorted(self.launch_arguments))}")
            args[key] = value
        part = args.get("part", ALL_PARTS)
        if part not in (*PARTS, ALL_PARTS):
            raise GraphError(f"part '{part}' is not one of {', '.join((*PARTS, ALL_PARTS))}")
        namespace = _vehicle_namespace(args.get(VEHICLE_NAME_ARGUMENT, ""))
        specs = []
        config_dir = self.path.parent
        for name, raw in self.nodes.items():
            if mode not in raw.get("modes", []):
                continue
            # `when: {argument: value}`: start the node only if every named launch argument has that value
            # (e.g. the Tello driver when vehicle:=tello).
            if any(str(args.get(arg)) != str(value) for arg, value in (raw.get("when") or {}).items()):
                continue
            if part != ALL_PARTS and raw.get("part") != part:
                if "part" not in raw:
                    raise GraphError(f"part:={part} asked for, but node '{name}' names no part ({self.path})")
                continue
            merged = dict(raw)
            override = (raw.get("mode_overrides") or {}).get(mode) or {}
            for key, value in override.items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
            specs.append(NodeSpec(
                name=name,
                executable=merged["executable"],
                parameter_files=self._parameter_files(name, merged.get("parameters") or [], args),
                parameters={k: _substitute(v, args) for k, v in (merged.get("inline_parameters") or {}).items()},
                remappings={**dict(merged.get("remappings") or {}), **_namespace_remappings(namespace)},
                respawn=bool(merged.get("respawn", False)),
                respawn_delay_s=float(merged.get("respawn_delay_s", 1.0)),
                arguments=[_substitute(a, args) for a in merged.get("arguments") or []],
                description=str(merged.get("description", "")),
                part=str(merged.get("part", "")),
                namespace=namespace,
            ))
        return specs


def _vehicle_namespace(vehicle_name: str) -> str:
    if not vehicle_name:
        return ""
    if not _NAMESPACE_TOKEN.fullmatch(vehicle_name):
        raise GraphError(f"{VEHICLE_NAME_ARGUMENT} '{vehicle_name}' is not a ROS name (letters, digits and '_', "
                         "not starting with a digit)")
    return f"/{vehicle_name}"


def _namespace_remappings(namespace: str) -> dict[str, str]:
    """rclpy's use_sim_time follows the absolute /clock; in a vehicle's namespace it follows that vehicle's
    simulator (its relative 'clock'), not another's."""
    return {"/clock": "clock"} if namespace else {}


_ARG_PATTERN = re.compile(r"\$\(arg ([A-Za-z0-9_]+)\)")


def _substitute_in_text(text: str, args: dict[str, str], where: str) -> str:
    """"hardware_$(arg vehicle).yaml" → "hardware_tello.yaml"."""
    def replace(match):
        if match.group(1) not in args:
            raise GraphError(f"{where}: '{match.group(0)}' names an unknown launch argument")
        return args[match.group(1)]
    return _ARG_PATTERN.sub(replace, text)


def _substitute(value: Any, args: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("$(arg ") and value.endswith(")"):
        name = value[len("$(arg "):-1].strip()
        if name not in args:
            raise GraphError(f"'{value}' names an unknown launch argument")
        raw = args[name]
        parsed = yaml.safe_load(raw) if raw != "" else ""
        return parsed
    return value


def load_graph(path: str | Path | None = None) -> Graph:
    path = Path(path) if path else share_dir() / "config" / "graph.yaml"
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise GraphError(f"{path}:1: the graph must be a mapping with keys {sorted(TOP_KEYS)}")
    for key in data:
        if key not in TOP_KEYS:
            raise GraphError(f"{path}{_line(data, key)}: unknown top-level key '{key}' (known: {sorted(TOP_KEYS)})")
    modes = data.get("modes") or {}
    nodes = data.get("nodes") or {}
    launch_arguments = data.get("launch_arguments") or {}
    if not isinstance(modes, dict) or not modes:
        raise GraphError(f"{path}{_line(data, 'modes')}: 'modes' must map mode names to descriptions")
    if not isinstance(nodes, dict):
        raise GraphError(f"{path}{_line(data, 'nodes')}: 'nodes' must map node names to specs")
    for name, spec in nodes.items():
        where = f"{path}{_line(nodes, name)}"
        if not isinstance(spec, dict):
            raise GraphError(f"{where}: node '{name}' must be a mapping")
        for key in spec:
            if key not in NODE_KEYS:
                raise GraphError(f"{path}{_line(spec, key)}: node '{name}': unknown key '{key}' "
                                 f"(known: {sorted(NODE_KEYS)})")
        if "executable" not in spec:
            raise GraphError(f"{where}: node '{name}' has no 'executable'")
        for mode in spec.get("modes") or []:
            if mode not in modes:
                raise GraphError(f"{path}{_line(spec, 'modes')}: node '{name}' lists unknown mode '{mode}'")
        when = spec.get("when") or {}
        if not isinstance(when, dict):
            raise GraphError(f"{path}{_line(spec, 'when')}: node '{name}': 'when' must map launch arguments to values")
        for arg in when:
            if arg not in launch_arguments:
                raise GraphError(f"{path}{_line(spec, 'when')}: node '{name}': 'when' names unknown launch argument "
                                 f"'{arg}'")
        if "part" in spec and spec["part"] not in PARTS:
            raise GraphError(f"{path}{_line(spec, 'part')}: node '{name}': part '{spec['part']}' is not one of "
                             f"{', '.join(PARTS)}")
        for override_mode in (spec.get("mode_overrides") or {}):
            if override_mode not in modes:
                raise GraphError(f"{path}{_line(spec, 'mode_overrides')}: node '{name}': mode_overrides names "
                                 f"unknown mode '{override_mode}'")
        param_files = spec.get("parameters") or []
        if not isinstance(param_files, list):
            raise GraphError(f"{path}{_line(spec, 'parameters')}: node '{name}': 'parameters' must be a list of "
                             "parameter files in config/")
        for param_file in param_files:
            if "$(arg" not in str(param_file):    # files named by a launch argument are checked in resolve()
                validate_parameter_file(path.parent / param_file)
    return Graph(path=path, modes={k: str(v) for k, v in modes.items()}, nodes=dict(nodes),
                 launch_arguments=dict(launch_arguments))
