"""tello_driver node: a DJI/Ryze Tello flown through the SDK 2.0 text protocol (UDP), behind the simulator's topics.

The flight controller (vehicle_interface 'velocity') keeps its mux, state machine and envelope; the Tello's own
inner loops fly the attitude. In: /cmd_vel/vehicle (heading-frame velocity + yaw rate) → ``rc a b c d`` at
rc_rate_hz, scaled by what full stick does; /vehicle/enable true → ``takeoff`` (the Tello cannot climb from the
ground by rc alone) then rc, false → ``land``; /flight/state EMERGENCY → ``emergency`` (motors stop). Out: /odom,
/imu, /battery from the state stream, and the decoded H.264 video on camera/image_raw + camera/camera_info.

Link loss (no state for link_timeout_s): logged, odometry stops (the flight controller then descends open loop),
one ``rc 0 0 0 0`` is sent and then nothing, so that the Tello's own failsafe (it lands after 15 s without a
command) is not defeated. When the link returns with the controller no longer enabling the vehicle and the Tello
still in the air, ``land`` is sent. The control sequencing runs in its own thread: ``takeoff`` and ``land`` block
for seconds until the Tello answers.

A lifecycle node (nodes/lifecycle.py), never managed by the activation policy: configure binds the sockets (state
and video flow in, nothing is sent but an emergency stop), activate starts the control loop; deactivate, cleanup
and a shutdown transition are refused while the Tello is in the air. Ctrl-C stops the process as before.
"""
from __future__ import annotations

import math
import sys
import threading
import time

from sensor_msgs.msg import CameraInfo, Image

from mmchat_ros.backends.tello import TelloLink
from mmchat_ros.core.tello_protocol import (COMMAND_PORT, STATE_PORT, TELLO_HOST, VIDEO_PORT,
                                            TelloEstimate, TelloEstimator, TelloState)
from mmchat_ros.core.vehicle_frames import RC_ZERO, TelloRcLimits, tello_rc_from_heading_velocity
from mmchat_ros.core.vehicle_link import (FollowSetpoint, LandOutcome, Reconnect, ReportAdopted, ReportLinkLost,
                                          ReportLinkRestored, ReportLinkUp, SendHover, SendLand, TakeOff,
                                          TakeoffOutcome, TelloSupervisor)
from mmchat_ros.nodes.base import PacedLoop
from mmchat_ros.nodes.common import SENSOR_QOS, Param
from mmchat_ros.nodes.image_conversion import camera_info_from_fov, numpy_to_image
from mmchat_ros.nodes.lifecycle import LIFECYCLE_PARAMS, MmchatLifecycleNode, run_lifecycle_node
from mmchat_ros.nodes.vehicle_driver import ControllerLink, ProblemReport, VehicleStatePublisher

PARAMS = {
    "tello_host": Param(TELLO_HOST, "the Tello's IP address (its own Wi-Fi access point: 192.168.10.1)"),
    "command_port": Param(COMMAND_PORT, "the Tello's UDP command port"),
    "state_port": Param(STATE_PORT, "local UDP port the Tello sends its state strings to"),
    "video_port": Param(VIDEO_PORT, "local UDP port the Tello sends its H.264 video to"),
    "local_command_port": Param(0, "local UDP port commands are sent from (the Tello replies there); 0 = any free"),
    "bind_host": Param("0.0.0.0", "local address the state, video and command sockets bind to"),
    "rc_rate_hz": Param(20.0, "rate of rc commands while flying, Hz"),
    "rc_full_scale_speed_xy_m_s": Param(3.0, "horizontal speed at rc stick 100, m/s (undocumented by the SDK: "
                                             "calibrate: docs/hardware.md)"),
    "rc_full_scale_speed_z_m_s": Param(1.5, "vertical speed at rc stick 100, m/s (calibrate)"),
    "rc_full_scale_yaw_rate_deg_s": Param(100.0, "yaw rate at rc stick 100, deg/s (calibrate)"),
    "setpoint_timeout_s": Param(0.3, "a /cmd_vel/vehicle older than this no longer counts: rc 0 (hover), s"),
    "controller_silence_land_s": Param(3.0, "flying with no set-point from the flight controller this long → the "
                                            "driver lands the Tello itself, s"),
    "link_timeout_s": Param(1.0, "no state string for this long → link lost, s"),
    "connect_retry_s": Param(1.0, "interval between 'command' (enter SDK mode) attempts while not connected, s"),
    "response_timeout_s": Param(7.0, "wait for the reply to a command, s"),
    "takeoff_timeout_s": Param(20.0, "wait for the reply to 'takeoff' (sent once the climb is done), s"),
    "land_timeout_s": Param(20.0, "wait for the reply to 'land' (sent once on the ground), s"),
    "velocity_unit_m_s": Param(0.1, "unit of the state's vgx/vgy/vgz in m/s (undocumented; measured dm/s)"),
    "state_velocity_frame": Param("world", "frame of vgx/vgy: 'world' (the yaw-0 axes) or 'heading' (the body's "
                                           "heading); to verify on hardware"),
    "height_source": Param("tof", "height from 'tof' (downward ToF sensor minus its ground reading; 'h' when out of "
                                  "range) or 'h' (relative height, coarser)"),
    "tof_max_valid_cm": Param(1000, "ToF readings at or above this are out of range, cm"),
    "in_air_height_m": Param(0.15, "above this height the Tello counts as in the air (land is needed), m"),
    "video_enabled": Param(True, "send 'streamon' and publish the decoded video"),
    "video_rate_hz": Param(15.0, "publication rate limit of the decoded video, Hz (every frame is decoded)"),
    "camera_horizontal_fov_deg": Param(82.6, "the Tello camera's horizontal field of view, deg (for CameraInfo)"),
    "odom_frame": Param("odom", "frame of /odom poses: the Tello's yaw-0 heading, z up, origin at start"),
    "base_frame": Param("base_link", "the vehicle body frame"),
    "camera_frame": Param("camera_optical", "optical frame of the camera images"),
    **LIFECYCLE_PARAMS,
}


class TelloDriverNode(MmchatLifecycleNode):
    """Lifecycle: configure binds the sockets (state and video flow in, nothing is sent but an emergency stop),
    activate starts the control loop (SDK mode, take-off, rc, land), deactivate stops it: refused while the Tello
    is in the air."""

    def __init__(self):
        super().__init__("tello_driver", PARAMS)
        if not 5.0 <= self.p.rc_rate_hz <= 50.0:
            raise ValueError(f"rc_rate_hz={self.p.rc_rate_hz} is outside 5..50 Hz")
        self.rc_limits = TelloRcLimits(self.p.rc_full_scale_speed_xy_m_s, self.p.rc_full_scale_speed_z_m_s,
                                       math.radians(self.p.rc_full_scale_yaw_rate_deg_s))
        tello_rc_from_heading_velocity(0.0, 0.0, 0.0, 0.0, self.rc_limits)     # validates the limits now

    def configure(self) -> None:
        self.estimator = TelloEstimator(self.p.velocity_unit_m_s, self.p.state_velocity_frame, self.p.height_source,
                                        self.p.tof_max_valid_cm)
        self.controller = ControllerLink(self, on_mode=self.on_mode)
        self.outputs = VehicleStatePublisher(self, self.p.odom_frame, self.p.base_frame)
        self.report = ProblemReport(self, {"state": "a bad state packet", "reply": "a bad or unexpected reply",
                                           "video": "bad video data", "send": "a failed send"})
        self.image_pub = self.create_publisher(Image, "camera/image_raw", SENSOR_QOS)
        self.info_pub = self.create_publisher(CameraInfo, "camera/camera_info", SENSOR_QOS)
        self.camera_info: CameraInfo | None = None
        self.estimate: TelloEstimate | None = None
        self.estimate_lock = threading.Lock()
        self.last_battery_publish = -math.inf

        self.supervisor = TelloSupervisor(self.p.link_timeout_s, self.p.connect_retry_s, self.p.setpoint_timeout_s,
                                          self.p.controller_silence_land_s)
        self.frames_published = 0
        video = self.p.video_enabled
        self.link = TelloLink(self.p.tello_host, self.p.command_port, self.p.state_port, self.p.video_port,
                              on_state=self.on_state, on_bad_packet=self.report,
                              on_frame=self.on_frame if video else None, local_command_port=self.p.local_command_port,
                              bind_host=self.p.bind_host, video_max_rate_hz=self.p.video_rate_hz)
        self.get_logger().info(
            f"tello driver ready: Tello at {self.p.tello_host}:{self.p.command_port}, state on :{self.p.state_port}, "
            f"video {'on :%d' % self.p.video_port if video else 'off'}, rc at {self.p.rc_rate_hz:g} Hz "
            f"(full stick = {self.rc_limits.speed_xy_m_s} m/s, {self.rc_limits.speed_z_m_s} m/s, "
            f"{self.p.rc_full_scale_yaw_rate_deg_s} deg/s)")

    def activate(self) -> None:
        # a blocking take-off/land that overruns a period is followed by no burst of set-points (PacedLoop)
        self.start_worker(PacedLoop(self, "tello-control", self.p.rc_rate_hz,
                                    lambda: self.control_step(time.monotonic())))

    def stop_refusal(self) -> str | None:
        if self.supervisor.flying or self.in_air():
            return "the Tello is in the air: land it first (the driver keeps sending rc)"
        return None

    def release(self) -> None:
        self.link.close()

    # ------------------------------------------------------------------------------------- vehicle → ROS
    def on_state(self, state: TelloState, now: float) -> None:
        estimate = self.estimator.update(state, now)
        with self.estimate_lock:
            self.estimate = estimate
        if not self.supervisor.link.up:
            return      # the control thread announces the link first: no odometry before "link up" is logged
        self.outputs.publish_odometry(estimate.position, estimate.velocity_world, estimate.quaternion_wxyz,
                                      position_variance=(0.1, 0.1, 0.01))
        self.outputs.publish_imu(estimate.quaternion_wxyz, None, estimate.specific_force_body)
        if now - self.last_battery_publish >= 1.0:
            self.last_battery_publish = now
            self.outputs.publish_battery(estimate.battery_fraction)

    def on_frame(self, rgb, now: float) -> None:
        height, width = rgb.shape[:2]
        if self.camera_info is None or (self.camera_info.width, self.camera_info.height) != (width, height):
            self.camera_info = camera_info_from_fov(width, height, self.p.camera_horizontal_fov_deg)
            self.camera_info.header.frame_id = self.p.camera_frame
            self.get_logger().info(f"video: {width}x{height} frames decoded")
        image = numpy_to_image(rgb, "rgb8")
        image.header.stamp = self.get_clock().now().to_msg()
        image.header.frame_id = self.p.camera_frame
        self.camera_info.header.stamp = image.header.stamp
        self.image_pub.publish(image)
        self.info_pub.publish(self.camera_info)
        self.frames_published += 1

    # ------------------------------------------------------------------------------------- control thread
    def in_air(self) -> bool:
        with self.estimate_lock:
            return self.estimate is not None and self.estimate.height_m > self.p.in_air_height_m

    def control_step(self, now: float) -> None:
        for action in self.supervisor.step(now, self.link.last_state_time, self.controller.view(), self.in_air()):
            self.carry_out(action, now)

    def carry_out(self, action, now: float) -> None:
        """One of the supervisor's actions (core/vehicle_link.py); 'command', 'takeoff' and 'land' block until the
        Tello answers."""
        log = self.get_logger()
        if isinstance(action, SendHover):
            self.link.send_rc(RC_ZERO)
        elif isinstance(action, FollowSetpoint):
            sp = action.setpoint
            self.link.send_rc(tello_rc_from_heading_velocity(sp.forward, sp.left, sp.up, sp.yaw_rate, self.rc_limits))
        elif isinstance(action, Reconnect):
            self.connect()
        elif isinstance(action, TakeOff):
            self.take_off()
        elif isinstance(action, SendLand):
            self.land(action)
        elif isinstance(action, ReportAdopted):
            log.warn("the Tello is already in the air: taking it over without 'takeoff'")
        elif isinstance(action, ReportLinkLost):
            log.error(f"link lost: no state from the Tello for {action.silent_s:.1f} s; odometry stops"
                      + ("; rc 0 sent, then silence (the Tello lands by itself after 15 s without a command)"
                         if self.supervisor.flying else ""))
        elif isinstance(action, ReportLinkRestored):
            log.info(f"link restored after {action.after_s:.1f} s")
        elif isinstance(action, ReportLinkUp):
            log.info("link up: state strings arriving")

    def connect(self) -> None:
        if not self.supervisor.connected:
            self.get_logger().info(f"connecting to the Tello at {self.p.tello_host}:{self.p.command_port}",
                                   throttle_duration_sec=10.0)
        reply = self.link.request("command", timeout=min(self.p.response_timeout_s, self.p.connect_retry_s))
        ok = reply is not None and reply.ok
        if self.supervisor.connect_result(ok):
            self.get_logger().info("connected: the Tello is in SDK mode")
        if ok and self.p.video_enabled:
            reply = self.link.request("streamon", timeout=self.p.response_timeout_s)
            if reply is None or not reply.ok:
                self.get_logger().error(f"'streamon' refused: {reply.text if reply else 'no reply'}")

    def on_mode(self, mode: str) -> None:
        """Runs in the executor, not the control thread, which may be blocked in a takeoff for seconds."""
        if self.supervisor.on_flight_mode(mode, self.in_air()):     # [EmergencyStop()]
            self.link.send("emergency")
            self.get_logger().error("flight controller EMERGENCY: 'emergency' sent (motors stop)")

    def take_off(self) -> None:
        self.get_logger().info("take-off: 'takeoff' sent (the Tello climbs by itself, then rc takes over)")
        reply = self.link.request("takeoff", timeout=self.p.takeoff_timeout_s)
        outcome = self.supervisor.takeoff_result(reply is not None and reply.ok, time.monotonic())
        if outcome is TakeoffOutcome.FLYING:
            self.get_logger().info("take-off done: rc control")
        else:
            why = reply.text if reply else f"no reply in {self.p.takeoff_timeout_s} s"
            self.get_logger().error(f"take-off failed ({why}); {outcome.value}")

    def land(self, action: SendLand) -> None:
        if action.controller_silent:
            self.get_logger().error(f"{action.reason}: landing")
        reply = self.link.request("land", timeout=self.p.land_timeout_s)
        outcome = self.supervisor.land_result(reply is not None and reply.ok, self.in_air(), time.monotonic())
        if outcome is LandOutcome.LANDED:
            self.get_logger().info("landed: the Tello answered 'land' ok")
        elif outcome is LandOutcome.ON_GROUND:
            self.get_logger().info(f"on the ground ('land' answered {reply.text if reply else 'nothing'})")
        else:
            self.get_logger().error(f"'land' failed ({reply.text if reply else 'no reply'}); retrying")


def main(args=None):
    return run_lifecycle_node(TelloDriverNode, args)


if __name__ == "__main__":
    sys.exit(main())
