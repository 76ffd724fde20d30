"""Two Linux network namespaces joined on link-local addresses: a robot and a ground station on one machine, with a
real network stack between them that a test can cut (`ip link set down`). The link is a veth pair (the kernel's own),
or, given an Impairment, two TUN devices joined by tools/impaired_link.py, which delays, drops and caps what crosses.
Nothing is routed off the machine; everything is removed again by close(), which deleting the namespaces guarantees."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from mmchat_ros.core.link_impairment import Impairment
from mmchat_ros.core.rosenv import network_environment, network_profile
from mmchat_ros.tools.impaired_link import Side, TunLink


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be created here (not root, no `ip`, a restricted container)."""


class LinkedNamespaces:
    def __init__(self, tag: str, subnet: int, impairment: Impairment | None = None):
        self.robot_ns, self.ground_ns = f"mmchat_robot_{tag}", f"mmchat_ground_{tag}"
        self.robot_if, self.ground_if = f"mmr{tag}", f"mmg{tag}"
        self.robot_address, self.ground_address = f"169.254.{subnet}.1", f"169.254.{subnet}.2"
        self.impairment = impairment
        self.tun: TunLink | None = None
        self.created: list[str] = []

    def open(self) -> "LinkedNamespaces":
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root")
        try:
            for ns in (self.robot_ns, self.ground_ns):
                _ip("netns", "add", ns)
                self.created.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            if self.impairment is None:
                self._open_veth()
            else:
                self.tun = TunLink(Side("robot", self.robot_ns, self.robot_if, self.robot_address),
                                   Side("ground", self.ground_ns, self.ground_if, self.ground_address),
                                   self.impairment).open()
        except (OSError, subprocess.CalledProcessError) as exc:
            self.close()
            detail = getattr(exc, "stderr", "") or str(exc)
            raise NetnsUnavailable(f"cannot create network namespaces: {detail.strip()}") from exc
        return self

    def _open_veth(self) -> None:
        _ip("-n", self.robot_ns, "link", "add", self.robot_if, "type", "veth", "peer", "name", self.ground_if,
            "netns", self.ground_ns)
        for ns, interface, address in ((self.robot_ns, self.robot_if, self.robot_address),
                                       (self.ground_ns, self.ground_if, self.ground_address)):
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", interface)
            _ip("-n", ns, "link", "set", interface, "up")

    def close(self) -> None:
        """Deleting a namespace deletes the veth end in it, and with it the pair; closing the TUN link its devices."""
        if self.tun is not None:
            self.tun.close()
            self.tun = None
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        self.created.clear()

    def set_link(self, up: bool) -> None:
        _ip("-n", self.robot_ns, "link", "set", self.robot_if, "up" if up else "down")

    def link_counters(self) -> dict:
        """The robot end's received/sent bytes and received multicast packets (0 when discovery is unicast)."""
        shown = subprocess.run(["ip", "-n", self.robot_ns, "-s", "-j", "link", "show", "dev", self.robot_if],
                               check=True, capture_output=True, text=True, timeout=10)
        stats = json.loads(shown.stdout)[0]["stats64"]
        return {"rx_bytes": stats["rx"]["bytes"], "tx_bytes": stats["tx"]["bytes"],
                "rx_multicast": stats["rx"]["multicast"]}

    def environments(self, directory: Path, base: dict) -> tuple[dict, dict]:
        """DDS environments for the robot side (its own nodes over shared memory and loopback too) and the ground
        side (the veth address only), each discovering the other by unicast."""
        robot_profile, ground_profile = directory / "fastdds_robot.xml", directory / "fastdds_ground.xml"
        robot_profile.write_text(network_profile([self.robot_address, "127.0.0.1"],
                                                 [self.ground_address, "127.0.0.1"]))
        ground_profile.write_text(network_profile([self.ground_address], [self.robot_address], shared_memory=False))
        return network_environment(base, str(robot_profile)), network_environment(base, str(ground_profile))

    def command(self, side: str, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.robot_ns if side == "robot" else self.ground_ns, *cmd]


@contextlib.contextmanager
def namespaces_for_test(tag: str, subnet: int, impairment: Impairment | None = None) -> Iterator[LinkedNamespaces]:
    """Opened namespaces for one test, removed after it, pass or fail; the test is skipped with the reason where
    they cannot be created."""
    import pytest
    namespaces = LinkedNamespaces(tag, subnet, impairment)
    try:
        namespaces.open()
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield namespaces
    finally:
        namespaces.close()
