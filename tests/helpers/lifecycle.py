"""A running lifecycle node's state through its standard services, from a test's ROS participant."""
from __future__ import annotations


def get_state(ros, node: str) -> str:
    from lifecycle_msgs.srv import GetState
    return ros.call(GetState, f"/{node}/get_state", GetState.Request()).current_state.label


def change_state(ros, node: str, transition: str) -> bool:
    """Whether the node took the transition (configure, activate, deactivate, cleanup, shutdown)."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    request = ChangeState.Request(transition=Transition(label=transition))
    return ros.call(ChangeState, f"/{node}/change_state", request).success
