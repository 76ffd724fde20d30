"""Turns config/graph.yaml into a ROS 2 launch description (used by launch/*.launch.py on a full ROS 2 install).

`mmchat launch MODE` here and `ros2 launch mmchat_ros MODE.launch.py` there start the same nodes with the same
parameter files, inline parameters, remappings and respawn settings: both read NodeSpec from the graph.
"""
from __future__ import annotations

from mmchat_ros.core.launch_graph import load_graph
from mmchat_ros.core.rosenv import LOOPBACK_ENV, fastdds_profile


def generate_graph_launch(mode: str):
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
    from launch.substitutions import EnvironmentVariable, LaunchConfiguration
    from launch_ros.actions import Node

    graph = load_graph()

    def node(spec):
        inline = spec.parameters_applied()
        return Node(package="mmchat_ros", executable=spec.executable, name=spec.name,
                    namespace=spec.namespace or None, output="screen",
                    parameters=[str(p) for p in spec.parameter_files_applied()] + ([inline] if inline else []),
                    remappings=list(spec.remappings.items()), arguments=spec.arguments,
                    respawn=spec.respawn, respawn_delay=spec.respawn_delay_s)

    def nodes_for_arguments(context):
        arguments = {name: LaunchConfiguration(name).perform(context) for name in graph.launch_arguments}
        return [node(spec) for spec in graph.resolve(mode, arguments)]

    actions = [DeclareLaunchArgument(name, default_value=str(spec.get("default", "")),
                                     description=str(spec.get("description", "")))
               for name, spec in graph.launch_arguments.items()]
    # Keep discovery on loopback unless the user already chose a range (a robot talking to a ground station).
    for key, value in LOOPBACK_ENV.items():
        actions.append(SetEnvironmentVariable(key, EnvironmentVariable(key, default_value=value)))
    actions.append(SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE",
                                          EnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE",
                                                              default_value=fastdds_profile())))
    actions.append(OpaqueFunction(function=nodes_for_arguments))
    return LaunchDescription(actions)
