"""ros2 launch mmchat_ros hardware.launch.py [name:=value ...] — the 'hardware' mode of config/graph.yaml."""
from mmchat_ros.launch_support import generate_graph_launch


def generate_launch_description():
    return generate_graph_launch("hardware")
