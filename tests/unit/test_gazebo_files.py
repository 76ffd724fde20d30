"""Gazebo Harmonic files (sim/gazebo): well-formed SDF, the x500 airframe, and a bridge that matches both sides.

Gazebo itself cannot run here; what can be checked is: the SDF parses and has the required elements, the model
matches config/airframes.yaml, every Gazebo topic in bridge.yaml is published or subscribed by a plugin or
sensor in the SDF, the ROS side uses the project's topic names, and -- where an SDFormat checker (`ign sdf` /
`gz sdf`, Debian packages ignition-tools + libsdformat-dev) is installed -- `sdf -k` accepts both files.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from mmchat_ros.core import topics
from mmchat_ros.core.airframe import load_airframe

REPO = Path(__file__).resolve().parents[2]
GZ = REPO / "sim" / "gazebo"
WORLD = GZ / "worlds" / "mmchat.sdf"
MODEL_DIR = GZ / "models" / "mmchat_quad"
MODEL = MODEL_DIR / "model.sdf"
BRIDGE = GZ / "bridge.yaml"

GAZEBO_SIDE = {   # graph topic (type from core/topics.py) -> (Gazebo type, direction)
    topics.ODOM: ("gz.msgs.Odometry", "GZ_TO_ROS"),
    topics.IMU: ("gz.msgs.IMU", "GZ_TO_ROS"),
    topics.CAMERA_IMAGE: ("gz.msgs.Image", "GZ_TO_ROS"),
    topics.CAMERA_INFO: ("gz.msgs.CameraInfo", "GZ_TO_ROS"),
    topics.BATTERY: ("gz.msgs.BatteryState", "GZ_TO_ROS"),
    topics.VEHICLE_VELOCITY: ("gz.msgs.Twist", "ROS_TO_GZ"),
    topics.VEHICLE_ENABLE: ("gz.msgs.Boolean", "ROS_TO_GZ"),
    topics.CLOCK: ("gz.msgs.Clock", "GZ_TO_ROS"),
}
ROS_TOPICS = {topic.name: (topic.type, *gazebo) for topic, gazebo in GAZEBO_SIDE.items()}


def _plugins(elem, system: str):
    return [p for p in elem.iter("plugin") if p.get("name") == f"gz::sim::systems::{system}"]


def _text(elem, tag, default=None):
    child = elem.find(tag)
    return default if child is None or child.text is None else child.text.strip()


def _pose(elem):
    text = _text(elem, "pose", "0 0 0 0 0 0")
    return np.array([float(v) for v in text.split()])


@pytest.fixture(scope="module")
def world():
    return ET.parse(WORLD).getroot()


@pytest.fixture(scope="module")
def model():
    return ET.parse(MODEL).getroot()


@pytest.fixture(scope="module")
def x500():
    return load_airframe("x500")


def test_world_has_required_elements(world):
    w = world.find("world")
    assert world.tag == "sdf" and w is not None and w.get("name")
    assert w.find("physics") is not None and w.find("light") is not None
    for system in ("Physics", "SceneBroadcaster", "Sensors", "Imu", "UserCommands"):
        assert _plugins(w, system), f"world lacks the {system} system"
    models = {m.get("name"): m for m in w.findall("model")}
    assert models["ground_plane"].find(".//collision/geometry/plane") is not None
    boxes = [m for m in models.values() if m.find(".//collision/geometry/box") is not None
             and _text(m, "static") == "true" and m.get("name") != "person"]
    assert len(boxes) >= 2
    assert "person" in models
    include = w.find("include")
    assert _text(include, "uri") == "model://mmchat_quad" and _text(include, "name") == "mmchat_quad"


def test_model_has_required_elements(model):
    m = model.find("model")
    assert m.get("name") == "mmchat_quad" and _text(m, "static") == "false"
    links = {link.get("name"): link for link in m.findall("link")}
    assert set(links) == {"base_link", "rotor_0", "rotor_1", "rotor_2", "rotor_3"}
    joints = {j.get("name"): j for j in m.findall("joint")}
    for i in range(4):
        j = joints[f"rotor_{i}_joint"]
        assert j.get("type") == "revolute" and _text(j, "child") == f"rotor_{i}" and _text(j, "parent") == "base_link"
        assert _text(j.find("axis"), "xyz") == "0 0 1"
    assert len(_plugins(m, "MulticopterMotorModel")) == 4
    assert len(_plugins(m, "MulticopterVelocityControl")) == 1
    assert len(_plugins(m, "OdometryPublisher")) == 1
    assert len(_plugins(m, "LinearBatteryPlugin")) == 1
    sensors = {s.get("type"): s for s in links["base_link"].findall("sensor")}
    assert {"imu", "camera"} <= set(sensors)
    for p in m.iter("plugin"):
        assert p.get("filename", "").startswith("gz-sim-"), p.get("filename")


def test_model_matches_the_x500_airframe(model, x500):
    m = model.find("model")
    # mass and the inertia of the whole model about its centre of mass
    total, com, parts = 0.0, np.zeros(3), []
    for link in m.findall("link"):
        inertial = link.find("inertial")
        mass = float(_text(inertial, "mass"))
        pos = _pose(link)[:3] + _pose(inertial)[:3]
        inertia = np.diag([float(_text(inertial.find("inertia"), k)) for k in ("ixx", "iyy", "izz")])
        total += mass
        com += mass * pos
        parts.append((mass, pos, inertia))
    com /= total
    assert total == pytest.approx(x500.mass_kg, abs=1e-6)
    np.testing.assert_allclose(com, 0.0, atol=1e-4)
    inertia = sum(i + mass * (np.dot(p - com, p - com) * np.eye(3) - np.outer(p - com, p - com))
                  for mass, p, i in parts)
    np.testing.assert_allclose(np.diag(inertia), x500.inertia_kgm2, rtol=1e-3)
    # rotor placement: rotor_i at the airframe's motor i
    links = {link.get("name"): link for link in m.findall("link")}
    for i, (x, y) in enumerate(x500.motor_positions()):
        np.testing.assert_allclose(_pose(links[f"rotor_{i}"])[:2], (x, y), atol=1e-5)
    # motors: thrust constant, torque constant, lag and spin direction from yaw_signs
    motors = sorted(_plugins(m, "MulticopterMotorModel"), key=lambda p: int(_text(p, "motorNumber")))
    control = _plugins(m, "MulticopterVelocityControl")[0]
    rotors = control.find("rotorConfiguration").findall("rotor")
    assert len(motors) == len(rotors) == x500.num_motors
    for i, (motor, rotor, sign) in enumerate(zip(motors, rotors, x500.yaw_signs)):
        assert _text(motor, "jointName") == _text(rotor, "jointName") == f"rotor_{i}_joint"
        k = float(_text(motor, "motorConstant"))
        assert k * float(_text(motor, "maxRotVelocity")) ** 2 == pytest.approx(x500.motor_max_thrust_n, rel=1e-6)
        assert float(_text(rotor, "forceConstant")) == pytest.approx(k)
        assert float(_text(motor, "momentConstant")) == pytest.approx(x500.torque_coeff_m)
        assert float(_text(rotor, "momentConstant")) == pytest.approx(x500.torque_coeff_m)
        assert float(_text(motor, "timeConstantUp")) == pytest.approx(x500.motor_time_constant_s)
        assert float(_text(motor, "timeConstantDown")) == pytest.approx(x500.motor_time_constant_s)
        # Gazebo: yaw reaction = -turningDirection * thrust * momentConstant, ccw = +1 = <direction> +1
        assert _text(motor, "turningDirection") == ("cw" if sign > 0 else "ccw")
        assert int(_text(rotor, "direction")) == -sign
    # camera like the airframe's (its fov_deg is horizontal)
    cam = next(s for s in m.iter("sensor") if s.get("type") == "camera").find("camera")
    assert int(_text(cam.find("image"), "width")) == x500.camera["width"]
    assert int(_text(cam.find("image"), "height")) == x500.camera["height"]
    assert float(_text(cam, "horizontal_fov")) == pytest.approx(math.radians(x500.camera["fov_deg"]), rel=1e-6)


def _gz_topics(world_root, model_root):
    """(published, subscribed) gz-transport topics of the world with the model included."""
    w = world_root.find("world")
    world_name = w.get("name")
    model_name = _text(w.find("include"), "name")
    published = {"/clock", f"/world/{world_name}/clock", "/stats", f"/world/{world_name}/stats"}   # gz-sim server
    subscribed = set()
    m = model_root.find("model")
    for sensor in m.iter("sensor"):
        topic = _text(sensor, "topic")
        assert topic, f"sensor {sensor.get('name')} has no explicit <topic>"
        published.add(topic)
        if sensor.get("type") == "camera":      # gz-sensors: camera_info beside the image topic
            published.add(topic.rsplit("/", 1)[0] + "/camera_info")
    for p in _plugins(m, "MulticopterVelocityControl"):
        ns = _text(p, "robotNamespace")
        subscribed.add(f"/{ns}/{_text(p, 'commandSubTopic', 'cmd_vel')}")
        subscribed.add(f"/{ns}/{_text(p, 'enableSubTopic', 'enable')}")
    for p in _plugins(m, "MulticopterMotorModel"):
        subscribed.add(f"/{_text(p, 'robotNamespace')}/{_text(p, 'commandSubTopic')}")
    for p in _plugins(m, "OdometryPublisher"):
        published.add(_text(p, "odom_topic", f"/model/{model_name}/odometry"))
    for p in _plugins(m, "LinearBatteryPlugin"):
        published.add(f"/model/{model_name}/battery/{_text(p, 'battery_name')}/state")
    return published, subscribed


def test_bridge_topics_exist_in_the_sdf_and_use_our_ros_names(world, model):
    entries = yaml.safe_load(BRIDGE.read_text())
    assert isinstance(entries, list) and entries
    published, subscribed = _gz_topics(world, model)
    ros_names = [e["ros_topic_name"] for e in entries]
    assert sorted(ros_names) == sorted(ROS_TOPICS), ros_names
    for e in entries:
        ros_type, gz_type, direction = ROS_TOPICS[e["ros_topic_name"]]
        assert (e["ros_type_name"], e["gz_type_name"], e["direction"]) == (ros_type, gz_type, direction), e
        if direction == "GZ_TO_ROS":
            assert e["gz_topic_name"] in published, f"nothing in the SDF publishes {e['gz_topic_name']}"
        else:
            assert e["gz_topic_name"] in subscribed, f"nothing in the SDF subscribes {e['gz_topic_name']}"


def _sdf_checker():
    for tool in ("gz", "ign"):
        exe = shutil.which(tool)
        if not exe:
            continue
        try:
            probe = subprocess.run([exe, "sdf", "--help"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and "--check" in probe.stdout + probe.stderr:
            return exe
    return None


@pytest.mark.parametrize("path", [MODEL, WORLD], ids=["model", "world"])
def test_sdformat_checker_accepts(path):
    exe = _sdf_checker()
    if exe is None:
        pytest.skip("no SDFormat checker on PATH (`gz sdf` or `ign sdf`): install Debian's ignition-tools and "
                    "libsdformat-dev to run it")
    models = str(MODEL_DIR.parent)
    env = dict(os.environ)
    for var in ("SDF_PATH", "GZ_SIM_RESOURCE_PATH", "IGN_GAZEBO_RESOURCE_PATH"):   # resolve model://mmchat_quad
        env[var] = os.pathsep.join(filter(None, [models, env.get(var)]))
    proc = subprocess.run([exe, "sdf", "-k", str(path)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "Valid" in proc.stdout, proc.stdout + proc.stderr
