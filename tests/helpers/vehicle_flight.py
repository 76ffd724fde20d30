"""Test-side flying of a real-vehicle driver stack (driver + flight controller with vehicle_interface 'velocity'):
the flight controller's services and operator commands, and its /flight/state and the driver's /odom as seen
over DDS."""
from __future__ import annotations

import socket
import time

import numpy as np
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from std_srvs.srv import Trigger

from mmchat_ros.core.paths import config_file
from mmchat_ros.msg import FlightState
from mmchat_ros.nodes.common import STATE_QOS
from tests.helpers.flight import ros_args, yaw_of
from tests.helpers.processes import python_cmd


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flight_controller_cmd(vehicle: str, **params) -> list[str]:
    """The flight controller as the hardware mode runs it for ``vehicle`` (its config/hardware_<vehicle>.yaml
    overrides), without authorisation."""
    args = ros_args({"require_authorisation": False, **params})
    return python_cmd("mmchat_ros.nodes.flight_controller", args[0], "--params-file",
                      str(config_file(f"hardware_{vehicle}.yaml")), *args[1:])


class VehicleStack:
    """What the test sees of a flight controller flying a real-vehicle driver."""

    def __init__(self, ros):
        self.ros = ros
        self.odom = ros.collect(Odometry, "/odom", "sensor")
        self.states = ros.collect(FlightState, "/flight/state", STATE_QOS)
        self.operator = ros.node.create_publisher(TwistStamped, "/cmd_vel/operator", 10)

    def position(self):
        p = self.odom[-1][1].pose.pose.position
        return p.x, p.y, p.z

    def yaw(self) -> float:
        return yaw_of(self.odom[-1][1])

    def mode(self) -> str:
        return self.states[-1][1].mode if self.states else "?"

    def wait_mode(self, mode: str, timeout: float):
        try:
            return self.ros.wait_for(lambda: self.mode() == mode, timeout, f"flight mode {mode}")
        except TimeoutError as exc:     # the modes passed through, read when the wait failed, not when it began
            raise TimeoutError(f"{exc}; modes seen: {' -> '.join(self.modes_seen())}") from None

    def modes_seen(self) -> list[str]:
        """The flight modes /flight/state went through, in order, repeats left out."""
        modes: list[str] = []
        for _, state in list(self.states):
            if not modes or modes[-1] != state.mode:
                modes.append(state.mode)
        return modes

    def take_off(self, timeout: float = 60.0) -> None:
        self.ros.wait_for(lambda: self.odom and self.states, 30, "odometry from the driver and flight state")
        deadline = time.monotonic() + 20.0
        while True:     # the controller needs fresh odometry, at rest, before it arms
            response = self.ros.call(Trigger, "/takeoff", Trigger.Request(), timeout=15)
            if response.success or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert response.success, f"take-off refused: {response.message}"
        self.wait_mode("HOVER", timeout)

    def land(self, timeout: float = 60.0) -> None:
        assert self.ros.call(Trigger, "/land", Trigger.Request(), timeout=15).success
        self.wait_mode("LANDED", timeout)

    def fly(self, frame: str, duration: float, vx=0.0, vy=0.0, vz=0.0, yaw_rate=0.0) -> None:
        """Operator velocity commands at 20 Hz for ``duration`` seconds, then silence (the controller hovers)."""
        self.ros.wait_for_subscribers(self.operator)
        command = TwistStamped()
        command.header.frame_id = frame
        command.twist.linear.x, command.twist.linear.y, command.twist.linear.z = vx, vy, vz
        command.twist.angular.z = yaw_rate
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            command.header.stamp = self.ros.node.get_clock().now().to_msg()
            self.operator.publish(command)
            time.sleep(0.05)

    def odometry_count_since(self, t0: float) -> int:
        return sum(1 for t, _ in list(self.odom) if t >= t0)


def wait_at_rest(ros, emulator, timeout: float = 15.0) -> None:
    """Until the emulated vehicle has stopped after an operator command: it brakes for a second or so once the
    commands end, longer on a loaded machine, so a test measures the whole manoeuvre and not a fixed part of it."""
    def at_rest() -> bool:
        truth = emulator.truth()
        return float(np.linalg.norm(truth.velocity[:2])) < 0.1 and abs(truth.angular_velocity_body[2]) < 0.05
    ros.wait_for(at_rest, timeout, "the vehicle to come to rest after the operator command")
