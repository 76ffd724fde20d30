"""Whether a stamped motion command is fresh enough to act on (pure logic, no rclpy).

A publisher that stalled and then delivers its backlog in a burst, or whose clock jumped, sends commands whose
stamps are far from now: acting on them as if they had just been issued would fly the vehicle on old intentions.
A command counts only when ``|now - stamp| <= max_age_s``; an unstamped one (stamp 0: some tools don't stamp)
counts from its arrival, as before. Both times in seconds on the receiver's clock (ROS time).
"""
from __future__ import annotations

import math

STALE = "stale"


def command_stamp_problem(stamp_s: float, now_s: float, max_age_s: float) -> str:
    """'' when the command may count; otherwise why not."""
    if stamp_s == 0.0:
        return ""
    if not math.isfinite(stamp_s):
        return "command stamp is not a finite number"
    age = now_s - stamp_s
    if age > max_age_s:
        return f"stale command: stamped {age:.2f} s ago (more than {max_age_s:g} s: a stalled or late publisher)"
    if age < -max_age_s:
        return f"command stamped {-age:.2f} s in the future (more than {max_age_s:g} s: a clock jump?)"
    return ""
