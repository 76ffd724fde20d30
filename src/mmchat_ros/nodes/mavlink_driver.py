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
"""
from __future__ import annotations

import math
import sys
import threading
import time

from rclpy.node import Node

from mmchat_ros.backends.mavlink_vehicle import (AUTOPILOTS, CONTROL_MODE, LAND_MODE, MAV_RESULTS,
                                                 TELEMETRY_MESSAGES, MavlinkVehicle, Telemetry, in_air, mavlink)
from mmchat_ros.core.vehicle_frames import (frd_to_flu, heading_velocity_to_ned, ned_to_enu,
                                            quat_ned_frd_to_world_flu, yaw_rate_world_to_ned)
from mmchat_ros.nodes.common import Param, Params, run_node
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
}


class MavlinkDriverNode(Node):
    def __init__(self):
        super().__init__("mavlink_driver")
        self.p = Params(self, PARAMS)
        if self.p.setpoint_rate_hz < 20.0:
            raise ValueError(f"setpoint_rate_hz={self.p.setpoint_rate_hz}: autopilots need >= 20 Hz")
        if self.p.autopilot not in ("auto", *AUTOPILOTS):
            raise ValueError(f"autopilot '{self.p.autopilot}' is not auto, {' or '.join(AUTOPILOTS)}")
        self.controller = ControllerLink(self, on_mode=self.on_mode)
        self.outputs = VehicleStatePublisher(self, self.p.odom_frame, self.p.base_frame)
        self.report = ProblemReport(self, {"malformed": "malformed MAVLink data",
                                           "unknown": "a MAVLink message the dialect does not know",
                                           "decode": "a MAVLink message that failed to decode",
                                           "link": "a receive error", "send": "a failed send"})
        self.link_up = False
        self.link_lost_since: float | None = None
        self.stream_since: float | None = None     # set-points flowing continuously since then
        self.last_command: dict[str, float] = {}   # what → when it was last sent (retries)
        self.requested_mode: str | None = None
        self.engaged = False                       # armed in the control mode under our control this flight
        self.handed_over = False                   # it left the control mode while armed: hands off until disarmed
        self.takeoff_sent = False
        self.arming_height: float | None = None
        self.last_heartbeat = -math.inf
        self.last_battery = -math.inf
        self.vehicle = MavlinkVehicle(self.p.connection_url, baud=self.p.baud, source_system=self.p.source_system,
                                      source_component=self.p.source_component, target_system=self.p.target_system,
                                      target_component=self.p.target_component, on_position=self.on_position,
                                      on_attitude=self.on_attitude, on_problem=self.report, on_text=self.on_text,
                                      on_ack=self.on_ack)
        self.running = True
        self.thread = threading.Thread(target=self.control_loop, name="mavlink-control", daemon=True)
        self.thread.start()
        self.get_logger().info(f"mavlink driver ready: {self.p.connection_url}, autopilot {self.p.autopilot}, "
                               f"set-points at {self.p.setpoint_rate_hz:g} Hz")

    def autopilot(self, telemetry: Telemetry) -> str | None:
        return telemetry.autopilot if self.p.autopilot == "auto" else self.p.autopilot

    # ------------------------------------------------------------------------------------ vehicle → ROS
    def on_position(self, t: Telemetry) -> None:
        if not self.link_up or t.q_ned_frd is None:
            return      # no odometry before the link is announced, nor without an attitude
        q = quat_ned_frd_to_world_flu(t.q_ned_frd, "enu")
        self.outputs.publish_odometry(ned_to_enu(t.position_ned), ned_to_enu(t.velocity_ned), q,
                                      frd_to_flu(t.rates_frd))

    def on_attitude(self, t: Telemetry) -> None:
        if not self.link_up:
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
            if command == mavlink.MAV_CMD_DO_SET_MODE and self.requested_mode:
                self.vehicle.assume(mode=self.requested_mode)
            elif command == mavlink.MAV_CMD_COMPONENT_ARM_DISARM:
                self.vehicle.assume(armed=self.last_command.get("arm", 0) > self.last_command.get("disarm", 0))
            self.get_logger().info(f"vehicle accepted {name}")
        else:
            self.get_logger().warn(f"vehicle refused {name}: {outcome}")

    def on_mode(self, mode: str) -> None:
        """Runs in the executor: an emergency stop is sent at once, not at the next control tick."""
        if mode == "EMERGENCY" and self.vehicle.telemetry.armed:
            self.vehicle.disarm(force=True)
            self.last_command["kill"] = time.monotonic()
            self.get_logger().error("flight controller EMERGENCY: forced disarm sent (motors stop)")

    # ------------------------------------------------------------------------------------- control thread
    def control_loop(self) -> None:
        period = 1.0 / self.p.setpoint_rate_hz
        next_tick = time.monotonic()
        while self.running:
            try:
                self.control_step(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - keep the loop; say what broke
                self.get_logger().error(f"control step failed: {type(exc).__name__}: {exc}",
                                        throttle_duration_sec=1.0)
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()

    def control_step(self, now: float) -> None:
        t = self.vehicle.telemetry
        if t.message_time is None or now - t.message_time > self.p.link_timeout_s:
            self.stream_since = None
            if self.link_up:
                self.link_up = False
                self.link_lost_since = now
                self.get_logger().error(
                    f"link lost: nothing from the vehicle for {now - t.message_time:.1f} s; odometry stops; "
                    "silent now (no heartbeat, no set-point) so the vehicle's own failsafe takes over")
            elif t.message_time is None:
                self.send_heartbeat(now)     # let a udpout/serial peer learn about us before it talks
            return
        autopilot = self.autopilot(t)
        if autopilot is None:
            return                           # no HEARTBEAT from an autopilot yet
        if not self.link_up:
            self.link_up = True
            if self.link_lost_since is not None:
                self.get_logger().info(f"link restored after {now - self.link_lost_since:.1f} s: vehicle "
                                       f"{'armed' if t.armed else 'disarmed'} in {t.mode}")
                self.link_lost_since = None
            else:
                self.get_logger().info(f"link up: {autopilot} system {self.vehicle.target_system}, mode {t.mode}, "
                                       f"{'armed' if t.armed else 'disarmed'}")
            self.request_telemetry()
        self.send_heartbeat(now)
        self.stream_setpoint(now, t)
        self.supervise(now, t, autopilot)
        if now - self.last_battery >= 1.0 and math.isfinite(t.battery_fraction):
            self.last_battery = now
            self.outputs.publish_battery(t.battery_fraction, t.voltage_v, t.current_a)

    def request_telemetry(self) -> None:
        if self.p.telemetry_rate_hz > 0:
            for name in TELEMETRY_MESSAGES:
                self.vehicle.request_message_rate(name, self.p.telemetry_rate_hz)

    def send_heartbeat(self, now: float) -> None:
        if now - self.last_heartbeat >= 1.0 / self.p.heartbeat_rate_hz:
            self.last_heartbeat = now
            self.vehicle.send_heartbeat()

    def stream_setpoint(self, now: float, t: Telemetry) -> None:
        setpoint = self.controller.fresh_setpoint(now, self.p.setpoint_timeout_s) if self.controller.enabled else None
        yaw_ned = t.yaw_ned
        if setpoint is None or yaw_ned is None:
            velocity, yaw_rate = (0.0, 0.0, 0.0), 0.0
        else:
            velocity = heading_velocity_to_ned(setpoint.forward, setpoint.left, setpoint.up, yaw_ned)
            yaw_rate = yaw_rate_world_to_ned(setpoint.yaw_rate)
        self.vehicle.send_velocity_ned(velocity, yaw_rate)
        if self.stream_since is None:
            self.stream_since = now

    def due(self, what: str, now: float) -> bool:
        """Rate-limits repeats of a command whose effect is not confirmed yet."""
        if now - self.last_command.get(what, -math.inf) < self.p.command_retry_s:
            return False
        self.last_command[what] = now
        return True

    def height(self, t: Telemetry) -> float | None:
        if t.position_ned is None:
            return None
        return -t.position_ned[2] - (self.arming_height or 0.0)

    def supervise(self, now: float, t: Telemetry, autopilot: str) -> None:
        """Bring the vehicle's arming and mode to what the flight controller wants, one command at a time."""
        airborne = in_air(t.landed_state, self.height(t), self.p.landed_height_m)
        if self.controller.emergency:
            if t.armed and self.due("kill", now):
                self.vehicle.disarm(force=True)
            return
        if not t.armed:
            self.engaged = self.handed_over = self.takeoff_sent = False
        if not self.controller.enabled:
            if t.armed and airborne is not False:
                if t.mode != LAND_MODE[autopilot] and self.due("land", now):
                    self.get_logger().info("the flight controller disables the vehicle in the air: landing")
                    self.vehicle.land()
            elif t.armed and self.due("disarm", now):
                self.get_logger().info("on the ground: disarming")
                self.vehicle.disarm()
            return
        if self.controller.setpoint_age(now) > self.p.controller_silence_land_s and airborne:
            if t.mode != LAND_MODE[autopilot] and self.due("land", now):
                self.get_logger().error(f"no set-point from the flight controller for "
                                        f"{self.p.controller_silence_land_s} s: landing")
                self.vehicle.land()
            return
        control_mode = CONTROL_MODE[autopilot]
        if self.handed_over:
            return
        if t.armed and t.mode != control_mode:
            # Only a disarmed vehicle is switched to the control mode: one that left it while armed (the pilot's
            # switch, its own failsafe), or was flying in another mode when we (re)connected, stays as it is.
            self.handed_over = True
            self.get_logger().warn(
                f"the vehicle {'left ' + control_mode + ' for' if self.engaged else 'is armed in'} {t.mode} "
                "(pilot or failsafe): not taking it over; it is landed or disarmed only when the controller "
                "disables it")
            return
        if not t.armed and not self.controller.taking_off:
            return      # disarmed while the controller is not starting a flight (it landed by itself): stay so
        if t.mode != control_mode:
            streamed = self.stream_since is not None and now - self.stream_since >= self.p.offboard_stream_s
            if (autopilot != "px4" or streamed) and self.due("mode", now):
                self.requested_mode = control_mode
                self.get_logger().info(f"requesting {control_mode}")
                self.vehicle.set_mode(autopilot, control_mode)
            return
        if not t.armed:
            if self.due("arm", now):
                self.arming_height = None if t.position_ned is None else -t.position_ned[2]
                self.get_logger().info("arming")
                self.vehicle.arm()
            return
        self.engaged = True
        if autopilot == "ardupilot" and not airborne and not self.takeoff_sent and self.due("takeoff", now):
            self.takeoff_sent = True
            self.get_logger().info(f"take-off command to {self.p.ardupilot_takeoff_height_m} m (ArduCopter)")
            self.vehicle.takeoff(self.p.ardupilot_takeoff_height_m)

    def shutdown(self) -> None:
        self.running = False
        if self.thread.is_alive():
            self.thread.join(timeout=3.0)
        self.vehicle.close()


def main(args=None):
    return run_node(MavlinkDriverNode, args)


if __name__ == "__main__":
    sys.exit(main())
