"""The environment every mmchat_ros process runs with: DDS confined to loopback, our Fast DDS profile, logs in a
chosen directory. Used by the launcher, the test harness, the benches and the nodes themselves."""
from __future__ import annotations

import os
from collections.abc import Mapping

from mmchat_ros.core.paths import config_file

LOOPBACK_ENV = {
    # Jazzy: discovery only on this host; without it Fast DDS multicasts out of every interface.
    "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
    # Honoured (deprecated) on Jazzy; kept so older tools on the same machine stay on loopback too.
    "ROS_LOCALHOST_ONLY": "1",
}


def fastdds_profile() -> str:
    return str(config_file("fastdds.xml"))


def ros_environment(base: Mapping[str, str] | None = None, *, domain_id: int | None = None,
                    log_dir: str | None = None, use_profile: bool = True) -> dict[str, str]:
    """A copy of ``base`` (default: os.environ) with the loopback DDS settings and our Fast DDS profile.

    Explicit settings in ``base`` win for the profile (so a user may point at their own), never for the loopback
    range when it is unset: unset means LOCALHOST here.
    """
    env = dict(os.environ if base is None else base)
    for key, value in LOOPBACK_ENV.items():
        env.setdefault(key, value)
    if use_profile:
        env.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", fastdds_profile())
    else:
        env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    if log_dir is not None:
        env["ROS_LOG_DIR"] = str(log_dir)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def apply_to_current_process() -> None:
    """Called by node entry points before rclpy.init(): the C layers read the variables at init."""
    for key, value in ros_environment(use_profile=True).items():
        if os.environ.get(key) != value and key in (*LOOPBACK_ENV, "FASTRTPS_DEFAULT_PROFILES_FILE",
                                                     "RMW_IMPLEMENTATION"):
            os.environ.setdefault(key, value)


# Initial peers are probed on the ports of participant ids 0..INITIAL_PEERS_RANGE-1: one machine runs up to ~12
# nodes plus tools, so Fast DDS's default of 4 would leave most of them undiscovered.
INITIAL_PEERS_RANGE = 32


def network_profile(local_addresses: list[str], peers: list[str], *, shared_memory: bool = True) -> str:
    """A Fast DDS profile for a graph split over a network (docs/deployment.md): UDP only on ``local_addresses``
    (this machine's link address, plus 127.0.0.1 where local nodes share the machine), discovery by unicast to
    ``peers`` (the other machine's address, and this one's) instead of multicast. Shared memory stays for local
    traffic when asked; it never crosses machines."""
    def locators(addresses: list[str]) -> str:
        return "".join(f"<locator><udpv4><address>{a}</address></udpv4></locator>" for a in addresses)
    whitelist = "".join(f"<address>{a}</address>" for a in local_addresses)
    shm_descriptor = ("<transport_descriptor><transport_id>mmchat_shm</transport_id><type>SHM</type>"
                      "<segment_size>33554432</segment_size><maxMessageSize>33554432</maxMessageSize>"
                      "</transport_descriptor>") if shared_memory else ""
    shm_use = "<transport_id>mmchat_shm</transport_id>" if shared_memory else ""
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <transport_descriptors>
    {shm_descriptor}
    <transport_descriptor>
      <transport_id>mmchat_udp_link</transport_id>
      <type>UDPv4</type>
      <maxInitialPeersRange>{INITIAL_PEERS_RANGE}</maxInitialPeersRange>
      <interfaceWhiteList>{whitelist}</interfaceWhiteList>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="mmchat_participant" is_default_profile="true">
    <rtps>
      <builtin>
        <metatrafficUnicastLocatorList>{locators(local_addresses)}</metatrafficUnicastLocatorList>
        <initialPeersList>{locators(peers)}</initialPeersList>
      </builtin>
      <useBuiltinTransports>false</useBuiltinTransports>
      <userTransports>{shm_use}<transport_id>mmchat_udp_link</transport_id></userTransports>
    </rtps>
  </participant>
</profiles>
"""


def network_environment(base: Mapping[str, str] | None, profile_path: str, **kwargs) -> dict[str, str]:
    """The environment of a process on one machine of a split graph: DDS discovery beyond loopback, confined by
    the profile from network_profile() (written to ``profile_path``) to the link's addresses.

    The range is SYSTEM_DEFAULT, which leaves discovery to the profile: with SUBNET, rmw_fastrtps adds 239.255.0.1 to
    a profile's initial peers, and every participant multicasts its announcements on the link (measured on the TUN
    link of tools/impaired_link.py: 8 in 8 s from each)."""
    env = dict(os.environ if base is None else base)
    env.update({"ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT", "ROS_LOCALHOST_ONLY": "0",
                "FASTRTPS_DEFAULT_PROFILES_FILE": str(profile_path)})
    env.pop("ROS_STATIC_PEERS", None)    # the profile names the peers
    return ros_environment(env, **kwargs)
