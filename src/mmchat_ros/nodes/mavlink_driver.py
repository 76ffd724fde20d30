"""mavlink_driver node: a PX4 or ArduPilot multicopter over MAVLink (pymavlink), behind the simulator's topics.

The flight controller (vehicle_interface 'velocity') keeps its mux, state machine and envelope; the autopilot's
own position/velocity/attitude loops fly the vehicle. In: /cmd_vel/vehicle (heading-frame velocity + yaw rate) →
SET_POSITION_TARGET_LOCAL_NED velocity + yaw rate in MAV_FRAME_LOCAL_NED, streamed at setpoint_rate_hz (≥ 20 Hz)
whenever the link is up; /vehicle/enable true → PX4: OFFBOARD (once set-points have streamed offboard_stream_s)
then arm, and our controller climbs by velocity; ArduPilot: GUIDED, arm, MAV_CMD_NAV_TAKEOFF to
ardupilot_takeoff_height_m (ArduCopter does not leave the ground on velocity set-points), then velocity.
/vehicle/enable false → land (MAV_CMD_NAV_LAND) while in the air, disarm on the ground; /flight/state EMERGENCY
→ forced disarm (motors stop). Out: /odom (ENU, twist in the body frame), /imu, /battery.

If the vehicle leaves the control mode while armed (the pilot's RC switch, its own failsafe), the driver does not
take it back: it logs the hand-over and only lands/disarms when the controller disables the vehicle.

Link loss (nothing from the vehicle for link_timeout_s): logged, odometry stops (the flight controller then
descends open loop), and the driver goes silent (no heartbeat, no set-point) so the vehicle's own failsafes
engage: PX4's offboard-loss action (COM_OBL_RC_ACT / COM_OF_LOSS_T), ArduPilot's GCS failsafe (FS_GCS_ENABLE).
When the link returns with the controller no longer enabling the vehicle and the vehicle still in the air, it
is told to land.

A lifecycle node (nodes/lifecycle.py), never managed by the activation policy: configure opens the connection
(telemetry flows in, nothing is sent but an emergency disarm), activate starts the control loop; deactivate,
cleanup and a shutdown transition are refused while the vehicle is armed or in the air (a driver that stops
streaming leaves a flying vehicle to its failsafe). Ctrl-C stops the process as before.
"""
from __future__ import annotations

import math
import sys
import time

from mmchat_ros.backends.mavlink_vehicle import (AUTOPILOTS, CONTROL_MODE, LAND_MODE, MAV_RESULTS,
                                                 TELEMETRY_MESSAGES, MavlinkVehicle, Telemetry, in_air, mavlink)
from mmchat_ros.core.vehicle_frames import (frd_to_flu, heading_velocity_to_ned, ned_to_enu,
                                            quat_ned_frd_to_world_flu, yaw_rate_world_to_ned)
from mmchat_ros.core.vehicle_link import (Arm, Disarm, HeadingSetpoint, MavlinkSupervisor,
                                          MavlinkVehicleView, ReportHandOver, ReportLinkLost, ReportLinkRestored,
                                          ReportLinkUp, RequestTelemetry, SendHeartbeat, SendLand, SetMode,
                                          StreamSetpoint, TakeOff)
from mmchat_ros.nodes.base import PacedLoop
from mmchat_ros.nodes.common import Param
from mmchat_ros.nodes.lifecycle import LIFECYCLE_PARAMS, MmchatLifecycleNode, run_lifecycle_node
from mmchat_ros.nodes.vehicle_driver import ControllerLink, ProblemReport, VehicleStatePublisher

PARAMS = {
    "connection_url": Param("udpin:0.0.0.0:14540", "pymavlink connection: udpin:ADDR:PORT (listen), "
                                                   "udpout:HOST:PORT, tcp:HOST:PORT or a serial device path"),
    "baud": Param(57600, "serial baud rate (serial connections only)"),
    "source_system": Param(255, "our MAVLink system id (255: ArduPilot's MAV_GCS_SYSID default, so its GCS "
                                "failsafe watches our heartbeat)"),
    "source_component": Param(191, "our MAVLink component id (191 = MAV_COMP_ID_ONBOARD_COMPUTER)"),
    "target_system": Param(0, "the vehicle's system id; 0 = the first autopilot heard"),
    "target_component": Param(1, "the autopilot's component id"),
    "autopilot": Param("auto", "'auto' (from the HEARTBEAT), 'px4' or 'ardupilot'"),
    "setpoint_rate_hz": Param(30.0, "rate of velocity set-points while the link is up, Hz (>= 20)"),
    "heartbeat_rate_hz": Param(1.0, "rate of our HEARTBEAT, Hz"),
    "telemetry_rate_hz": Param(30.0, "rate requested (MAV_CMD_SET_MESSAGE_INTERVAL) for position, attitude, IMU "
                                     "and state messages, Hz; 0 = leave the vehicle's stream rates alone"),
    "setpoint_timeout_s": Param(0.3, "a /cmd_vel/vehicle older than this no longer counts: zero velocity, s"),
    "controller_silence_land_s": Param(3.0, "in the air with no set-point from the flight controller this long → "
                                            "the driver commands a landing itself, s"),
    "link_timeout_s": Param(1.0, "nothing from the vehicle for this long → link lost, s"),
    "offboard_stream_s": Param(1.5, "PX4: set-points streamed this long before OFFBOARD is requested (PX4 wants "
                                    "more than 1 s of them), s"),
    "command_retry_s": Param(1.0, "interval between repeats of an unconfirmed mode/arm/land command, s"),
    "ardupilot_takeoff_height_m": Param(1.0, "ArduPilot: MAV_CMD_NAV_TAKEOFF height before velocity control, m"),
    "landed_height_m": Param(0.3, "in the air above this height over the arming point, when the vehicle sends no "
                                  "EXTENDED_SYS_STATE, m"),
    "odom_frame": Param("odom", "frame of /odom poses (the autopilot's local frame turned ENU)"),
    "base_frame": Param("base_link", "the vehicle body frame"),
    **LIFECYCLE_PARAMS,
}


class MavlinkDriverNode(MmchatLifecycleNode):
    """Lifecycle: configure opens the connection (telemetry received, nothing sent; an EMERGENCY from the flight
    controller still disarms), activate starts the control loop (heartbeat, set-points, mode/arm/land), deactivate
    stops it: refused while the vehicle is armed or in the air."""

    def __init__(self):
        super().__init__("mavlink_driver", PARAMS)
        if self.p.setpoint_rate_hz < 20.0:
            raise ValueError(f"setpoint_rate_hz={self.p.setpoint_rate_hz}: autopilots need >= 20 Hz")
        if self.p.autopilot not in ("auto", *AUTOPILOTS):
            raise ValueError(f"autopilot '{self.p.autopilot}' is not auto, {' or '.join(AUTOPILOTS)}")

    def configure(self) -> None:
        self.controller = ControllerLink(self, on_mode=self.on_mode)
        self.outputs = VehicleStatePublisher(self, self.p.odom_frame, self.p.base_frame)
        self.report = ProblemReport(self, {"malformed": "malformed MAVLink data",
                                           "unknown": "a MAVLink message the dialect does not know",
                                           "decode": "a MAVLink message that failed to decode",
                                           "link": "a receive error", "send": "a failed send"})
        self.supervisor = MavlinkSupervisor(
            control_mode=CONTROL_MODE, land_mode=LAND_MODE, link_timeout_s=self.p.link_timeout_s,
            heartbeat_rate_hz=self.p.heartbeat_rate_hz, setpoint_timeout_s=self.p.setpoint_timeout_s,
            controller_silence_land_s=self.p.controller_silence_land_s, offboard_stream_s=self.p.offboard_stream_s,
            command_retry_s=self.p.command_retry_s, takeoff_height_m=self.p.ardupilot_takeoff_height_m)
        self.arming_height: float | None = None
        self.last_battery = -math.inf
        self.vehicle = MavlinkVehicle(self.p.connection_url, baud=self.p.baud, source_system=self.p.source_system,
                                      source_component=self.p.source_component, target_system=self.p.target_system,
                                      target_component=self.p.target_component, on_position=self.on_position,
                                      on_attitude=self.on_attitude, on_problem=self.report, on_text=self.on_text,
                                      on_ack=self.on_ack)
        self.get_logger().info(f"mavlink driver ready: {self.p.connection_url}, autopilot {self.p.autopilot}, "
                               f"set-points at {self.p.setpoint_rate_hz:g} Hz")

    def activate(self) -> None:
        # a blocking take-off/land that overruns a period is followed by no burst of set-points (PacedLoop)
        self.start_worker(PacedLoop(self, "mavlink-control", self.p.setpoint_rate_hz,
                                    lambda: self.control_step(time.monotonic())))

    def stop_refusal(self) -> str | None:
        t = self.vehicle.telemetry
        if t.armed or in_air(t.landed_state, self.height(t), self.p.landed_height_m):
            return ("the vehicle is armed or in the air: land it first (the driver keeps streaming set-points "
                    "and heartbeats)")
        return None

    def release(self) -> None:
        self.vehicle.close()

    def autopilot(self, telemetry: Telemetry) -> str | None:
        return telemetry.autopilot if self.p.autopilot == "auto" else self.p.autopilot

    # ------------------------------------------------------------------------------------ vehicle → ROS
    def on_position(self, t: Telemetry) -> None:
        if not self.supervisor.link.up or t.q_ned_frd is None:
            return      # no odometry before the link is announced, nor without an attitude
        q = quat_ned_frd_to_world_flu(t.q_ned_frd, "enu")
        self.outputs.publish_odometry(ned_to_enu(t.position_ned), ned_to_enu(t.velocity_ned), q,
                                      frd_to_flu(t.rates_frd))

    def on_attitude(self, t: Telemetry) -> None:
        if not self.supervisor.link.up:
            return
        force = None if t.specific_force_frd is None else frd_to_flu(t.specific_force_frd)
        self.outputs.publish_imu(quat_ned_frd_to_world_flu(t.q_ned_frd, "enu"), frd_to_flu(t.rates_frd), force)

    def on_text(self, severity: int, text: str) -> None:
        # MAV_SEVERITY: 0..3 emergency..error, 4 warning, 5.. notice/info/debug
        if severity <= mavlink.MAV_SEVERITY_ERROR:
            self.get_logger().error(f"vehicle: {text}")
        elif severity == mavlink.MAV_SEVERITY_WARNING:
            self.get_logger().warn(f"vehicle: {text}")
        else:
            self.get_logger().info(f"vehicle: {text}")

    def on_ack(self, command: int, result: int) -> None:
        name = mavlink.enums["MAV_CMD"][command].name if command in mavlink.enums["MAV_CMD"] else str(command)
        outcome = MAV_RESULTS.get(result, f"result {result}")
        if command == mavlink.MAV_CMD_SET_MESSAGE_INTERVAL:
            if result != mavlink.MAV_RESULT_ACCEPTED:
                self.get_logger().warn(f"the vehicle would not change a telemetry rate ({outcome}): it keeps its own "
                                       "stream rates", throttle_duration_sec=10.0)
            return
        if result == mavlink.MAV_RESULT_ACCEPTED:
            if command == mavlink.MAV_CMD_DO_SET_MODE and self.supervisor.requested_mode:
                self.vehicle.assume(mode=self.supervisor.requested_mode)
            elif command == mavlink.MAV_CMD_COMPONENT_ARM_DISARM:
                self.vehicle.assume(armed=self.supervisor.arming_requested)
            self.get_logger().info(f"vehicle accepted {name}")
        else:
            self.get_logger().warn(f"vehicle refused {name}: {outcome}")

    def on_mode(self, mode: str) -> None:
        """Runs in the executor: an emergency stop is sent at once, not at the next control tick."""
        if self.supervisor.on_flight_mode(mode, self.vehicle.telemetry.armed, time.monotonic()):   # [EmergencyStop()]
            self.vehicle.disarm(force=True)
            self.get_logger().error("flight controller EMERGENCY: forced disarm sent (motors stop)")

    # ------------------------------------------------------------------------------------- control thread
    def control_step(self, now: float) -> None:
        t = self.vehicle.telemetry
        autopilot = self.autopilot(t)
        view = MavlinkVehicleView(t.message_time, autopilot, t.armed, t.mode,
                                  in_air(t.landed_state, self.height(t), self.p.landed_height_m))
        for action in self.supervisor.step(now, view, self.controller.view()):
            self.carry_out(action, t, autopilot)
        if self.supervisor.link.up and now - self.last_battery >= 1.0 and math.isfinite(t.battery_fraction):
            self.last_battery = now
            self.outputs.publish_battery(t.battery_fraction, t.voltage_v, t.current_a)

    def carry_out(self, action, t: Telemetry, autopilot: str | None) -> None:
        """One of the supervisor's actions (core/vehicle_link.py)."""
        log = self.get_logger()
        if isinstance(action, StreamSetpoint):
            self.stream_setpoint(action.setpoint, t)
        elif isinstance(action, SendHeartbeat):
            self.vehicle.send_heartbeat()
        elif isinstance(action, SetMode):
            log.info(f"requesting {action.mode}")
            self.vehicle.set_mode(autopilot, action.mode)
        elif isinstance(action, Arm):
            self.arming_height = None if t.position_ned is None else -t.position_ned[2]
            log.info("arming")
            self.vehicle.arm()
        elif isinstance(action, TakeOff):
            log.info(f"take-off command to {action.height_m} m (ArduCopter)")
            self.vehicle.takeoff(action.height_m)
        elif isinstance(action, SendLand):
            (log.error if action.controller_silent else log.info)(f"{action.reason}: landing")
            self.vehicle.land()
        elif isinstance(action, Disarm):
            if not action.force:
                log.info("on the ground: disarming")
            self.vehicle.disarm(force=action.force)
        elif isinstance(action, ReportHandOver):
            control_mode = CONTROL_MODE[autopilot]
            log.warn(f"the vehicle {'left ' + control_mode + ' for' if action.was_engaged else 'is armed in'} "
                     f"{action.mode} (pilot or failsafe): not taking it over; it is landed or disarmed only when "
                     "the controller disables it")
        elif isinstance(action, RequestTelemetry):
            self.request_telemetry()
        elif isinstance(action, ReportLinkLost):
            log.error(f"link lost: nothing from the vehicle for {action.silent_s:.1f} s; odometry stops; silent "
                      "now (no heartbeat, no set-point) so the vehicle's own failsafe takes over")
        elif isinstance(action, ReportLinkRestored):
            log.info(f"link restored after {action.after_s:.1f} s: vehicle {'armed' if t.armed else 'disarmed'} "
                     f"in {t.mode}")
        elif isinstance(action, ReportLinkUp):
            log.info(f"link up: {autopilot} system {self.vehicle.target_system}, mode {t.mode}, "
                     f"{'armed' if t.armed else 'disarmed'}")

    def request_telemetry(self) -> None:
        if self.p.telemetry_rate_hz > 0:
            for name in TELEMETRY_MESSAGES:
                self.vehicle.request_message_rate(name, self.p.telemetry_rate_hz)

    def stream_setpoint(self, setpoint: HeadingSetpoint | None, t: Telemetry) -> None:
        yaw_ned = t.yaw_ned
        if setpoint is None or yaw_ned is None:
            velocity, yaw_rate = (0.0, 0.0, 0.0), 0.0
        else:
            velocity = heading_velocity_to_ned(setpoint.forward, setpoint.left, setpoint.up, yaw_ned)
            yaw_rate = yaw_rate_world_to_ned(setpoint.yaw_rate)
        self.vehicle.send_velocity_ned(velocity, yaw_rate)

    def height(self, t: Telemetry) -> float | None:
        if t.position_ned is None:
            return None
        return -t.position_ned[2] - (self.arming_height or 0.0)


def main(args=None):
    return run_lifecycle_node(MavlinkDriverNode, args)


if __name__ == "__main__":
    sys.exit(main())
