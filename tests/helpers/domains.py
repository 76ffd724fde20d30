"""A ROS domain that no other DDS participant on this machine is using right now.

Many test runs (CI, several engineers) share one machine, and conftest's pid-spread domain ids collide often enough
that two simulators' odometry, or two auth states, meet on one topic. A test module that cannot tolerate that
overrides the ``domain_id`` fixture with ``unused_domain_id()`` (about a second per probe)."""
from __future__ import annotations

import random
import time

from mmchat_ros.tools.ros_client import RosClient

PROBE_NODE = "domain_probe"


def unused_domain_id(candidates=range(1, 101), probe_s: float = 1.0, tries: int = 8) -> int:
    pool = list(candidates)
    random.SystemRandom().shuffle(pool)   # not derived from the pid, unlike the ids other runs pick
    for domain in pool[:tries]:
        client = RosClient(domain, PROBE_NODE)
        try:
            time.sleep(probe_s)   # participant discovery on loopback answers well within this
            others = [name for name, _ in client.node.get_node_names_and_namespaces() if name != PROBE_NODE]
        finally:
            client.close()
        if not others:
            return domain
    raise RuntimeError(f"every ROS domain probed ({pool[:tries]}) is in use by other processes")
