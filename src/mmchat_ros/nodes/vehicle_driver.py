"""What the real-vehicle driver nodes (tello_driver, mavlink_driver) share: the flight controller's side of the
velocity interface (set-point, enable, flight mode), the vehicle-state publishers (/odom, /imu, /battery) and a
per-kind throttled report of bad packets. Not a node itself."""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import BatteryState, Imu
from std_msgs.msg import Bool

from mmchat_ros.core.geometry import world_to_body
from mmchat_ros.core.vehicle_link import ControllerView, HeadingSetpoint
from mmchat_ros.msg import FlightState
from mmchat_ros.nodes.common import SENSOR_QOS, STATE_QOS
from mmchat_ros.nodes.ros_conversions import quat_msg_from_wxyz, vector_to_msg


class ControllerLink:
    """The flight controller as the driver sees it: the latest heading-frame set-point, motor enable and mode.

    /cmd_vel/vehicle arrives best-effort at the controller's output rate; /vehicle/enable and /flight/state are
    transient-local, so a driver started after the controller still learns the current values."""

    def __init__(self, node: Node, on_mode: Callable[[str], None] | None = None):
        self._node = node
        self._on_mode = on_mode
        self._lock = threading.Lock()
        self.setpoint: HeadingSetpoint | None = None
        self.enabled = False
        self.mode = ""
        self.bad_setpoints = 0
        node.create_subscription(Twist, "cmd_vel/vehicle", self._on_setpoint,
                                 QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        node.create_subscription(Bool, "vehicle/enable", self._on_enable, STATE_QOS)
        node.create_subscription(FlightState, "flight/state", self._on_state, STATE_QOS)

    def _on_setpoint(self, msg: Twist) -> None:
        values = (msg.linear.x, msg.linear.y, msg.linear.z, msg.angular.z)
        if not all(math.isfinite(v) for v in values):
            self.bad_setpoints += 1
            self._node.get_logger().error(f"ignored a non-finite vehicle set-point {values}", throttle_duration_sec=2.0)
            return
        with self._lock:
            self.setpoint = HeadingSetpoint(*(float(v) for v in values), received=time.monotonic())

    def _on_enable(self, msg: Bool) -> None:
        with self._lock:
            changed = bool(msg.data) != self.enabled
            self.enabled = bool(msg.data)
        if changed:
            self._node.get_logger().info(f"flight controller {'enables' if msg.data else 'disables'} the vehicle")

    def _on_state(self, msg: FlightState) -> None:
        with self._lock:
            changed = msg.mode != self.mode
            self.mode = msg.mode
        if changed and self._on_mode is not None:
            self._on_mode(msg.mode)

    def view(self) -> ControllerView:
        """The controller's enable, mode and latest set-point, read together."""
        with self._lock:
            return ControllerView(self.enabled, self.mode, self.setpoint)


class VehicleStatePublisher:
    """/odom (REP 105: pose in the odom frame, twist in the body frame), /imu and /battery with sensor-data QoS."""

    def __init__(self, node: Node, odom_frame: str, base_frame: str):
        self._node = node
        self.odom_frame, self.base_frame = odom_frame, base_frame
        self.odom_pub = node.create_publisher(Odometry, "odom", SENSOR_QOS)
        self.imu_pub = node.create_publisher(Imu, "imu", SENSOR_QOS)
        self.battery_pub = node.create_publisher(BatteryState, "battery", SENSOR_QOS)
        self.odometry_count = 0

    def publish_odometry(self, position, velocity_world, quaternion_wxyz, angular_velocity_body=None,
                         position_variance=(0.01, 0.01, 0.01), velocity_variance=(0.01, 0.01, 0.01)) -> None:
        odom = Odometry()
        odom.header.stamp = self._node.get_clock().now().to_msg()
        odom.header.frame_id, odom.child_frame_id = self.odom_frame, self.base_frame
        vector_to_msg(position, odom.pose.pose.position)
        quat_msg_from_wxyz(quaternion_wxyz, odom.pose.pose.orientation)
        vector_to_msg(world_to_body(quaternion_wxyz, velocity_world), odom.twist.twist.linear)
        if angular_velocity_body is not None:
            vector_to_msg(angular_velocity_body, odom.twist.twist.angular)
        for i, (p, v) in enumerate(zip(position_variance, velocity_variance)):
            odom.pose.covariance[7 * i] = float(p)
            odom.twist.covariance[7 * i] = float(v)
        if angular_velocity_body is None:
            odom.twist.covariance[21] = odom.twist.covariance[28] = odom.twist.covariance[35] = 1e6   # unknown
        self.odom_pub.publish(odom)
        self.odometry_count += 1

    def publish_imu(self, quaternion_wxyz, angular_velocity_body=None, specific_force_body=None) -> None:
        """Unknown parts carry covariance[0] = -1, as sensor_msgs/Imu defines."""
        imu = Imu()
        imu.header.stamp = self._node.get_clock().now().to_msg()
        imu.header.frame_id = self.base_frame
        quat_msg_from_wxyz(quaternion_wxyz, imu.orientation)
        if angular_velocity_body is None:
            imu.angular_velocity_covariance[0] = -1.0
        else:
            vector_to_msg(angular_velocity_body, imu.angular_velocity)
        if specific_force_body is None:
            imu.linear_acceleration_covariance[0] = -1.0
        else:
            vector_to_msg(specific_force_body, imu.linear_acceleration)
        self.imu_pub.publish(imu)

    def publish_battery(self, fraction: float, voltage_v: float = math.nan, current_a: float = math.nan) -> None:
        """fraction 0..1 (NaN unknown); current positive while discharging here, published negative (the
        sensor_msgs convention)."""
        msg = BatteryState()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        msg.percentage = float(fraction)
        msg.voltage = float(voltage_v)
        msg.current = -float(current_a) if math.isfinite(current_a) else math.nan
        msg.charge = msg.capacity = msg.design_capacity = math.nan
        msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
        msg.power_supply_technology = BatteryState.POWER_SUPPLY_TECHNOLOGY_LIPO
        msg.present = True
        self.battery_pub.publish(msg)


class ProblemReport:
    """Bad packets are counted per kind and logged at most once per ``period_s`` per kind, with the number
    ignored since the last line (rclpy's own throttling is per call site, so one noisy kind would hide others).
    ``labels`` name each kind in the log line ("ignored <label>: <detail>")."""

    def __init__(self, node: Node, labels: dict[str, str], period_s: float = 2.0):
        self._node = node
        self.labels = labels
        self.period_s = period_s
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self._last: dict[str, tuple[float, int]] = {}

    def __call__(self, kind: str, detail: str) -> None:
        now = time.monotonic()
        with self._lock:
            count = self.counts[kind] = self.counts.get(kind, 0) + 1
            last_time, last_count = self._last.get(kind, (-math.inf, 0))
            if now - last_time < self.period_s:
                return
            self._last[kind] = (now, count)
        more = count - last_count - 1
        suffix = f" (and {more} more since the last report)" if more > 0 else ""
        self._node.get_logger().warn(f"ignored {self.labels.get(kind, kind)}: {detail}{suffix}")
