"""The receiving end of /auth/state for the nodes that act on authorisation (flight controller, planner), and the
message of a signed claim (``auth_state_of``: face_auth's, and test stand-ins').

Thin: messages → core.auth_signing.AuthVerifier → a callback on every change of the standing decision. Refused
messages are counted per reason (``counts``, and on /diagnostics when asked) and logged once per burst; they change
nothing. A timer turns an authorisation whose expiry passed without a renewal into "not authorised"; a node whose
core judges the expiry itself (the flight controller's FlightCore) is also given every accepted claim's expiry.
"""
from __future__ import annotations

import array
from collections.abc import Callable

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from mmchat_ros.core import topics
from mmchat_ros.core.auth_signing import AuthClaim, AuthKeyError, AuthVerifier, BurstLog, PublicKeyFile
from mmchat_ros.msg import AuthState
from mmchat_ros.nodes.common import Param, topic_publisher, topic_subscription

AUTH_PARAMS = {
    "auth_key_dir": Param("", "directory of face_auth's authorisation key pair (auth_signing.pub is read); empty = "
                              "$XDG_DATA_HOME/mmchat_ros (~/.local/share/mmchat_ros)"),
    "auth_max_validity_s": Param(3.0, "an /auth/state whose expiry lies further than this after its stamp is "
                                      "refused (zero or no expiry always is), s"),
    "auth_max_clock_skew_s": Param(1.0, "an /auth/state stamped further than this in the future is refused, s"),
}


def stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def claim_of(msg: AuthState) -> AuthClaim:
    return AuthClaim(authorised=bool(msg.authorised), operator_id=msg.operator_id, operator_name=msg.operator_name,
                     confidence=float(msg.confidence), reason=msg.reason, stamp_ns=stamp_ns(msg.header.stamp),
                     expires_ns=stamp_ns(msg.expires), counter=int(msg.counter), key_id=msg.key_id)


def time_of(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def auth_state_of(claim: AuthClaim, signature: bytes) -> AuthState:
    """The message of a signed claim (claim_of's inverse): what face_auth publishes."""
    msg = AuthState(authorised=claim.authorised, operator_id=claim.operator_id, operator_name=claim.operator_name,
                    confidence=float(claim.confidence), reason=claim.reason, expires=time_of(claim.expires_ns),
                    counter=claim.counter, key_id=claim.key_id, signature=array.array("B", signature))
    msg.header.stamp = time_of(claim.stamp_ns)
    return msg


class AuthGuard:
    """Subscribes /auth/state on ``node`` and calls ``on_change(authorised, operator_name, reason)`` whenever the
    verified decision changes (and once at start with False), and ``on_claim(authorised, expires_s)`` with every
    accepted message (expiry in seconds of the node's clock)."""

    def __init__(self, node: Node, params, on_change: Callable[[bool, str, str], None], required: bool = True,
                 diagnostics_name: str = "", callback_group=None,
                 on_claim: Callable[[bool, float], None] | None = None):
        self.node = node
        self.on_change = on_change
        self.on_claim = on_claim
        self.required = required
        self.keys = PublicKeyFile(params.auth_key_dir or None)
        self.verifier = AuthVerifier(self.keys, params.auth_max_validity_s, params.auth_max_clock_skew_s)
        self.burst = BurstLog(quiet_s=5.0)
        self.decision = (False, "")
        self.diagnostics_name = diagnostics_name
        topic_subscription(node, topics.AUTH_STATE, AuthState, self.on_message, callback_group=callback_group)
        node.create_timer(0.1, self.check_expiry, callback_group=callback_group)
        if diagnostics_name:
            self.diag_pub = topic_publisher(node, topics.DIAGNOSTICS, DiagnosticArray)
            node.create_timer(1.0, self.publish_diagnostics, callback_group=callback_group)
        try:
            key_id, _ = self.keys.get(0.0)
            node.get_logger().info(f"verifying /auth/state with key {key_id} from {self.keys.path}")
        except AuthKeyError as exc:
            log = node.get_logger().error if required else node.get_logger().warning
            log(f"{exc}; until it exists nobody is authorised" + ("" if required else
                                                                  " (authorisation is not required here)"))

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def on_message(self, msg: AuthState) -> None:
        now = self.now_ns()
        verdict = self.verifier.check(claim_of(msg), bytes(msg.signature), now)
        if not verdict.accepted:
            log, suppressed = self.burst.should_log(verdict.kind, now * 1e-9)
            if log:
                more = f" ({suppressed} more refused since the last report)" if suppressed else ""
                self.node.get_logger().warning(
                    f"refused /auth/state ({'authorised' if msg.authorised else 'not authorised'}"
                    f"{', ' + msg.operator_name if msg.operator_name else ''}): {verdict.reason}{more}")
            return
        if self.on_claim is not None:
            self.on_claim(verdict.claim.authorised, verdict.claim.expires_ns * 1e-9)
        self._update(verdict.claim.authorised and self.verifier.authorised(now), verdict.claim.operator_name,
                     verdict.claim.reason)

    def check_expiry(self) -> None:
        if self.verifier.lapse_due(self.now_ns()):
            self.node.get_logger().warning("operator authorisation expired with no signed renewal from face_auth: "
                                           "motion refused")
            self._update(False, "", "expired")

    def _update(self, authorised: bool, operator: str, reason: str) -> None:
        decision = (authorised, operator if authorised else "")
        if decision == self.decision:
            return
        self.decision = decision
        self.on_change(authorised, operator, reason)

    def authorised(self) -> bool:
        return self.verifier.authorised(self.now_ns())

    def diagnostic_values(self) -> list[KeyValue]:
        return [KeyValue(key=f"auth_refused/{reason}", value=str(count))
                for reason, count in sorted(self.verifier.refusals().items())] + [
            KeyValue(key="auth_accepted", value=str(self.verifier.counts.get("valid", 0)))]

    def publish_diagnostics(self) -> None:
        if not self.node.context.ok():
            return
        diag = DiagnosticArray()
        diag.header.stamp = self.node.get_clock().now().to_msg()
        refused = sum(self.verifier.refusals().values())
        diag.status = [DiagnosticStatus(
            name=f"mmchat/{self.diagnostics_name}/auth", hardware_id=str(self.keys.path.parent),
            level=DiagnosticStatus.WARN if refused else DiagnosticStatus.OK,
            message=f"{'authorised: ' + self.decision[1] if self.decision[0] else 'not authorised'}; "
                    f"{refused} /auth/state message(s) refused", values=self.diagnostic_values())]
        self.diag_pub.publish(diag)
