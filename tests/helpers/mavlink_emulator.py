"""A MAVLink 2 vehicle on 127.0.0.1 speaking real MAVLink through pymavlink, flown by our simulator.

Test double for the mavlink_driver node, in the role of PX4 SITL (or ArduCopter SITL with ``autopilot=
"ardupilot"``): it sends to the driver's ``udpin`` port from its own socket (``udpout``), as SITL does. It answers
COMMAND_LONG (arm/disarm, take-off, land, DO_SET_MODE, SET_MESSAGE_INTERVAL) with COMMAND_ACK, accepts SET_MODE and
SET_POSITION_TARGET_LOCAL_NED velocity set-points in MAV_FRAME_LOCAL_NED, and publishes HEARTBEAT,
LOCAL_POSITION_NED, ATTITUDE, ATTITUDE_QUATERNION, HIGHRES_IMU, SYS_STATUS, BATTERY_STATUS, EXTENDED_SYS_STATE and
STATUSTEXT from the airframe of tests/helpers/emulated_vehicle.py (our MuJoCo quadrotor with our FlightCore as the
autopilot's inner loops).

Autopilot semantics reproduced:
- PX4: OFFBOARD is refused until set-points have streamed for more than a second (no gap over 0.5 s), and
  arming in OFFBOARD needs the same; armed in OFFBOARD, an upward set-point lifts off; no set-point for
  ``offboard_loss_timeout_s`` in OFFBOARD → failsafe to AUTO.LAND (``offboard_loss_action="land"``) or AUTO.LOITER
  ("hold"); landed → auto-disarm after 2 s; disarming in the air needs the force flag; armed and not taken off
  for 10 s → auto-disarm. Its default streams flow without being requested.
- ArduCopter: GUIDED takes velocity set-points once airborne; on the ground it needs MAV_CMD_NAV_TAKEOFF; a
  velocity set-point holds for 3 s; no GCS heartbeat for ``gcs_failsafe_s`` → LAND. It streams only HEARTBEAT
  until the messages are requested with MAV_CMD_SET_MESSAGE_INTERVAL.

The NED/FRD values are computed here from the simulator's ENU/FLU truth by the Euler-angle relations (yaw_ned =
π/2 - yaw_enu, pitch_ned = -pitch_enu, roll unchanged), independently of the rotation-matrix code the driver uses
(core/vehicle_frames.py), so a sign error there shows up in the tests. ``link_up = False`` drops everything both
ways while the vehicle keeps flying.
"""
from __future__ import annotations

import math
import os
import threading
import time

import numpy as np

os.environ.setdefault("MAVLINK20", "1")
from pymavlink import mavutil  # noqa: E402

from mmchat_ros.core.geometry import quat_from_euler  # noqa: E402
from tests.helpers.emulated_vehicle import INNER_SOURCE, EmulatedVehicle  # noqa: E402

mavlink = mavutil.mavlink
PX4_MODES = {"POSCTL": (3, 0), "AUTO.TAKEOFF": (4, 2), "AUTO.LOITER": (4, 3), "AUTO.RTL": (4, 5), "AUTO.LAND": (4, 6),
             "OFFBOARD": (6, 0)}
ARDUCOPTER_MODES = {"STABILIZE": 0, "GUIDED": 4, "LOITER": 5, "RTL": 6, "LAND": 9}
FLYING = ("HOVER", "VELOCITY", "POSITION")


class MavlinkVehicleEmulator:
    def __init__(self, driver_port: int, *, autopilot: str = "px4", system_id: int = 1, start_yaw_deg: float = 0.0,
                 offboard_loss_timeout_s: float = 0.5, offboard_loss_action: str = "land",
                 gcs_failsafe_s: float = 5.0, liftoff_height_m: float = 0.4):
        assert autopilot in ("px4", "ardupilot")
        self.autopilot = autopilot
        self.system_id = system_id
        self.offboard_loss_timeout_s = offboard_loss_timeout_s
        self.offboard_loss_action = offboard_loss_action
        self.gcs_failsafe_s = gcs_failsafe_s
        self.liftoff_height_m = liftoff_height_m
        self.vehicle = EmulatedVehicle("x500", start_yaw_deg=start_yaw_deg, min_flight_height_m=0.05)
        self.connection = mavutil.mavlink_connection(f"udpout:127.0.0.1:{driver_port}", source_system=system_id,
                                                     source_component=1)
        self.send_lock = threading.Lock()
        self.link_up = True
        self.armed = False
        self.mode = "AUTO.LOITER" if autopilot == "px4" else "STABILIZE"
        self.setpoint: tuple[float, np.ndarray, float] | None = None    # (arrival, ENU velocity, ENU yaw rate)
        self.stream_since: float | None = None        # set-points arriving without a 0.5 s gap since then
        self.setpoint_log: list[tuple[float, np.ndarray]] = []   # (arrival, ENU velocity), for latency benches
        self.last_gcs_heartbeat: float | None = None
        self.armed_at = 0.0
        self.landed_since: float | None = None
        self.ever_flew = False
        # message → rate in Hz; ArduPilot streams nothing but HEARTBEAT until asked
        defaults = {"LOCAL_POSITION_NED": 30.0, "ATTITUDE_QUATERNION": 30.0, "ATTITUDE": 10.0, "HIGHRES_IMU": 30.0,
                    "SYS_STATUS": 2.0, "BATTERY_STATUS": 1.0, "EXTENDED_SYS_STATE": 5.0}
        self.rates = defaults if autopilot == "px4" else {}
        self.rates["HEARTBEAT"] = 1.0
        self.last_sent: dict[str, float] = {}
        self.events: list[str] = []
        self.received: dict[str, int] = {}
        self.dropped = 0
        self.boot = time.monotonic()
        self.running = False
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> "MavlinkVehicleEmulator":
        self.running = True
        self.vehicle.on_tick.append(self._tick)
        self.vehicle.start()
        self.thread = threading.Thread(target=self._receive, name="mavlink-emulator-rx", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.running = False
        if self.thread is not None:
            self.thread.join(timeout=3.0)
        self.vehicle.stop()
        self.connection.close()

    def event(self, text: str) -> None:
        self.events.append(f"{time.monotonic():.2f} {text}")

    def truth(self):
        return self.vehicle.truth()

    def _send(self, function, *args) -> None:
        if not self.link_up:
            return
        with self.send_lock:
            getattr(self.connection.mav, function)(*args)

    def _ack(self, command: int, result: int) -> None:
        self._send("command_ack_send", command, result)

    def statustext(self, severity: int, text: str) -> None:
        self.event(text)
        self._send("statustext_send", severity, text.encode()[:50])

    # ------------------------------------------------------------------------------------------- receiving
    def _receive(self) -> None:
        while self.running:
            message = self.connection.recv_match(blocking=True, timeout=0.1)
            if message is None:
                continue
            if not self.link_up:
                self.dropped += 1
                continue
            kind = message.get_type()
            self.received[kind] = self.received.get(kind, 0) + 1
            with self.vehicle.lock:
                self._handle(kind, message)

    def _handle(self, kind: str, m) -> None:
        now = time.monotonic()
        if kind == "HEARTBEAT":
            self.last_gcs_heartbeat = now
        elif kind == "SET_POSITION_TARGET_LOCAL_NED":
            if m.coordinate_frame != mavlink.MAV_FRAME_LOCAL_NED or m.type_mask & 0b111000:
                self.event(f"ignored set-point: frame {m.coordinate_frame}, type mask {m.type_mask:#x}")
                return
            # NED → ENU for the simulator: east is ENU x, north is ENU y, down is -z; yaw rate flips with z.
            velocity_enu = np.array([m.vy, m.vx, -m.vz])
            yaw_rate_enu = 0.0 if m.type_mask & mavlink.POSITION_TARGET_TYPEMASK_YAW_RATE_IGNORE else -m.yaw_rate
            if self.setpoint is None or now - self.setpoint[0] > 0.5:
                self.stream_since = now
            self.setpoint = (now, velocity_enu, yaw_rate_enu)
            self.setpoint_log.append((now, velocity_enu))
            del self.setpoint_log[:-5000]
        elif kind == "COMMAND_LONG":
            self._command(m, now)
        elif kind == "SET_MODE":
            self._set_mode(self._mode_from_custom(m.custom_mode), now)

    def _mode_from_custom(self, custom: int) -> str | None:
        if self.autopilot == "px4":
            main, sub = (custom >> 16) & 0xFF, (custom >> 24) & 0xFF
            return next((n for n, (a, b) in PX4_MODES.items() if a == main and (b == sub or main != 4)), None)
        return next((n for n, number in ARDUCOPTER_MODES.items() if number == custom), None)

    def _streaming(self, now: float) -> bool:
        """PX4 accepts OFFBOARD (and arming in it) only after more than a second of set-points at > 2 Hz."""
        return self.setpoint is not None and now - self.setpoint[0] < 0.5 and now - self.stream_since > 1.0

    def _set_mode(self, mode: str | None, now: float) -> int:
        if mode is None:
            return mavlink.MAV_RESULT_DENIED
        if mode == "OFFBOARD" and not self._streaming(now):
            self.event("OFFBOARD refused: no set-point stream")
            return mavlink.MAV_RESULT_TEMPORARILY_REJECTED
        self.mode = mode
        self.event(f"mode {mode}")
        sim_now = self.vehicle.sim.state().time_s
        core = self.vehicle.core
        if mode in ("AUTO.LAND", "LAND") and core.mode.value not in ("LANDED", "EMERGENCY"):
            core.land(sim_now, source=INNER_SOURCE, reason=mode)
        return mavlink.MAV_RESULT_ACCEPTED

    def _command(self, m, now: float) -> None:
        core = self.vehicle.core
        sim_now = self.vehicle.sim.state().time_s
        command = m.command
        landed = core.mode.value in ("LANDED", "ARMED", "EMERGENCY")
        if command == mavlink.MAV_CMD_DO_SET_MODE:
            custom = (int(m.param2) << 16 | int(m.param3) << 24) if self.autopilot == "px4" else int(m.param2)
            self._ack(command, self._set_mode(self._mode_from_custom(custom), now))
        elif command == mavlink.MAV_CMD_COMPONENT_ARM_DISARM:
            if m.param1 == 1.0:
                ok = landed and (self.mode != "OFFBOARD" or self._streaming(now))
                if ok:
                    self.armed, self.armed_at, self.ever_flew = True, now, False
                    self.event("armed")
                self._ack(command, mavlink.MAV_RESULT_ACCEPTED if ok else mavlink.MAV_RESULT_DENIED)
            elif landed or int(m.param2) == 21196:
                if not landed:
                    core.emergency_stop(sim_now, source=INNER_SOURCE)
                    self.event("forced disarm in the air: motors stopped")
                self._disarm("disarm command")
                self._ack(command, mavlink.MAV_RESULT_ACCEPTED)
            else:
                self.event("disarm refused: in the air")
                self._ack(command, mavlink.MAV_RESULT_DENIED)
        elif command == mavlink.MAV_CMD_NAV_LAND:
            self._ack(command, self._set_mode("AUTO.LAND" if self.autopilot == "px4" else "LAND", now))
        elif command == mavlink.MAV_CMD_NAV_TAKEOFF:
            if not (self.armed and landed):
                self._ack(command, mavlink.MAV_RESULT_DENIED)
                return
            height = m.param7 if math.isfinite(m.param7) and m.param7 > 0 else 2.5
            decision = core.takeoff(sim_now, height=height, source=INNER_SOURCE)
            if decision and self.autopilot == "px4":
                self.mode = "AUTO.TAKEOFF"
            self.event(f"take-off to {height} m: {decision.reason or 'accepted'}")
            self._ack(command, mavlink.MAV_RESULT_ACCEPTED if decision else mavlink.MAV_RESULT_DENIED)
        elif command == mavlink.MAV_CMD_SET_MESSAGE_INTERVAL:
            name = mavlink.mavlink_map[int(m.param1)].msgname if int(m.param1) in mavlink.mavlink_map else None
            if name is None:
                self._ack(command, mavlink.MAV_RESULT_DENIED)
                return
            if m.param2 > 0:
                self.rates[name] = 1e6 / m.param2
            self._ack(command, mavlink.MAV_RESULT_ACCEPTED)
        else:
            self._ack(command, mavlink.MAV_RESULT_UNSUPPORTED)

    def _disarm(self, why: str) -> None:
        if self.armed:
            self.armed = False
            self.event(f"disarmed ({why})")

    # ------------------------------------------------------------------------------ autopilot (physics thread)
    def _tick(self, sim_now: float) -> None:
        now = time.monotonic()
        core = self.vehicle.core
        mode = core.mode.value
        if mode in FLYING:
            self.ever_flew = True
        self._failsafes(now, sim_now, mode)
        if self.armed:
            self._follow_setpoints(now, sim_now, mode)
            on_ground = mode in ("LANDED", "ARMED")
            if on_ground and self.ever_flew:
                self.landed_since = self.landed_since or now
                if now - self.landed_since > 2.0:
                    self._disarm("landed")
            else:
                self.landed_since = None
            if not self.ever_flew and mode == "LANDED" and now - self.armed_at > 10.0:
                self._disarm("not taken off within 10 s")
        if self.mode == "AUTO.TAKEOFF" and mode in FLYING:
            self.mode = "AUTO.LOITER"
        self._telemetry(now)

    def _failsafes(self, now: float, sim_now: float, mode: str) -> None:
        if not self.armed or mode not in FLYING:
            return
        if self.autopilot == "px4" and self.mode == "OFFBOARD" and \
                (self.setpoint is None or now - self.setpoint[0] > self.offboard_loss_timeout_s):
            target = "AUTO.LAND" if self.offboard_loss_action == "land" else "AUTO.LOITER"
            self._set_mode(target, now)
            self.statustext(mavlink.MAV_SEVERITY_WARNING, f"Failsafe: offboard lost, {target}")
        if self.autopilot == "ardupilot" and self.last_gcs_heartbeat is not None and \
                now - self.last_gcs_heartbeat > self.gcs_failsafe_s and self.mode != "LAND":
            self._set_mode("LAND", now)
            self.statustext(mavlink.MAV_SEVERITY_CRITICAL, "GCS Failsafe: LAND")

    def _follow_setpoints(self, now: float, sim_now: float, mode: str) -> None:
        core = self.vehicle.core
        control = "OFFBOARD" if self.autopilot == "px4" else "GUIDED"
        hold_s = self.offboard_loss_timeout_s if self.autopilot == "px4" else 3.0
        if self.mode != control or self.setpoint is None or now - self.setpoint[0] > hold_s:
            return
        _, velocity, yaw_rate = self.setpoint
        height = self.vehicle.sim.state().position[2] - self.vehicle.origin[2]
        if mode == "LANDED" and self.autopilot == "px4" and velocity[2] > 0.2:
            decision = core.takeoff(sim_now, height=self.liftoff_height_m, source=INNER_SOURCE)
            self.event(f"lift-off on an upward set-point: {decision.reason or 'accepted'}")
        elif mode in FLYING:
            if velocity[2] < -0.05 and height < 0.1:      # the land detector: pushed into the ground
                core.land(sim_now, source=INNER_SOURCE, reason="land detector")
                self.event("land detector: on the ground")
            else:
                core.submit_velocity(INNER_SOURCE, *velocity, yaw_rate, sim_now)

    # ----------------------------------------------------------------------------------------------- telemetry
    def _due(self, name: str, now: float) -> bool:
        rate = self.rates.get(name, 0.0)
        if rate <= 0 or now - self.last_sent.get(name, -math.inf) < 1.0 / rate - 1e-3:
            return False
        self.last_sent[name] = now
        return True

    def _telemetry(self, now: float) -> None:
        if not self.link_up:
            return
        truth = self.vehicle.truth()
        boot_ms = int((now - self.boot) * 1000)
        if self._due("HEARTBEAT", now):
            base = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (mavlink.MAV_MODE_FLAG_SAFETY_ARMED if self.armed else 0)
            if self.autopilot == "px4":
                main, sub = PX4_MODES[self.mode]
                custom, autopilot = main << 16 | sub << 24, mavlink.MAV_AUTOPILOT_PX4
            else:
                custom, autopilot = ARDUCOPTER_MODES[self.mode], mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA
            status = mavlink.MAV_STATE_ACTIVE if self.armed else mavlink.MAV_STATE_STANDBY
            self._send("heartbeat_send", mavlink.MAV_TYPE_QUADROTOR, autopilot, base, custom, status)
        position, velocity = truth.position, truth.velocity
        if self._due("LOCAL_POSITION_NED", now):
            self._send("local_position_ned_send", boot_ms, position[1], position[0], -position[2], velocity[1],
                       velocity[0], -velocity[2])
        roll, pitch, yaw_enu = truth.euler
        roll_ned, pitch_ned, yaw_ned = roll, -pitch, math.pi / 2 - yaw_enu
        p, q, r = truth.angular_velocity_body
        rates_frd = (p, -q, -r)
        if self._due("ATTITUDE_QUATERNION", now):
            self._send("attitude_quaternion_send", boot_ms, *quat_from_euler(roll_ned, pitch_ned, yaw_ned),
                       *rates_frd)
        if self._due("ATTITUDE", now):
            self._send("attitude_send", boot_ms, roll_ned, pitch_ned, math.remainder(yaw_ned, 2 * math.pi), *rates_frd)
        if self._due("HIGHRES_IMU", now):
            fx, fy, fz = truth.specific_force_body
            self._send("highres_imu_send", int((now - self.boot) * 1e6), fx, -fy, -fz, *rates_frd, 0, 0, 0, 1013.0,
                       0.0, 0.0, 25.0, 0x3F)
        if self._due("SYS_STATUS", now):
            self._send("sys_status_send", 0, 0, 0, 200, int(truth.voltage_v * 1000), int(truth.current_a * 100),
                       int(truth.battery_fraction * 100), 0, 0, 0, 0, 0, 0)
        if self._due("BATTERY_STATUS", now):
            self._send("battery_status_send", 0, 0, 0, 2500, [int(truth.voltage_v * 1000 / 4)] * 4 + [65535] * 6,
                       int(truth.current_a * 100), -1, -1, int(truth.battery_fraction * 100))
        if self._due("EXTENDED_SYS_STATE", now):
            inner = self.vehicle.core.mode.value
            landed_state = {"TAKING_OFF": mavlink.MAV_LANDED_STATE_TAKEOFF, "LANDING": mavlink.MAV_LANDED_STATE_LANDING
                            }.get(inner, mavlink.MAV_LANDED_STATE_IN_AIR if inner in FLYING
                                  else mavlink.MAV_LANDED_STATE_ON_GROUND)
            self._send("extended_sys_state_send", mavlink.MAV_VTOL_STATE_MC, landed_state)
