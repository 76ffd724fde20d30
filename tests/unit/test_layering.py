"""The layers' import rules (docs/architecture.md, "Layers and their import rules"), checked on the source of every
module under src/mmchat_ros with ast: every import statement counts, at module level or inside a function.

- core imports no ROS (rclpy, rosidl, message packages, launch, our generated interfaces) and no other layer;
- backends import no nodes, tools or web;
- a node module imports no other node module, only the shared helper modules below;
- tools import a node module only inside the function that runs it (`mmchat view`, `mmchat panel`: the imported
  module's ``main`` is called there), never at module level; the shared helpers they may import anywhere.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "src" / "mmchat_ros"
ROOT = PACKAGE_DIR.parents[1]

# Modules under nodes/ that are not nodes but what several nodes (and tools) share. Every other module under
# nodes/ is a node with an entry point in entry_points.txt.
SHARED_NODE_HELPERS = {
    "mmchat_ros.nodes.common",            # entry point, declared parameters, the graph's QoS profiles
    "mmchat_ros.nodes.base",              # the node base class and its worker threads (queue, paced loop, own thread)
    "mmchat_ros.nodes.lifecycle",         # the lifecycle (managed) node base class and its entry point
    "mmchat_ros.nodes.image_conversion",  # sensor_msgs/Image <-> numpy, JPEG/PNG encoding, CameraInfo
    "mmchat_ros.nodes.ros_conversions",   # geometry messages <-> the core's numpy types
    "mmchat_ros.nodes.qos_watch",         # peers whose QoS or type can't match, from the graph (MmchatNode uses it)
    "mmchat_ros.nodes.auth_guard",        # the receiving end of /auth/state (flight controller, planner)
    "mmchat_ros.nodes.vehicle_driver",    # what tello_driver and mavlink_driver share
    "mmchat_ros.nodes.scheduling",        # real-time priority and niceness that hold against the other nodes
}

# Known violations still to be removed, each "importer -> imported". Printed by the test while not empty; one that
# no longer occurs fails the test, so this list only shrinks.
KNOWN_VIOLATIONS: set[str] = set()

ROS_TOP_LEVEL = {"rclpy", "launch", "launch_ros", "builtin_interfaces", "rcl_interfaces", "action_msgs",
                 "unique_identifier_msgs", "rosbag2_py", "ament_index_python"}
ROS_GENERATED = ("mmchat_ros.msg", "mmchat_ros.srv", "mmchat_ros.action")


@dataclass(frozen=True)
class Import:
    importer: str       # dotted module name
    imported: str       # dotted module name (the module itself where ``from package import module``)
    line: int
    function: ast.AST | None   # the innermost function around the statement, None at module level

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package_module(name: str) -> bool:
    path = PACKAGE_DIR.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> list[Import]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, function: ast.AST | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(name, alias.name, child.lineno, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[:len(package.split(".")) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in child.names:
                    submodule = f"{base}.{alias.name}"
                    found.append(Import(name, submodule if is_package_module(submodule) else base, child.lineno,
                                        function))
            visit(child, child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function)

    visit(ast.parse(path.read_text(), str(path)), None)
    return found


def in_layer(module: str, layer: str) -> bool:
    return module == f"mmchat_ros.{layer}" or module.startswith(f"mmchat_ros.{layer}.")


def is_ros(module: str) -> bool:
    top = module.split(".")[0]
    return (top in ROS_TOP_LEVEL or top.startswith("rosidl") or top.endswith(("_msgs", "_srvs"))
            or module.startswith(ROS_GENERATED))


def is_node_module(module: str) -> bool:
    return in_layer(module, "nodes") and module not in SHARED_NODE_HELPERS and module != "mmchat_ros.nodes"


def calls_main_of(function: ast.AST, module: str) -> bool:
    """Whether ``function`` calls ``<module's local name>.main(...)``."""
    local = module.rpartition(".")[2]
    return any(isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "main"
               and isinstance(call.func.value, ast.Name) and call.func.value.id == local
               for call in ast.walk(function))


def violation(imp: Import) -> str | None:
    """Why ``imp`` breaks a layer rule, or None."""
    if in_layer(imp.importer, "core"):
        if is_ros(imp.imported):
            return "core imports ROS"
        if any(in_layer(imp.imported, layer) for layer in ("backends", "nodes", "tools", "web")) \
                or imp.imported == "mmchat_ros.launch_support":
            return "core imports another layer"
    elif in_layer(imp.importer, "backends"):
        if any(in_layer(imp.imported, layer) for layer in ("nodes", "tools", "web")):
            return "a backend imports a node, a tool or the web page"
    elif in_layer(imp.importer, "nodes"):
        if is_node_module(imp.imported) and imp.imported != imp.importer:
            return "a node module imports another node module (move what they share into a shared helper)"
        if in_layer(imp.imported, "tools"):
            return "a node imports a tool"
    elif in_layer(imp.importer, "tools"):
        if is_node_module(imp.imported) and (imp.function is None or not calls_main_of(imp.function,
                                                                                         imp.imported)):
            return "a tool imports a node module outside the function that runs the node (its main)"
    return None


def all_imports() -> list[Import]:
    return [imp for path in sorted(PACKAGE_DIR.rglob("*.py")) for imp in imports_of(path)]


def test_every_module_under_nodes_is_a_node_or_a_listed_shared_helper():
    entry_modules = {line.split("=")[1].strip().split(":")[0]
                     for line in (ROOT / "entry_points.txt").read_text().splitlines()
                     if "=" in line and not line.startswith("#")}
    modules = {module_name(path) for path in (PACKAGE_DIR / "nodes").glob("*.py") if path.name != "__init__.py"}
    unclassified = modules - entry_modules - SHARED_NODE_HELPERS
    assert not unclassified, f"add these to SHARED_NODE_HELPERS (with why) or give them an entry point: {unclassified}"
    assert not SHARED_NODE_HELPERS & entry_modules, "a shared helper must not be a node itself"
    assert SHARED_NODE_HELPERS <= modules, f"listed but gone: {SHARED_NODE_HELPERS - modules}"


def test_layers_import_only_what_their_rules_allow():
    found = {}
    for imp in all_imports():
        why = violation(imp)
        if why:
            found.setdefault(str(imp), f"{imp.importer.replace('.', '/')}.py:{imp.line}: {imp} ({why})")
    if KNOWN_VIOLATIONS:
        print("known layer violations still to remove:", *sorted(KNOWN_VIOLATIONS), sep="\n  ")
    new = [found[key] for key in sorted(set(found) - KNOWN_VIOLATIONS)]
    assert not new, "layer rules broken (docs/architecture.md):\n" + "\n".join(new)
    fixed = KNOWN_VIOLATIONS - set(found)
    assert not fixed, f"no longer violations, remove them from KNOWN_VIOLATIONS: {sorted(fixed)}"


@pytest.mark.parametrize("source, importer, expected", [
    ("import rclpy", "core/x.py", "core imports ROS"),
    ("from geometry_msgs.msg import Twist", "core/x.py", "core imports ROS"),
    ("from mmchat_ros.msg import AuthState", "core/x.py", "core imports ROS"),
    ("from mmchat_ros.backends import package_dir", "core/x.py", "core imports another layer"),
    ("from ..nodes import common", "core/x.py", "core imports another layer"),
    ("from mmchat_ros.core.paths import data_dir", "core/x.py", None),
    ("from mmchat_ros.nodes.common import Param", "backends/x.py", "a backend imports a node, a tool or the web page"),
    ("from mmchat_ros.nodes.camera import CameraNode", "nodes/x.py", "a node module imports another node module "
                                                                     "(move what they share into a shared helper)"),
    ("from mmchat_ros.nodes.common import Param", "nodes/x.py", None),
    ("from mmchat_ros.nodes import camera", "tools/x.py",
     "a tool imports a node module outside the function that runs the node (its main)"),
    ("def f():\n    from mmchat_ros.nodes import camera\n    return camera.CameraNode", "tools/x.py",
     "a tool imports a node module outside the function that runs the node (its main)"),
    ("def f():\n    from mmchat_ros.nodes import camera\n    return camera.main([])", "tools/x.py", None),
])
def test_the_checker_sees_each_kind_of_violation(tmp_path, monkeypatch, source, importer, expected):
    package = tmp_path / "mmchat_ros"
    for layer in ("core", "backends", "nodes", "tools"):
        (package / layer).mkdir(parents=True)
        (package / layer / "__init__.py").write_text("")
    for module in ("nodes/camera.py", "nodes/common.py", "core/paths.py"):
        (package / module).write_text("")
    (package / importer).write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_DIR", package)
    assert [violation(imp) for imp in imports_of(package / importer)] == [expected]
