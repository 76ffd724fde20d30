"""activation node: which lifecycle nodes run, and how fast, from what the graph is doing.

It applies the activation policy (config/activation_policy.yaml, docs/activation.md) to the graph's lifecycle nodes.

Evidence in: /follow/enable, /follow/target and /cmd_vel/follow (following), /speech/transcript (a question about
the scene), /flight/state (flying), /auth/state (a recognised operator, a face in view, nobody enrolled; read as a
hint only: a forged state can wake a node, never authorise anyone). Out: nothing but lifecycle transitions
(``<node>/change_state``) and parameter sets (``<node>/set_parameters``) on the managed nodes, each logged with the
signals behind it.

It reconciles rather than commands: whenever a decision changes, and every check_period_s regardless, it asks each
managed node for its state (and its managed parameters) and sends the one transition (or the parameter values)
that moves it towards what the policy wants. So a node that was respawned, started late or moved by hand is
brought back within a period, and a node that is not running is skipped. With the policy on, it owns the managed
nodes' states: `mmchat lifecycle` changes to them are undone within check_period_s.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from geometry_msgs.msg import TwistStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.parameter import Parameter, parameter_value_to_python
from std_msgs.msg import Bool

from mmchat_ros.core import topics
from mmchat_ros.core.activation import (Decision, PolicyError, Signals, asks_about_scene, auth_evidence, is_flying,
                                        load_policy, next_transition, parameter_changes)
from mmchat_ros.core.paths import config_file
from mmchat_ros.msg import AuthState, Detection, FlightState, Transcript
from mmchat_ros.nodes.base import MmchatNode
from mmchat_ros.nodes.common import Param, run_node

PARAMS = {
    "policy_file": Param("", "the activation policy (YAML, docs/activation.md); empty = the package's "
                             "config/activation_policy.yaml"),
    "check_period_s": Param(1.0, "every managed node's state and parameters are checked this often, besides every "
                                 "change of decision, s"),
    "service_timeout_s": Param(5.0, "a lifecycle or parameter call not answered within this long is given up and "
                                    "tried again, s"),
}


@dataclass
class ManagedNode:
    """One node under the policy: its service clients, what the policy last decided, what it last saw."""
    name: str
    clients: dict[str, Any]
    decision: Decision | None = None
    original: dict[str, Any] = field(default_factory=dict)   # managed parameters' values before the policy
    busy_since: float | None = None                           # a call chain is under way
    chain: int = 0                                            # which one: a late answer to an older one is dropped
    running: bool = True                                      # its services were there at the last check


class ActivationNode(MmchatNode):
    def __init__(self):
        super().__init__("activation", PARAMS)
        path = self.p.policy_file or str(config_file("activation_policy.yaml"))
        try:
            self.policy = load_policy(path)
        except PolicyError as exc:
            raise ValueError(f"activation policy unusable: {exc}") from exc
        self.signals = Signals(self.policy.hold_s)
        self.holding: set[str] = set()
        self.managed = [ManagedNode(name, {
            "get_state": self.create_client(GetState, f"{name}/get_state"),
            "change_state": self.create_client(ChangeState, f"{name}/change_state"),
            "get_parameters": self.create_client(GetParameters, f"{name}/get_parameters"),
            "set_parameters": self.create_client(SetParameters, f"{name}/set_parameters"),
        }) for name in self.policy.nodes]
        self.subscribe_to(topics.FOLLOW_ENABLE, Bool, self.on_follow_enable)
        self.subscribe_to(topics.FOLLOW_TARGET, Detection, lambda _: self.saw("following"))
        self.subscribe_to(topics.velocity_command("follow"), TwistStamped, lambda _: self.saw("following"))
        self.subscribe_to(topics.TRANSCRIPT, Transcript, self.on_transcript)
        self.subscribe_to(topics.FLIGHT_STATE, FlightState, self.on_flight_state)
        self.subscribe_to(topics.AUTH_STATE, AuthState, self.on_auth_state)
        self.create_timer(self.p.check_period_s, self.check_all)
        self.get_logger().info(f"activation policy ready: {path}, managing {', '.join(self.policy.nodes)}")

    # ------------------------------------------------------------------------------------------ evidence
    def saw(self, signal: str, until_withdrawn: bool = False) -> None:
        self.signals.saw(signal, time.monotonic(), until_withdrawn)
        self.update()

    def on_follow_enable(self, msg: Bool) -> None:
        if msg.data:
            # Until follow is switched off: the follow node needs every frame to find someone in the first place
            # (with the hold alone, the tracker fell back to 1 frame/s 3 s after follow was switched on with
            # nobody found yet, bench/graph.py's follow phase).
            self.saw("following", until_withdrawn=True)
        else:
            self.signals.withdraw("following")
            self.update()

    def on_transcript(self, msg: Transcript) -> None:
        if asks_about_scene(msg.text):
            self.saw("scene_asked")

    def on_flight_state(self, msg: FlightState) -> None:
        if is_flying(msg.mode):
            self.saw("flying")

    def on_auth_state(self, msg: AuthState) -> None:
        now = time.monotonic()
        if msg.operator_id:
            self.signals.saw("operator_seen", now)
        for signal, level in auth_evidence(msg.operator_id, msg.reason).items():
            if level:
                self.signals.saw(signal, now, until_withdrawn=True)
            else:
                self.signals.release(signal, now)
        self.update()

    def update(self) -> None:
        """Act at once when what holds changes (the timer catches hold times running out)."""
        holding = self.signals.holding(time.monotonic())
        if holding != self.holding:
            self.check_all()

    # ------------------------------------------------------------------------------------ reconciliation
    def check_all(self) -> None:
        now = time.monotonic()
        holding = self.signals.holding(now)
        if holding != self.holding:
            self.get_logger().info(f"signals: {', '.join(sorted(holding)) or 'none'}")
            self.holding = holding
        for node in self.managed:
            decision = self.policy.decide(node.name, holding)
            if decision != node.decision:
                node.decision = decision
                self.get_logger().info(f"{node.name}: {describe(decision)}")
            if node.busy_since is not None:
                if now - node.busy_since < self.p.service_timeout_s:
                    continue
                self.get_logger().info(f"{node.name}: no answer within {self.p.service_timeout_s:g} s (loading "
                                       "a model?); asking again", throttle_duration_sec=30.0)
            self.check(node)

    def check(self, node: ManagedNode) -> None:
        if not node.clients["get_state"].service_is_ready():
            if node.running:
                self.get_logger().info(f"{node.name} is not running (no lifecycle services): skipped until it is")
            node.running = False
            node.busy_since = None
            return
        node.running = True
        node.busy_since = time.monotonic()
        node.chain += 1
        self.call(node, "get_state", GetState.Request(), lambda response: self.on_state(node, response))

    def call(self, node: ManagedNode, service: str, request, then) -> None:
        future = node.clients[service].call_async(request)
        chain = node.chain

        def done(f):
            if chain != node.chain:   # given up on (timed out) and asked again since: the newer chain decides
                return
            try:
                response = f.result()
            except Exception as exc:   # the node went away mid-call: the next check starts over
                self.get_logger().warn(f"{node.name}/{service} failed: {exc}")
                response = None
            if response is None:
                node.busy_since = None
            else:
                then(response)
        future.add_done_callback(done)

    def on_state(self, node: ManagedNode, response) -> None:
        state = response.current_state.label
        transition = next_transition(state, node.decision.state)
        if transition is not None:
            self.get_logger().info(f"{node.name}: {state} -> {transition}")
            request = ChangeState.Request(transition=Transition(label=transition))
            self.call(node, "change_state", request, lambda r: self.on_changed(node, transition, r))
        elif state == node.decision.state and node.decision.parameters:
            names = list(node.decision.parameters)
            self.call(node, "get_parameters", GetParameters.Request(names=names),
                      lambda r: self.on_parameters(node, names, r))
        else:
            node.busy_since = None

    def on_changed(self, node: ManagedNode, transition: str, response) -> None:
        if not response.success:
            self.get_logger().error(f"{node.name} refused {transition} (its log says why)")
        node.busy_since = None   # the next check takes the next step

    def on_parameters(self, node: ManagedNode, names: list[str], response) -> None:
        current = {name: parameter_value_to_python(value) for name, value in zip(names, response.values)
                   if value.type != 0}   # type 0: the node has no such parameter
        for name, value in current.items():
            node.original.setdefault(name, value)   # the first reading is the node's own value
        changes = parameter_changes(node.decision, current, node.original)
        if not changes:
            node.busy_since = None
            return
        self.get_logger().info(f"{node.name}: setting {', '.join(f'{k} {v!r}' for k, v in changes.items())}")
        request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg()
                                                    for k, v in changes.items()])
        self.call(node, "set_parameters", request, lambda r: self.on_set(node, r))

    def on_set(self, node: ManagedNode, response) -> None:
        for result in response.results:
            if not result.successful:
                self.get_logger().error(f"{node.name} refused a parameter: {result.reason}")
        node.busy_since = None


def describe(decision: Decision) -> str:
    values = [f"{k} {'as launched' if v is None else v}" for k, v in decision.parameters.items()]
    return decision.state + (f" ({', '.join(values)})" if values else "")


def main(args=None):
    return run_node(ActivationNode, args)


if __name__ == "__main__":
    sys.exit(main())
