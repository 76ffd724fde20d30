"""teleop node: recognised gestures → velocity commands and take-off / land / follow requests.

Subscribes /gesture and /flight/state; publishes geometry_msgs/TwistStamped on /cmd_vel/teleop (heading frame
base_link: x forward, y left, z up; the flight controller's mux source 'teleop'), calls /takeoff, /land and
/emergency_stop (std_srvs/Trigger) and publishes std_msgs/Bool on /follow/enable for the
follow-me behaviour. The gesture → command mapping, velocity limits and the dead-man rule are data in
config/gestures.yaml (core.teleop). Commands go out as gestures arrive (one per camera frame, stamped with that
frame's capture stamp) and, when the gesture stream stops, from a timer that applies the dead-man rule.
"""
from __future__ import annotations

import sys

from geometry_msgs.msg import TwistStamped
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from mmchat_ros.core import topics
from mmchat_ros.core.paths import config_file
from mmchat_ros.core.teleop import GestureInput, TeleopConfig, TeleopController, TeleopOutput
from mmchat_ros.msg import FlightState, Gesture
from mmchat_ros.nodes.base import MmchatNode
from mmchat_ros.nodes.common import Param, run_node
from mmchat_ros.nodes.scheduling import apply_niceness, niceness_param

FLYING_MODES = ("HOVER", "VELOCITY", "POSITION")
SERVICE_ACTIONS = {"takeoff": "takeoff", "land": "land", "emergency_stop": "emergency_stop"}
PARAMS = {
    "mapping_file": Param("", "gesture → command mapping (YAML); empty = the package's config/gestures.yaml"),
    "command_frame": Param("base_link", "frame_id of the velocity commands (base_link = heading frame)"),
    "tick_rate_hz": Param(20.0, "rate of the dead-man check while no gesture messages arrive, Hz"),
    "service_wait_s": Param(2.0, "an action whose service (/takeoff, /land, ...) is not available yet waits this long "
                                 "for it, then is dropped with an error, s"),
    "require_flying": Param(True, "send velocity only while /flight/state says the vehicle is flying (the flight "
                                  "controller refuses it otherwise); false: always (benches, other vehicles)"),
    "niceness": niceness_param(-5, "the gesture → velocity hop is on the interactive path and costs ~3 % of a core"),
}


class TeleopNode(MmchatNode):
    def __init__(self):
        super().__init__("teleop", PARAMS)
        apply_niceness(self, self.p.niceness)
        mapping = self.p.mapping_file or str(config_file("gestures.yaml"))
        self.config = TeleopConfig.load(mapping)     # a broken mapping stops the node with the reason
        self.controller = TeleopController(self.config)
        self.flight_mode = ""
        self.follow_enabled = False
        self.cmd_pub = self.publish_to(topics.velocity_command("teleop"), TwistStamped)
        self.follow_pub = self.publish_to(topics.FOLLOW_ENABLE, Bool)
        self.action_clients = {action: self.create_client(Trigger, service)
                               for action, service in SERVICE_ACTIONS.items()}
        self.subscribe_to(topics.GESTURE, Gesture, self.on_gesture)
        self.subscribe_to(topics.FLIGHT_STATE, FlightState, self.on_flight_state)
        self.create_timer(1.0 / self.p.tick_rate_hz, self.on_tick)
        self.last_reason = ""
        self.pending_calls: list[tuple[str, float]] = []       # (action, when requested)
        self.services_seen: set[str] = set()
        bound = ", ".join(f"{name}→{b.action or 'velocity'}" for name, b in self.config.bindings.items())
        self.get_logger().info(f"teleop ready: mapping {mapping} ({bound}); dead-man {self.config.deadman_ms:g} ms")

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def flying(self) -> bool:
        return not self.p.require_flying or self.flight_mode in FLYING_MODES

    def on_flight_state(self, msg: FlightState) -> None:
        self.flight_mode = msg.mode

    def on_gesture(self, msg: Gesture) -> None:
        if msg.num_hands > 0 and not (0.0 <= msg.confidence <= 1.0):
            self.get_logger().error(f"ignored gesture '{msg.name}' with confidence {msg.confidence} outside 0..1",
                                    throttle_duration_sec=5.0)
            return
        gesture = GestureInput(msg.name, float(msg.confidence), bool(msg.stable), bool(msg.is_dynamic),
                               int(msg.num_hands))
        self.apply(self.controller.on_gesture(self.now(), gesture, self.flying()), msg.header.stamp)

    def on_tick(self) -> None:
        for action, client in self.action_clients.items():
            if action not in self.services_seen and client.service_is_ready():
                self.services_seen.add(action)
                self.get_logger().info(f"service {self.service_name(action)} available")
        self.call_pending()
        output = self.controller.on_tick(self.now(), self.flying())
        if output is not None:
            self.apply(output, self.get_clock().now().to_msg())

    def apply(self, output: TeleopOutput, stamp) -> None:
        if output.reason != self.last_reason and not output.reason.startswith("hand lost"):
            self.get_logger().info(output.reason)
        self.last_reason = output.reason
        for action in output.actions:
            self.perform(action)
        if output.velocity is not None:
            v = output.velocity
            msg = TwistStamped()
            msg.header.stamp = stamp            # the capture stamp of the frame this command comes from
            msg.header.frame_id = self.p.command_frame
            msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = v.x, v.y, v.z
            msg.twist.angular.z = v.yaw_rate
            self.cmd_pub.publish(msg)

    def perform(self, action: str) -> None:
        if action.startswith("follow_"):
            enable = {"follow_on": True, "follow_off": False}.get(action, not self.follow_enabled)
            self.follow_enabled = enable
            self.follow_pub.publish(Bool(data=enable))
            self.get_logger().info(f"follow mode {'on' if enable else 'off'} requested on /follow/enable")
            return
        self.get_logger().info(f"{action} requested")
        self.pending_calls.append((action, self.now()))
        self.call_pending()

    def call_pending(self) -> None:
        """Call the services of pending actions that are available; drop those that waited too long."""
        waiting = []
        for action, requested in self.pending_calls:
            client = self.action_clients[action]
            if client.service_is_ready():
                future = client.call_async(Trigger.Request())
                future.add_done_callback(lambda f, a=action: self.on_action_done(a, f))
            elif self.now() - requested > self.p.service_wait_s:
                self.get_logger().error(f"{action} dropped: service {self.service_name(action)} not available "
                                        f"after {self.p.service_wait_s:g} s")
            else:
                waiting.append((action, requested))
        self.pending_calls = waiting

    def service_name(self, action: str) -> str:
        return self.resolve_service_name(self.action_clients[action].srv_name)

    def on_action_done(self, action: str, future) -> None:
        try:
            response = future.result()
        except Exception as exc:
            self.get_logger().error(f"{action} call failed: {exc}")
            return
        if response.success:
            self.get_logger().info(f"{action}: {response.message}")
        else:
            self.get_logger().warn(f"{action} refused: {response.message}")


def main(args=None):
    return run_node(TeleopNode, args)


if __name__ == "__main__":
    sys.exit(main())
