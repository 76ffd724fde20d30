"""pip/venv install of mmchat_ros: the Python package and its console scripts.

The ROS interfaces are built by CMakeLists.txt (setup.sh runs it into the venv; colcon runs it on a full ROS 2
install). Console scripts come from entry_points.txt, which CMakeLists.txt also reads for `ros2 run`.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def console_scripts():
    lines = (HERE / "entry_points.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    # Distribution name differs from the ROS package so pip never claims (or uninstalls) the rosidl-generated
    # half of the `mmchat_ros` import package, which CMake installs with an egg-info of that name.
    name="mmchat",
    version="0.1.0",
    description="Fly a drone with face, hands and voice over ROS 2",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={"mmchat_ros": ["web/*.html", "web/*.js", "web/*.css", "backends/adapters/*.npz"]},
    python_requires=">=3.10",
    entry_points={"console_scripts": console_scripts()},
)
