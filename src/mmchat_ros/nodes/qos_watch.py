"""Peers that can never talk to a node's publishers and subscriptions, found in the ROS graph every few seconds
instead of by rclpy's default event handlers.

rclpy gives every publisher and subscription two event handlers unless told otherwise (incompatible QoS,
incompatible type), and the executor walks every one of them on every wake, whether or not an event is pending.
The flight controller (12 subscriptions, 6 publishers) carried 36 of them beside its 26 other entities; at ~500
wakes a second (odometry and IMU at 250 Hz each) walking them cost about a quarter of the node's CPU:
53 → 40 % of one core without them (bench/control_loop.py --node, three runs each, alternating).

The warning they give is worth keeping — "a publisher offers incompatible QoS: no messages will be received" is
how a user finds why a topic stays silent — so ``QosWatch`` gives it from the graph: every ``period_s`` it lists
the peers on each of the node's topics and logs, once per peer endpoint, one whose QoS can never match
(rclpy.qos.qos_check_compatible, with the policy) or whose message type differs. Its cost is one timer and a few
graph queries every few seconds.
"""
from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING

from rclpy.duration import Duration
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.qos import QoSCompatibility, QoSProfile, qos_check_compatible

if TYPE_CHECKING:
    from rclpy.node import Node

PERIOD_S = 3.0
# The first check waits out a graph's start-up, when every process loads models at once: graph queries hold
# Python's GIL, and a flight controller must then not lose a tick's odometry to them.
FIRST_CHECK_S = 12.0


def no_event_handlers(kind: str):
    """The ``event_callbacks`` argument that makes a publisher ("publisher") or a subscription without rclpy's
    default event handlers (QosWatch reports what they would)."""
    if kind == "publisher":
        return PublisherEventCallbacks(use_default_callbacks=False)
    return SubscriptionEventCallbacks(use_default_callbacks=False)


def type_name(msg_type: type) -> str:
    """'nav_msgs/msg/Odometry' for nav_msgs.msg.Odometry, as the graph names types."""
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


# The graph reports an unset deadline, lifespan or liveliness lease as "infinite" (2^31 - 1 s), which
# qos_check_compatible takes for a set one beside the unset (zero) of a profile made in this process.
INFINITE_NS = (2**31 - 1) * 10**9


def comparable(qos: QoSProfile) -> QoSProfile:
    """``qos`` with its "infinite" durations as unset, as a profile made here has them."""
    qos = copy.copy(qos)
    for name in ("deadline", "lifespan", "liveliness_lease_duration"):
        if getattr(qos, name).nanoseconds >= INFINITE_NS:
            setattr(qos, name, Duration())
    return qos


class QosWatch:
    """Reports, once per peer endpoint, a peer on one of ``node``'s topics that can never exchange messages with
    it: QoS that cannot match, or another message type. ``add`` each publisher or subscription made without event
    handlers; ``check`` runs on a timer every ``period_s`` and returns what it logged."""

    def __init__(self, node: Node, period_s: float = PERIOD_S, first_check_s: float = FIRST_CHECK_S):
        self.node = node
        self.first_check_at = time.monotonic() + first_check_s
        self.endpoints: list[tuple[str, object]] = []       # ("publisher" | "subscription", the entity)
        self.reported: set[tuple[str, bytes]] = set()        # (our topic and kind, the peer's endpoint gid)
        self.period_s = period_s

    def add(self, kind: str, entity) -> None:
        self.endpoints.append((kind, entity))

    def start(self, create_timer) -> None:
        """The periodic check, on a timer made by ``create_timer`` (the plain Node's, so that a lifecycle phase
        never owns it)."""
        create_timer(self.period_s, self.check)

    def check(self) -> list[str]:
        if time.monotonic() < self.first_check_at:
            return []
        problems = []
        live = {id(e) for e in (*self.node.publishers, *self.node.subscriptions)}
        self.endpoints = [(kind, entity) for kind, entity in self.endpoints if id(entity) in live]   # destroyed go
        for kind, entity in self.endpoints:
            topic = entity.topic_name
            ours = type_name(entity.msg_type)
            if kind == "publisher":
                peers, role = self.node.get_subscriptions_info_by_topic(topic), "subscribes to"
            else:
                peers, role = self.node.get_publishers_info_by_topic(topic), "publishes"
            for peer in peers:
                key = (f"{kind} {topic}", bytes(peer.endpoint_gid))
                if key in self.reported:
                    continue
                problem = self._mismatch(kind, entity.qos_profile, peer, ours)
                if problem:
                    self.reported.add(key)
                    who = f"{peer.node_namespace.rstrip('/')}/{peer.node_name}"
                    problems.append(f"{who} {role} '{topic}' {problem}: no messages will pass between it and this "
                                    f"node's {kind}")
        for problem in problems:
            self.node.get_logger().warn(problem)
        return problems

    @staticmethod
    def _mismatch(kind: str, our_qos, peer, our_type: str) -> str:
        if peer.topic_type != our_type:
            return f"as {peer.topic_type} (this node's is {our_type})"
        publisher_qos, subscription_qos = (our_qos, peer.qos_profile) if kind == "publisher" \
            else (peer.qos_profile, our_qos)
        publisher_qos, subscription_qos = comparable(publisher_qos), comparable(subscription_qos)
        compatibility, reason = qos_check_compatible(publisher_qos, subscription_qos)
        if compatibility == QoSCompatibility.ERROR:
            # rclpy's reason reads "ERROR: Best effort publisher and reliable subscription;"
            return f"with QoS that cannot match ({reason.replace('ERROR:', '').strip(' ;.')})"
        return ""
