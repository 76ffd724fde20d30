"""A node's scheduling priority against the other nodes: real-time priority for a thread that must keep time
(``raise_thread_priority``), niceness for the whole process, autogroup included (``set_process_niceness``).

Linux kernels with autogroup scheduling (CONFIG_SCHED_AUTOGROUP, on in Debian's and Ubuntu's kernels:
/proc/sys/kernel/sched_autogroup_enabled) share the CPU first between sessions, equally, and only then between the
threads of a session by their niceness. The launcher starts every node in a session of its own, so the niceness of a
thread orders it only against the threads of its own process: on a busy computer a node gets one share among the
running nodes whatever its threads' niceness. Measured here (2 cores saturated by other work, load ~5; MediaPipe
Hands at 15 frames/s, ~14 ms of CPU a frame): every thread at niceness 0, -5 and -10 alike, 31 ms a frame (p50);
the session at niceness 0, -5, -10: 22, 16.5, 14 ms. So ``set_process_niceness`` sets the niceness of every thread
(what counts without autogroups, and inside a session shared with other processes, e.g. under ``ros2 launch``)
and, when the process leads its own session, of its autogroup, which is then its own.

A higher niceness (lower priority) needs no privilege; a negative one needs CAP_SYS_NICE or a ``nice`` limit
(/etc/security/limits.conf, e.g. ``@robot - nice -10``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from mmchat_ros.nodes.common import Param

if TYPE_CHECKING:
    from rclpy.node import Node

AUTOGROUP = Path("/proc/self/autogroup")


def set_process_niceness(niceness: int) -> str:
    """Every thread of this process at ``niceness`` (threads started later inherit it from the thread that starts
    them) and its autogroup too where the autogroup is the process's own. Returns what was set, for the log; raises
    OSError when the system refuses (a negative niceness without the privilege)."""
    for task in os.listdir("/proc/self/task"):
        try:
            os.setpriority(os.PRIO_PROCESS, int(task), niceness)
        except ProcessLookupError:
            continue                    # a thread that ended meanwhile
    # The autogroup file reads empty where the process is in none (the init session's root task group).
    if os.getsid(0) != os.getpid() or not AUTOGROUP.exists() or not AUTOGROUP.read_text().strip():
        return f"threads at niceness {niceness}"
    AUTOGROUP.write_text(str(niceness))
    return f"threads and session (autogroup) at niceness {niceness}"


def raise_thread_priority(node: Node, priority: int, what: str) -> None:
    """SCHED_FIFO at ``priority`` (1..99; 0 leaves it) for the calling thread, or a warning that says what the
    refusal costs: ``what`` names the thread in the log ("control thread")."""
    priority = min(int(priority), 99)
    if priority <= 0:
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as exc:   # EPERM without CAP_SYS_NICE / rtprio
        node.get_logger().warn(f"{what} at normal priority (SCHED_FIFO {priority} refused: {exc}); expect more "
                               "jitter on a busy CPU. Grant CAP_SYS_NICE or an rtprio limit, or set "
                               "realtime_priority 0 to silence this")
    else:
        node.get_logger().info(f"{what} at SCHED_FIFO priority {priority}")


def niceness_param(default: int, why: str) -> Param:
    """The ``niceness`` parameter of a node whose place on a busy computer is ``why``."""
    return Param(default, f"niceness of the node's process, all its threads and its session (autogroup) included "
                          f"(-20..19, Linux): {why}. Below 0 needs CAP_SYS_NICE or a 'nice' limit (limits.conf); "
                          "refused, the node runs at normal priority and says so", value_range=(-20, 19))


def apply_niceness(node: Node, niceness: int) -> None:
    """The whole process at ``niceness`` (0 leaves it), said in the node's log; call it before the node starts the
    threads of its model, so that they inherit it."""
    if niceness == 0:
        return
    try:
        node.get_logger().info(set_process_niceness(niceness))
    except OSError as exc:
        node.get_logger().warn(f"normal priority: niceness {niceness} refused ({exc})")
