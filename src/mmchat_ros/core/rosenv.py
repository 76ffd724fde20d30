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
