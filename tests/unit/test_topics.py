"""The graph's topic table (core/topics.py): every row has a QoS class and a message type, and the table agrees
with the SROS2 policy (what nodes may publish and subscribe), the flight controller's command sources and the
message types that exist."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mmchat_ros.core import topics
from mmchat_ros.tools import sros2_policy

ROOT = Path(__file__).resolve().parents[2]
RCLPY_TOPICS = {"/rosout", "/parameter_events", "~/transition_event"}   # the last: every lifecycle node's own
# A camera source's own topics (/sim/camera/..., /tello/camera/...): remapped away from the graph's camera topics,
# which the camera node publishes after it.
SOURCE_CAMERA = re.compile(r"/\w+/camera/(image_raw|camera_info)")


@pytest.mark.parametrize("topic", topics.TOPICS, ids=lambda t: t.name)
def test_every_topic_has_a_qos_class_and_a_message_type(topic):
    assert topic.qos in topics.QOS_CLASSES
    assert re.fullmatch(r"/[a-z_]+(/[a-z_]+)*", topic.name)
    package, kind, name = topic.type.split("/")
    assert kind == "msg" and re.fullmatch(r"[A-Z][A-Za-z]+", name)
    if package == topics.PACKAGE:
        assert (ROOT / "msg" / f"{name}.msg").is_file(), topic.type
    else:
        assert getattr(__import__(f"{package}.msg", fromlist=[name]), name)


def test_names_are_unique():
    assert len(topics.BY_NAME) == len(topics.TOPICS)


def test_the_policy_allows_exactly_the_table_topics():
    permitted = set()
    for kinds in sros2_policy.node_permissions().values():
        permitted |= kinds.get("publish", set()) | kinds.get("subscribe", set())
    graph_topics = {name for name in permitted - RCLPY_TOPICS if not SOURCE_CAMERA.fullmatch(name)}
    assert graph_topics == set(topics.BY_NAME)


def test_command_sources_are_the_flight_controllers():
    config = yaml.safe_load((ROOT / "config" / "flight_controller.yaml").read_text())
    assert tuple(config["flight_controller"]["ros__parameters"]["sources"]) == topics.FLIGHT_SOURCES
