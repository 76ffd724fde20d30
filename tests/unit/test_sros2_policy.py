"""The shipped SROS2 policy (config/sros2/policy.xml) is what `mmchat sros2-policy` generates from config/graph.yaml
now; every node of the graph has an enclave; each table name is one the node's code uses; the controller alone
serves take-off and executes plans, and nobody but face_auth publishes /auth/state."""
from __future__ import annotations

import importlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from mmchat_ros.core import topics
from mmchat_ros.tools import sros2_policy

ROOT = Path(__file__).resolve().parents[2]
NODES = ROOT / "src" / "mmchat_ros" / "nodes"


def test_the_shipped_policy_is_up_to_date():
    expected = sros2_policy.render(sros2_policy.node_permissions())
    shipped = (ROOT / "config" / "sros2" / "policy.xml").read_text()
    assert shipped == expected, "config/sros2/policy.xml is stale: run `python -m mmchat_ros.tools.sros2_policy -o config/sros2/policy.xml`"


def _names_in(source: str) -> str:
    """The source with each use of a core/topics.py constant followed by the topic's name, so a name looked up
    there counts as used."""
    constants = {name: value for name, value in vars(topics).items() if isinstance(value, topics.Topic)}
    names = [constants[name].relative_name for name in re.findall(r"topics\.([A-Z_]+)\b", source)
             if name in constants]
    names += [f"{prefix}/" for prefix, maker in (("cmd_vel", "velocity_command"), ("cmd_pose", "pose_command"))
              if f"topics.{maker}(" in source]
    return source + "".join(f' "{name}"' for name in names)


def test_every_table_name_is_used_by_the_node_code():
    for node, kinds in sros2_policy.INTERFACES.items():
        source = (NODES / f"{node}.py").read_text()
        if node in ("tello_driver", "mavlink_driver"):
            source += (NODES / "vehicle_driver.py").read_text() + (NODES / "camera.py").read_text()
        if node in ("flight_controller", "planner"):
            source += (NODES / "auth_guard.py").read_text()
        source = _names_in(source)
        for names in kinds.values():
            for name in names:
                bare = name.split("/", 2)[-1] if name.startswith("/flight_controller/") else name
                if name.startswith("cmd_vel/") or name.startswith("cmd_pose/"):
                    bare = name.split("/")[0] + "/"
                if node == "camera" and name.startswith("/sim/"):
                    source = (ROOT / "config" / "graph.yaml").read_text()
                assert f'"{bare}' in source or f"'{bare}" in source or bare in source, f"{node}: {name}"


def test_policy_structure_and_who_may_do_what():
    root = ET.fromstring((ROOT / "config" / "sros2" / "policy.xml").read_text())
    enclaves = {e.get("path"): e for e in root.iter("enclave")}
    graph_nodes = {spec.name for mode, args in sros2_policy.MODE_ARGUMENTS
                   for spec in sros2_policy.load_graph().resolve(mode, args)}
    assert set(enclaves) == {f"/mmchat/{n}" for n in graph_nodes}

    def allowed(node, group, attribute):
        return {t.text for g in enclaves[f"/mmchat/{node}"].iter(group) if g.get(attribute) == "ALLOW" for t in g}
    publishers_of_auth = [n for n in graph_nodes if "/auth/state" in allowed(n, "topics", "publish")]
    assert publishers_of_auth == ["face_auth"]
    assert "/takeoff" in allowed("flight_controller", "services", "reply")
    assert "/execute_plan" in allowed("flight_controller", "actions", "execute")
    assert "/execute_plan" in allowed("planner", "actions", "call")
    assert not any("/motor_command" in allowed(n, "topics", "publish") for n in graph_nodes - {"flight_controller"})
    assert "/sim/camera/image_raw" in allowed("sim", "topics", "publish")   # the graph's remapping applied
    assert "/cmd_vel/teleop" in allowed("teleop", "topics", "publish")
    assert "/cmd_vel/teleop" not in allowed("follow", "topics", "publish")


def test_lifecycle_nodes_serve_their_state_and_only_the_activation_node_changes_it():
    declared = {node for node in sros2_policy.INTERFACES
                if "start_state" in importlib.import_module(f"mmchat_ros.nodes.{node}").PARAMS}
    assert sros2_policy.LIFECYCLE_NODES == declared
    root = ET.fromstring((ROOT / "config" / "sros2" / "policy.xml").read_text())
    enclaves = {e.get("path"): e for e in root.iter("enclave")}

    def allowed(node, group, attribute):
        return {t.text for g in enclaves[f"/mmchat/{node}"].iter(group) if g.get(attribute) == "ALLOW" for t in g}
    assert "~/change_state" in allowed("tracker", "services", "reply")
    assert "~/transition_event" in allowed("mavlink_driver", "topics", "publish")
    assert {"/tracker/change_state", "/gesture/change_state", "/face_auth/set_parameters"} <= \
        allowed("activation", "services", "request")
    callers = [node for node in sros2_policy.INTERFACES
               if any(name.endswith("/change_state") for name in allowed(node, "services", "request"))]
    assert callers == ["activation"]
