"""`mmchat launch` and the introspection commands, with real node processes over DDS."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from mmchat_ros.msg import Gesture
from tests.helpers.processes import python_cmd

ROOT = Path(__file__).resolve().parents[2]
MMCHAT = python_cmd("mmchat_ros.tools.cli")


def run_mmchat(args, env, timeout=60):
    return subprocess.run([*MMCHAT, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def test_graph(tmp_path, ros_env):
    """A graph of two echo nodes (one respawning), with the executable on PATH like a console script."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "mmchat_test_echo"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                      "from tests.helpers.echo_node import main\nsys.exit(main())\n")
    script.chmod(0o755)
    config = tmp_path / "config"
    config.mkdir()
    (config / "echo.yaml").write_text("echo_a:\n  ros__parameters:\n    prefix: 'a:'\n")
    (config / "graph.yaml").write_text(textwrap.dedent("""\
        modes:
          sim: "test mode"
        launch_arguments:
          prefix_b:
            default: "b:"
        nodes:
          echo_a:
            executable: mmchat_test_echo
            modes: [sim]
            parameters: [echo.yaml]
            remappings: {gesture_in: /a/in, gesture_out: /a/out}
          echo_b:
            executable: mmchat_test_echo
            modes: [sim]
            inline_parameters: {prefix: $(arg prefix_b)}
            remappings: {gesture_in: /b/in, gesture_out: /b/out, submit_command: /b/submit}
            respawn: true
            respawn_delay_s: 0.2
        """))
    env = dict(ros_env, PATH=f"{bin_dir}:{ros_env['PATH']}")
    return config / "graph.yaml", env


def retry_until(run, ok, attempts: int = 5):
    result = run()
    for _ in range(attempts - 1):
        if ok(result):
            break
        result = run()
    return result


def child_pids(proc: psutil.Process) -> list[int]:
    try:
        return [c.pid for c in proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def still_running(pids: list[int], timeout: float = 5.0) -> list[int]:
    """Those of ``pids`` still running once they had up to ``timeout`` s to exit (a zombie has exited)."""
    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.slow
def test_launch_introspect_respawn_and_clean_stop(test_graph, spawn, ros):
    graph, env = test_graph
    launcher = spawn([*MMCHAT, "launch", "sim", "prefix_b:=B-", "--graph", str(graph)], name="launcher", env=env)
    launcher.wait_for_line(r"\[echo_a\] .*echo node ready", timeout=30)
    launcher.wait_for_line(r"\[echo_b\] .*echo node ready", timeout=30)

    # Discovery on a loaded 2-core machine can take seconds: ask again until the graph shows up.
    expected = [f"{name} [mmchat_ros/msg/Gesture]" for name in ("/a/in", "/a/out", "/b/in", "/b/out")]
    topics = retry_until(lambda: run_mmchat(["topic", "list", "-t", "--wait", "2"], env),
                         lambda out: all(line in out.stdout for line in expected))
    assert topics.returncode == 0, topics.stderr
    for line in expected:
        assert line in topics.stdout, topics.stdout
    nodes = retry_until(lambda: run_mmchat(["node", "list", "--wait", "2"], env),
                        lambda out: "/echo_a" in out.stdout and "/echo_b" in out.stdout)
    assert "/echo_a" in nodes.stdout and "/echo_b" in nodes.stdout, nodes.stdout

    # Parameters from the file and from the launch argument reached the nodes.
    out_a = ros.collect(Gesture, "/a/out")
    out_b = ros.collect(Gesture, "/b/out")
    pub_a = ros.node.create_publisher(Gesture, "/a/in", 10)
    pub_b = ros.node.create_publisher(Gesture, "/b/in", 10)
    ros.wait_for_subscribers(pub_a)
    ros.wait_for_subscribers(pub_b)
    ros.wait_for(lambda: ros.node.count_publishers("/a/out") and ros.node.count_publishers("/b/out"), 10, "echo pubs")
    pub_a.publish(Gesture(name="x"))
    pub_b.publish(Gesture(name="y"))
    ros.wait_for_message(out_a, lambda m: m.name == "a:x", what="echo_a reply")
    ros.wait_for_message(out_b, lambda m: m.name == "B-y", what="echo_b reply")

    # A node that dies is reported and, when configured, respawned.
    pid_b = int(launcher.wait_for_line(r"started 'echo_b' \(pid (\d+)\)").group(1))
    os.kill(pid_b, signal.SIGKILL)
    launcher.wait_for_line(r"node 'echo_b' died: killed by signal SIGKILL", timeout=10)
    launcher.wait_for_line(r"respawning 'echo_b'", timeout=5)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(re.findall(r"\[echo_b\] .*echo node ready", launcher.output)) < 2:
        time.sleep(0.1)
    assert len(re.findall(r"\[echo_b\] .*echo node ready", launcher.output)) == 2, launcher.output

    # Ctrl-C stops everything: the launcher exits 0 and none of its children survive.
    parent = psutil.Process(launcher.proc.pid)
    children = child_pids(parent)
    assert len(children) >= 2
    launcher.proc.send_signal(signal.SIGINT)
    assert launcher.proc.wait(timeout=20) == 0
    launcher.wait_for_line(r"all nodes stopped", timeout=5)
    survivors = still_running(children)
    assert survivors == [], f"processes left behind: {survivors}"


def test_topic_hz_and_echo(spawn, ros, ros_env):
    pub = ros.node.create_publisher(Gesture, "/hz_probe", 10)
    counter = {"n": 0}

    def tick():
        counter["n"] += 1
        pub.publish(Gesture(name=f"g{counter['n']}", confidence=0.5))
    ros.node.create_timer(0.05, tick)   # 20 Hz
    hz = run_mmchat(["topic", "hz", "/hz_probe", "--duration", "4"], ros_env)
    rates = [float(m) for m in re.findall(r"average rate: ([\d.]+) Hz", hz.stdout)]
    assert rates, hz.stdout + hz.stderr
    assert 15.0 < rates[-1] < 25.0
    echo = run_mmchat(["topic", "echo", "/hz_probe", "--count", "2", "--timeout", "20"], ros_env)
    assert echo.returncode == 0, echo.stderr
    assert re.search(r"name: g\d+", echo.stdout) and "confidence: 0.5" in echo.stdout


def test_topic_pub_delivers_a_message_with_nested_fields(ros, ros_env):
    got = []
    ros.node.create_subscription(Gesture, "/pub_probe", got.append, 10)
    result = run_mmchat(["topic", "pub", "/pub_probe", "mmchat_ros/msg/Gesture",
                         "{name: thumbs_up, confidence: 0.75, header: {frame_id: cam}}"], ros_env)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got and got[0].name == "thumbs_up" and got[0].confidence == 0.75 and got[0].header.frame_id == "cam"
    bad = run_mmchat(["topic", "pub", "/pub_probe", "mmchat_ros/msg/Gesture", "{colour: red}"], ros_env)
    assert bad.returncode == 2 and "has no field 'colour'" in bad.stderr


def test_unknown_mode_exits_nonzero_naming_it(test_graph):
    graph, env = test_graph
    result = run_mmchat(["launch", "orbit", "--graph", str(graph)], env)
    assert result.returncode == 2
    assert "unknown mode 'orbit'" in result.stderr and "known modes: sim" in result.stderr


def test_malformed_parameter_file_names_file_and_line(test_graph):
    graph, env = test_graph
    bad = graph.parent / "echo.yaml"
    bad.write_text("echo_a:\n  ros__parameters:\n    prefix: 'a:'\n    broken: [1, 2\n")
    result = run_mmchat(["launch", "sim", "--graph", str(graph)], env)
    assert result.returncode == 2
    assert re.search(r"echo\.yaml:\d+:\d+: YAML error", result.stderr), result.stderr


def test_parameter_file_without_ros_parameters_names_key_and_line(test_graph):
    graph, env = test_graph
    (graph.parent / "echo.yaml").write_text("echo_a:\n  ros__parameters:\n    prefix: 'a:'\n  prefx: 3\n")
    result = run_mmchat(["launch", "sim", "--graph", str(graph)], env)
    assert result.returncode == 2
    assert "echo.yaml:4: unexpected key 'prefx' under 'echo_a'" in result.stderr, result.stderr


def test_unknown_graph_key_and_bad_argument(test_graph):
    graph, env = test_graph
    text = graph.read_text().replace("    respawn: true", "    respwan: true")
    graph.write_text(text)
    result = run_mmchat(["launch", "sim", "--graph", str(graph)], env)
    assert result.returncode == 2
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "respwan" in l)
    assert f"graph.yaml:{line}: node 'echo_b': unknown key 'respwan'" in result.stderr, result.stderr
    graph.write_text(text.replace("respwan", "respawn"))
    result = run_mmchat(["launch", "sim", "colour:=red", "--graph", str(graph)], env)
    assert result.returncode == 2 and "unknown launch argument 'colour'" in result.stderr


@pytest.mark.slow
def test_mmchat_launch_sim_starts_the_real_graph_and_ctrl_c_leaves_nothing(spawn, ros_env):
    from mmchat_ros.core.launch_graph import load_graph
    nodes = [spec.name for spec in load_graph().resolve("sim")]
    launcher = spawn([*MMCHAT, "launch", "sim"], name="launcher")
    for name in nodes:
        launcher.wait_for_line(rf"started '{name}'", timeout=30)
    launcher.wait_for_line(r"\[flight_controller\] .*flight controller ready", timeout=60)
    launcher.wait_for_line(r"\[sim\] .*simulator ready", timeout=60)
    expected = ["/odom [nav_msgs/msg/Odometry]", "/flight/state [mmchat_ros/msg/FlightState]",
                "/camera/image_raw [sensor_msgs/msg/Image]", "/motor_command [mmchat_ros/msg/MotorCommand]"]
    topics = retry_until(lambda: run_mmchat(["topic", "list", "-t"], ros_env),
                         lambda out: all(line in out.stdout for line in expected))
    for line in expected:
        assert line in topics.stdout, topics.stdout
    parent = psutil.Process(launcher.proc.pid)
    children = child_pids(parent)
    assert len(children) >= len(nodes)
    launcher.proc.send_signal(signal.SIGINT)
    assert launcher.proc.wait(timeout=30) == 0
    survivors = still_running(children)
    assert survivors == [], f"processes left behind: {survivors}"
    assert "died" not in launcher.output, launcher.output
    # Every node exits cleanly on Ctrl-C: status 0, no traceback in any node's output.
    for name in nodes:
        assert f"node '{name}' stopped: exit code 0" in launcher.output, launcher.output
    assert "Traceback" not in launcher.output, launcher.output
