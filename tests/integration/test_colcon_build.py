"""The colcon path: `colcon build` at the repository root, with colcon from PyPI against the ROS 2 wheels,
builds the interfaces and installs the nodes as on a full ROS 2 Jazzy install."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_colcon_build_at_repo_root(tmp_path):
    colcon = Path(sys.executable).parent / "colcon"
    if not colcon.exists():
        pytest.fail("colcon is not installed in the venv: ./setup.sh installs it from requirements/base.txt")
    # A copy of the sources, so the build/install/log trees don't land in the checkout.
    work = tmp_path / "ws"
    ignore = shutil.ignore_patterns(".venv", "build", "install", "log", "__pycache__", ".git", ".pytest_cache",
                                    "artifacts")
    shutil.copytree(ROOT, work, ignore=ignore)
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, CMAKE_PREFIX_PATH=sys.prefix)
    result = subprocess.run([str(colcon), "build", "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}",
                             "-DBUILD_TESTING=OFF"], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    prefix = work / "install" / "mmchat_ros"
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "mmchat_ros").exists()
    assert (prefix / "share" / "mmchat_ros" / "package.xml").exists()
    assert (prefix / "share" / "mmchat_ros" / "launch" / "sim.launch.py").exists()
    assert (prefix / "share" / "mmchat_ros" / "config" / "graph.yaml").exists()
    assert os.access(prefix / "lib" / "mmchat_ros" / "mmchat", os.X_OK)   # where `ros2 run` looks
    site = next((prefix / "lib").glob("python3*/site-packages"))
    # The installed package holds both halves: generated interfaces and our sources.
    assert (site / "mmchat_ros" / "msg" / "_gesture.py").exists()
    assert (site / "mmchat_ros" / "core" / "launch_graph.py").exists()
    # And it works from the install tree alone, without the checkout on sys.path.
    probe = ("import mmchat_ros, mmchat_ros.core.launch_graph as g; from mmchat_ros.msg import FlightState; "
             "from mmchat_ros.action import ExecutePlan; print(mmchat_ros.__path__[0]); print(g.load_graph().path)")
    run_env = dict(env, PYTHONPATH=str(site), LD_LIBRARY_PATH=f"{prefix / 'lib'}:"
                   + os.environ.get("LD_LIBRARY_PATH", ""), AMENT_PREFIX_PATH=f"{prefix}:{sys.prefix}")
    run_env.pop("MMCHAT_SHARE_DIR", None)
    out = subprocess.run([sys.executable, "-c", probe],
                         cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    installed_pkg, graph_path = out.stdout.split()
    assert installed_pkg == str(site / "mmchat_ros")
    assert graph_path == str(prefix / "share" / "mmchat_ros" / "config" / "graph.yaml")
