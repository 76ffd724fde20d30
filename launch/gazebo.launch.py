"""ros2 launch mmchat_ros gazebo.launch.py — the graph's 'gazebo' mode flying the Gazebo Harmonic drone.

Needs Gazebo Harmonic with ros_gz (ros-jazzy-ros-gz) installed; not runnable on machines without them (see
docs/running.md, "Gazebo"). Starts gz sim with sim/gazebo/worlds/mmchat.sdf, the ros_gz_bridge mapping of
sim/gazebo/bridge.yaml (the same topic names as the embedded simulator), and the graph's gazebo-mode nodes
(the flight controller with vehicle_interface:=velocity: Gazebo's MulticopterVelocityControl runs the attitude
loops).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import IncludeLaunchDescription, SetEnvironmentVariable
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.actions import Node

from mmchat_ros.launch_support import generate_graph_launch


def generate_launch_description():
    share = get_package_share_directory("mmchat_ros")
    gazebo = os.path.join(share, "sim", "gazebo")
    description = generate_graph_launch("gazebo")
    models = os.path.join(gazebo, "models")
    description.add_action(SetEnvironmentVariable(
        "GZ_SIM_RESOURCE_PATH", os.pathsep.join(filter(None, [models, os.environ.get("GZ_SIM_RESOURCE_PATH", "")]))))
    description.add_action(IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(get_package_share_directory("ros_gz_sim"), "launch",
                                                   "gz_sim.launch.py")),
        launch_arguments={"gz_args": f"-r {os.path.join(gazebo, 'worlds', 'mmchat.sdf')}"}.items()))
    description.add_action(Node(package="ros_gz_bridge", executable="parameter_bridge", name="gz_bridge",
                                output="screen",
                                parameters=[{"config_file": os.path.join(gazebo, "bridge.yaml")}]))
    return description
