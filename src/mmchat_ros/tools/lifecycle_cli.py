"""`mmchat lifecycle NODE get|set TRANSITION|list`: a running lifecycle node's state through the standard lifecycle
services (what `ros2 lifecycle` does), for machines without ros2cli.

  mmchat lifecycle NODE get                 its state: unconfigured, inactive, active or finalized
  mmchat lifecycle NODE set TRANSITION      configure, activate, deactivate, cleanup or shutdown; a refused one
                                            exits 1 (the node's log says why)
  mmchat lifecycle NODE list                the transitions possible from its state now

cli.py wires it in with ``lifecycle_cli.add_subparser(sub)``.
"""
from __future__ import annotations

import argparse
import sys

from mmchat_ros.tools.node_services import SERVICE_WAIT_S, NodeServiceClient

# The state each transition ends in when it succeeds (the services name the intermediate one: "deactivating").
LEADS_TO = {"configure": "inactive", "activate": "active", "deactivate": "inactive", "cleanup": "unconfigured",
            "shutdown": "finalized"}


class LifecycleClient(NodeServiceClient):
    """Calls one node's lifecycle services (<node>/get_state, change_state, get_available_transitions)."""

    def state(self) -> str:
        from lifecycle_msgs.srv import GetState
        return self.call(GetState, "get_state", GetState.Request()).current_state.label

    def transitions(self) -> list[str]:
        """The transitions possible now."""
        from lifecycle_msgs.srv import GetAvailableTransitions
        found = self.call(GetAvailableTransitions, "get_available_transitions",
                          GetAvailableTransitions.Request()).available_transitions
        return [t.transition.label for t in found]

    def change(self, transition: str) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState
        request = ChangeState.Request(transition=Transition(label=transition))
        return self.call(ChangeState, "change_state", request).success


def run(args: argparse.Namespace) -> int:
    client = LifecycleClient(args.node, args.wait)
    try:
        if args.lifecycle_command == "get":
            print(client.state())
        elif args.lifecycle_command == "list":
            for transition in client.transitions():
                print(f"  {transition}  (to {LEADS_TO.get(transition, '?')})")
        else:   # set
            possible = client.transitions()
            if args.transition not in possible:
                print(f"{client.target} is {client.state()}: '{args.transition}' is not possible now (possible: "
                      f"{', '.join(possible) or 'none'})", file=sys.stderr)
                return 1
            if not client.change(args.transition):
                print(f"{client.target} refused {args.transition}: its log says why; it is {client.state()}",
                      file=sys.stderr)
                return 1
            print(f"{args.transition}: {client.target} is {client.state()}")
        return 0
    finally:
        client.close()


def add_subparser(sub) -> None:
    lifecycle = sub.add_parser("lifecycle", help="get or change a running lifecycle node's state")
    lifecycle.add_argument("node", help="node name, e.g. tracker")
    lifecycle_sub = lifecycle.add_subparsers(dest="lifecycle_command", required=True)
    lifecycle_sub.add_parser("get", help="its state")
    lifecycle_sub.add_parser("list", help="the transitions possible now")
    change = lifecycle_sub.add_parser("set", help="take a transition")
    change.add_argument("transition", help="configure, activate, deactivate, cleanup or shutdown")
    lifecycle.add_argument("--wait", type=float, default=SERVICE_WAIT_S, help="seconds to wait for the node")
    lifecycle.set_defaults(func=run)
