"""The Fast DDS profile and environment of a graph split over a network (core.rosenv, docs/deployment.md)."""
import xml.etree.ElementTree as ET

from mmchat_ros.core.rosenv import INITIAL_PEERS_RANGE, network_environment, network_profile

NS = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}


def texts(root, path):
    return [element.text for element in root.findall(path, NS)]


def test_profile_binds_udp_to_the_named_addresses_and_discovers_by_unicast():
    root = ET.fromstring(network_profile(["169.254.1.1", "127.0.0.1"], ["169.254.1.2", "127.0.0.1"]))
    assert texts(root, ".//f:interfaceWhiteList/f:address") == ["169.254.1.1", "127.0.0.1"]
    assert texts(root, ".//f:initialPeersList/f:locator/f:udpv4/f:address") == ["169.254.1.2", "127.0.0.1"]
    assert texts(root, ".//f:metatrafficUnicastLocatorList/f:locator/f:udpv4/f:address") == ["169.254.1.1",
                                                                                              "127.0.0.1"]
    assert texts(root, ".//f:maxInitialPeersRange") == [str(INITIAL_PEERS_RANGE)]
    assert texts(root, ".//f:useBuiltinTransports") == ["false"]
    assert texts(root, ".//f:userTransports/f:transport_id") == ["mmchat_shm", "mmchat_udp_link"]


def test_profile_without_shared_memory_has_only_the_link():
    root = ET.fromstring(network_profile(["169.254.1.2"], ["169.254.1.1"], shared_memory=False))
    assert texts(root, ".//f:transport_descriptor/f:type") == ["UDPv4"]
    assert texts(root, ".//f:userTransports/f:transport_id") == ["mmchat_udp_link"]


def test_network_environment_leaves_loopback_for_the_profile():
    base = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_LOCALHOST_ONLY": "1", "ROS_STATIC_PEERS": "10.0.0.9",
            "PATH": "/bin"}
    env = network_environment(base, "/tmp/robot.xml", domain_id=7)
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SYSTEM_DEFAULT" and env["ROS_LOCALHOST_ONLY"] == "0"
    assert env["FASTRTPS_DEFAULT_PROFILES_FILE"] == "/tmp/robot.xml" and "ROS_STATIC_PEERS" not in env
    assert env["ROS_DOMAIN_ID"] == "7" and env["PATH"] == "/bin"
