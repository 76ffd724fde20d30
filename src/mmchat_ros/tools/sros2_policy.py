"""SROS2 access-control policy for the graph: which node may publish, subscribe, serve, call what.

    python -m mmchat_ros.tools.sros2_policy [-o config/sros2/policy.xml]

The table below lists each node's own topics, services and actions as its code names them (relative names, before
remapping); tests/unit/test_sros2_policy.py checks every name appears in that node's source and that every node of
config/graph.yaml has a row. The policy applies the graph's remappings for every mode (sim, gazebo, hardware with
each vehicle, voice and the activation policy on), gives each node one enclave /mmchat/<node>, and adds what every rclpy node needs (rosout,
parameter events, its own parameter services). With a full ROS 2 install:
``ros2 security generate_artifacts -k KEYSTORE -p config/sros2/policy.xml`` (docs/security.md).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from xml.sax.saxutils import escape

from mmchat_ros.core.activation import load_policy
from mmchat_ros.core.launch_graph import load_graph
from mmchat_ros.core.paths import config_file
from mmchat_ros.core.topics import FLIGHT_SOURCES
AUTH_GUARD = {"subscribe": ["auth/state"], "publish": ["diagnostics"]}   # nodes/auth_guard.py (controller, planner)
VEHICLE_DRIVER = {"publish": ["odom", "imu", "battery", "camera/image_raw", "camera/camera_info"],
                  "subscribe": ["cmd_vel/vehicle", "vehicle/enable", "flight/state"]}

# node -> kind -> names. Kinds: publish, subscribe, reply (serves a service), request (calls one),
# execute (serves an action), call (sends action goals).
INTERFACES: dict[str, dict[str, list[str]]] = {
    "sim": {"publish": ["odom", "imu", "battery", "clock", "sim/targets", "camera/image_raw", "camera/camera_info"],
            "subscribe": ["motor_command"], "reply": ["sim/reset"]},
    "flight_controller": {
        "publish": ["motor_command", "cmd_vel/vehicle", "vehicle/enable", "flight/state", "flight/envelope",
                    "flight/setpoint", "diagnostics"],
        "subscribe": ["odom", "imu", "battery", "auth/state"] + [f"cmd_vel/{s}" for s in FLIGHT_SOURCES]
                     + [f"cmd_pose/{s}" for s in FLIGHT_SOURCES],
        "reply": ["takeoff", "land", "emergency_stop", "reset_emergency"], "execute": ["execute_plan"]},
    "camera": {"publish": ["camera/image_raw", "camera/camera_info"],   # sim mode relays the simulator's camera
               "subscribe": ["sim/camera/image_raw", "sim/camera/camera_info"]},   # (input_topic, graph.yaml)
    "face_auth": {"publish": ["auth/state", "auth/prompt", "auth/challenge", "tts/say"],
                  "subscribe": ["camera/image_raw", "auth/secret", "speech/transcript"],
                  "reply": ["enroll_operator"]},
    "image_compressor": {"publish": ["camera/image_raw/compressed"], "subscribe": ["camera/image_raw"]},
    "gesture": {"publish": ["gesture", "gesture/debug_image"], "subscribe": ["camera/image_raw"]},
    "teleop": {"publish": ["cmd_vel/teleop", "follow/enable", "takeoff", "land"], "subscribe": ["gesture",
                                                                                                   "flight/state"],
               "request": ["takeoff", "land"]},
    "tracker": {"publish": ["detections", "detections/debug_image"], "subscribe": ["camera/image_raw"]},
    "follow": {"publish": ["cmd_vel/follow", "tts/say"],
               "subscribe": ["detections", "follow/target", "follow/enable", "planner/plan", "flight/state"]},
    "planner": {"publish": ["tts/say", "planner/plan", "follow/target", "diagnostics"],
                "subscribe": ["speech/transcript", "flight/state", "flight/envelope", "detections",
                              "camera/image_raw", "auth/state"],
                "reply": ["submit_command"], "call": ["execute_plan"]},
    "operator_panel": {"subscribe": ["camera/image_raw", "detections", "gesture", "flight/state", "auth/state",
                                     "speech/transcript", "planner/plan", "tts/say"],
                       "request": ["land", "emergency_stop", "submit_command"]},
    "foxglove_bridge": {"subscribe": ["camera/image_raw", "detections", "gesture", "odom", "flight/setpoint",
                                      "flight/state", "auth/state", "speech/transcript", "planner/plan", "tts/say"]
                        + [f"cmd_vel/{s}" for s in FLIGHT_SOURCES]},
    "audio_input": {"publish": ["audio/chunks"]},
    "vad": {"publish": ["speech/segment", "speech/active", "speech/segment_early"],
            "subscribe": ["audio/chunks", "tts/speaking"]},
    "asr": {"publish": ["speech/transcript"], "subscribe": ["speech/segment", "speech/segment_early"]},
    "tts": {"publish": ["tts/speaking"], "subscribe": ["tts/say", "speech/active"]},
    "tello_driver": VEHICLE_DRIVER,
    "mavlink_driver": VEHICLE_DRIVER,
    "activation": {"subscribe": ["follow/enable", "follow/target", "cmd_vel/follow", "speech/transcript",
                                 "flight/state", "auth/state"]},   # + the managed nodes' services: ACTIVATION_CALLS
}
# Service names are not topics: teleop's "takeoff"/"land" above are calls, not publications.
INTERFACES["teleop"]["publish"] = ["cmd_vel/teleop", "follow/enable"]

COMMON = {"publish": ["rosout", "parameter_events"], "subscribe": ["parameter_events"],
          "reply": [f"~/{s}" for s in ("describe_parameters", "get_parameter_types", "get_parameters",
                                        "list_parameters", "set_parameters", "set_parameters_atomically",
                                        "get_type_description")]}
# Lifecycle nodes (nodes/lifecycle.py) serve the standard lifecycle services and publish their transitions; the
# activation node calls those of the nodes its policy manages, and their parameter services.
LIFECYCLE_NODES = {"tracker", "gesture", "face_auth", "asr", "tts", "tello_driver", "mavlink_driver"}
LIFECYCLE = {"publish": ["~/transition_event"],
             "reply": [f"~/{s}" for s in ("get_state", "change_state", "get_available_states",
                                          "get_available_transitions", "get_transition_graph")]}
ACTIVATION_CALLS = ("get_state", "change_state", "get_parameters", "set_parameters")
TAGS = {"publish": ("topics", "publish", "topic"), "subscribe": ("topics", "subscribe", "topic"),
        "reply": ("services", "reply", "service"), "request": ("services", "request", "service"),
        "execute": ("actions", "execute", "action"), "call": ("actions", "call", "action")}
MODE_ARGUMENTS = [("sim", {}), ("sim", {"voice": "true", "activation_policy": "true"}),
                  ("gazebo", {"voice": "true", "activation_policy": "true"}),
                  ("hardware", {"vehicle": "tello", "voice": "true", "activation_policy": "true"}),
                  ("hardware", {"vehicle": "mavlink", "voice": "true", "activation_policy": "true"})]


def _absolute(name: str) -> str:
    return name if name.startswith(("/", "~")) else "/" + name


def node_permissions(graph=None) -> dict[str, dict[str, set[str]]]:
    """node -> kind -> absolute names, remapped as the graph remaps them in every mode the node runs in."""
    graph = graph or load_graph()
    result: dict[str, dict[str, set[str]]] = {}
    for mode, arguments in MODE_ARGUMENTS:
        for spec in graph.resolve(mode, arguments):
            if spec.name not in INTERFACES:
                raise KeyError(f"node '{spec.name}' of config/graph.yaml has no row in sros2_policy.INTERFACES")
            remap = {_absolute(k): _absolute(v) for k, v in spec.remappings.items()}
            kinds = result.setdefault(spec.name, {})
            extra = list(LIFECYCLE.items()) if spec.name in LIFECYCLE_NODES else []
            if spec.name == "activation":
                extra.append(("request", [f"{node}/{call}" for node in load_policy(config_file(
                    "activation_policy.yaml")).nodes for call in ACTIVATION_CALLS]))
            for kind, names in list(INTERFACES[spec.name].items()) + list(COMMON.items()) + extra:
                for name in names:
                    kinds.setdefault(kind, set()).add(remap.get(_absolute(name), _absolute(name)))
    return result


def render(permissions: dict[str, dict[str, set[str]]]) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             "<!-- Generated by `python -m mmchat_ros.tools.sros2_policy -o config/sros2/policy.xml` from",
             "     config/graph.yaml and mmchat_ros/tools/sros2_policy.py;",
             "     do not edit (tests/unit/test_sros2_policy.py checks it is up to date). -->",
             '<policy version="0.2.0" xmlns:xi="http://www.w3.org/2001/XInclude">', "  <enclaves>"]
    for node in sorted(permissions):
        lines += [f'    <enclave path="/mmchat/{node}">', "      <profiles>",
                  f'        <profile ns="/" node="{node}">']
        for kind in TAGS:
            names = sorted(permissions[node].get(kind, ()))
            if not names:
                continue
            group, attribute, tag = TAGS[kind]
            lines.append(f'          <{group} {attribute}="ALLOW">')
            lines += [f"            <{tag}>{escape(n)}</{tag}>" for n in names]
            lines.append(f"          </{group}>")
        lines += ["        </profile>", "      </profiles>", "    </enclave>"]
    lines += ["  </enclaves>", "</policy>"]
    return "\n".join(lines) + "\n"


def default_path() -> Path:
    return Path(__file__).resolve().parents[3] / "config" / "sros2" / "policy.xml"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmchat_ros.tools.sros2_policy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    text = render(node_permissions())
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
