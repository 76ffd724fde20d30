"""A Tello SDK 2.0 responder on 127.0.0.1: the protocol a real Tello speaks, executed by our simulator.

Test double for the tello_driver node. It answers text commands on its UDP command port (``command``, ``takeoff``,
``land``, ``emergency``, ``rc``, ``streamon``/``streamoff``, a few read commands), sends state strings at 10 Hz
to the client's state port once in SDK mode, and with ``video=True`` streams the simulator's onboard camera as an
H.264 Annex-B byte stream (libx264 through PyAV) in 1460-byte datagrams to the client's video port, as a Tello
does. The airframe is tests/helpers/emulated_vehicle.py: our MuJoCo quadrotor with our FlightCore standing in for
the Tello's own inner loops.

Tello behaviour reproduced: ``takeoff`` climbs to about 0.8 m and answers ``ok`` when there; ``land`` answers
once on the ground; ``rc`` sticks persist until the next ``rc``; holding the stick down near the ground lands;
no command for 15 s in the air → it lands by itself; ``emergency`` stops the motors. Unknown commands get
``unknown command: ...``, malformed ones ``error``. ``link_up = False`` drops every datagram both ways (out of
Wi-Fi range) while the vehicle keeps flying.

The conversions from the simulator's ENU truth to the Tello's units and axes are written out here on their own,
not taken from the driver's code (core/vehicle_frames.py), so a sign error there shows up in the tests.
"""
from __future__ import annotations

import math
import socket
import threading
import time
from fractions import Fraction

import numpy as np

from mmchat_ros.core.tello_protocol import TelloProtocolError, TelloState, format_state, parse_command
from tests.helpers.emulated_vehicle import INNER_SOURCE, EmulatedVehicle

FLYING_MODES = ("HOVER", "VELOCITY", "POSITION")
VIDEO_CHUNK = 1460


class TelloEmulator:
    def __init__(self, client_state_port: int, client_video_port: int = 0, *, takeoff_height_m: float = 0.8,
                 auto_land_silence_s: float = 15.0, start_yaw_deg: float = 0.0, video: bool = False,
                 video_rate_hz: float = 5.0, full_scale=(3.0, 1.5, 100.0), state_rate_hz: float = 10.0):
        self.client_state_port = int(client_state_port)
        self.client_video_port = int(client_video_port)
        self.takeoff_height_m = takeoff_height_m
        self.auto_land_silence_s = auto_land_silence_s
        # What full stick does on this emulated Tello: m/s horizontally, m/s vertically, deg/s of yaw.
        self.full_xy, self.full_z, self.full_yaw_deg = full_scale
        self.state_period = 1.0 / state_rate_hz
        self.video = video
        self.video_period = 1.0 / video_rate_hz
        self.vehicle = EmulatedVehicle("x500", start_yaw_deg=start_yaw_deg, min_flight_height_m=0.05)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.command_port = self.sock.getsockname()[1]
        self.link_up = True
        self.sdk_mode = False
        self.stream_on = False
        self.client: tuple[str, int] | None = None
        self.sticks = (0, 0, 0, 0)
        self.pending: dict[str, tuple[str, int]] = {}     # 'takeoff'/'land' → address waiting for the reply
        self.last_command_wall = time.monotonic()
        self.motor_time_s = 0.0
        self.events: list[str] = []
        self.commands: list[str] = []
        self.command_log: list[tuple[float, str]] = []     # (arrival, text), for latency benches
        self.dropped = 0
        self.video_frames_sent = 0
        self._tick_count = 0
        self.running = False
        self.threads: list[threading.Thread] = []

    # ------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> "TelloEmulator":
        self.running = True
        self.vehicle.on_tick.append(self._tick)
        if self.video:
            # The first render opens the GL context and the first encode sets libx264 up: seconds of CPU on a busy
            # machine, done before the vehicle serves anyone (the GL context stays with the video thread).
            self._video_ready = threading.Event()
            self.threads.append(threading.Thread(target=self._send_video, daemon=True, name="tello-emulator-video"))
            self.threads[-1].start()
            self._video_ready.wait(60.0)
        self.vehicle.start()
        for target in (self._receive_commands, self._send_state):
            self.threads.append(threading.Thread(target=target, daemon=True, name=f"tello-emulator-{target.__name__}"))
            self.threads[-1].start()
        return self

    def stop(self) -> None:
        self.running = False
        for thread in self.threads:
            thread.join(timeout=3.0)
        self.vehicle.stop()
        self.sock.close()

    def event(self, text: str) -> None:
        self.events.append(f"{time.monotonic():.2f} {text}")

    def truth(self):
        return self.vehicle.truth()

    # ------------------------------------------------------------------------------------------- commands
    def _reply(self, address, text: str) -> None:
        if self.link_up:
            self.sock.sendto(text.encode("ascii"), address)

    def _receive_commands(self) -> None:
        while self.running:
            try:
                data, address = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if not self.link_up:
                self.dropped += 1
                continue
            try:
                command = parse_command(data)
            except TelloProtocolError as exc:
                self.event(f"bad command {data[:40]!r}: {exc}")
                self._reply(address, f"unknown command: {data[:40].decode('ascii', 'replace').strip()}"
                            if str(exc).startswith("unknown command") else "error")
                continue
            self.commands.append(command.text())
            self.command_log.append((time.monotonic(), command.text()))
            del self.command_log[:-5000]
            self.last_command_wall = time.monotonic()
            with self.vehicle.lock:
                self._execute(command, address)

    def _execute(self, command, address) -> None:
        core = self.vehicle.core
        now = self.vehicle.sim.state().time_s
        name = command.name
        if name == "command":
            self.sdk_mode, self.client = True, address
            self._reply(address, "ok")
            return
        if not self.sdk_mode:
            self.event(f"'{name}' before 'command' ignored")
            return
        if name == "rc":
            self.sticks = tuple(command.args)
        elif name == "takeoff":
            if core.mode.value == "EMERGENCY":
                core.reset_emergency(now)
            decision = core.takeoff(now, height=self.takeoff_height_m, source=INNER_SOURCE)
            if decision:
                self.pending["takeoff"] = address
                self.sticks = (0, 0, 0, 0)
                self.event("takeoff")
            else:
                self._reply(address, "error")
                self.event(f"takeoff refused: {decision.reason}")
        elif name == "land":
            if core.mode.value == "LANDED":
                self._reply(address, "error")
            else:
                core.land(now, source=INNER_SOURCE, reason="land command")
                self.pending["land"] = address
                self.event("land")
        elif name == "emergency":
            core.emergency_stop(now, source=INNER_SOURCE)
            self.event("emergency: motors stopped")
            self._reply(address, "ok")
        elif name in ("streamon", "streamoff"):
            self.stream_on = name == "streamon"
            self._reply(address, "ok")
        elif name == "battery?":
            self._reply(address, str(int(self.vehicle.truth().battery_fraction * 100)))
        elif name == "sdk?":
            self._reply(address, "20")
        elif name == "time?":
            self._reply(address, f"{int(self.motor_time_s)}s")

    # ------------------------------------------------------------------------------ inner loop (physics thread)
    def _tick(self, now: float) -> None:
        core = self.vehicle.core
        mode = core.mode.value
        self._tick_count += 1
        if mode not in ("LANDED", "EMERGENCY"):
            self.motor_time_s += 1.0 / self.vehicle.rate_hz
        if "takeoff" in self.pending and mode in FLYING_MODES + ("LANDED", "EMERGENCY"):
            self._reply(self.pending.pop("takeoff"), "ok" if mode in FLYING_MODES else "error")
        if "land" in self.pending and mode in ("LANDED", "EMERGENCY"):
            self._reply(self.pending.pop("land"), "ok")
        if mode not in FLYING_MODES or "takeoff" in self.pending:
            return
        if time.monotonic() - self.last_command_wall > self.auto_land_silence_s:
            core.land(now, source=INNER_SOURCE, reason="no command for 15 s")
            self.event(f"no command for {self.auto_land_silence_s} s: landing by itself")
            return
        if self._tick_count % 5:
            return          # the sticks are re-applied at 20 Hz, well within the inner mux's timeout
        right, forward, up, clockwise = (v / 100.0 for v in self.sticks)
        if not any(self.sticks):
            core.submit_hover(INNER_SOURCE, now)
            return
        height = self.vehicle.sim.state().position[2] - self.vehicle.origin[2]
        if up < 0 and height < 0.1:
            core.land(now, source=INNER_SOURCE, reason="stick held down on the ground")
            self.event("stick held down near the ground: landed")
            return
        core.submit_velocity_body(INNER_SOURCE, forward * self.full_xy, -right * self.full_xy, up * self.full_z,
                                  -math.radians(clockwise * self.full_yaw_deg), now)

    # ----------------------------------------------------------------------------------------------- state
    def state_string(self) -> TelloState:
        """The simulator's truth in the Tello's units and axes: its world is the start heading turned NED
        (x forward at start, y right at start, z down); yaw clockwise from the start heading; roll right-wing-down
        and pitch nose-up positive; velocities in dm/s; accelerations in 0.001 g along body FRD."""
        truth = self.vehicle.truth()
        roll, pitch, yaw = truth.euler
        psi0 = self.vehicle.start_yaw
        forward0 = np.array([math.cos(psi0), math.sin(psi0)])
        right0 = np.array([math.sin(psi0), -math.cos(psi0)])
        v = truth.velocity
        yaw_tello = -math.degrees(yaw - psi0)
        yaw_tello = (yaw_tello + 180.0) % 360.0 - 180.0
        height = max(0.0, float(truth.position[2]))
        fx, fy, fz = truth.specific_force_body / 9.80665 * 1000.0
        return TelloState(
            pitch_deg=int(round(-math.degrees(pitch))), roll_deg=int(round(math.degrees(roll))),
            yaw_deg=int(round(yaw_tello)),
            vgx=int(round(float(v[:2] @ forward0) * 10)), vgy=int(round(float(v[:2] @ right0) * 10)),
            vgz=int(round(-float(v[2]) * 10)),
            tof_cm=int(round(height * 100 + 10)) if height < 9.0 else 6553, h_cm=int(round(height * 10)) * 10,
            battery_percent=int(truth.battery_fraction * 100), templ_c=58, temph_c=61, baro_m=112.5 + height,
            motor_time_s=int(self.motor_time_s), agx_mg=float(fx), agy_mg=float(-fy), agz_mg=float(-fz))

    def _send_state(self) -> None:
        next_send = time.monotonic()
        while self.running:
            next_send += self.state_period
            time.sleep(max(0.0, next_send - time.monotonic()))
            if self.sdk_mode and self.link_up and self.client is not None:
                try:
                    self.sock.sendto(format_state(self.state_string()), (self.client[0], self.client_state_port))
                except OSError:
                    pass

    # ----------------------------------------------------------------------------------------------- video
    def _send_video(self) -> None:
        import av
        try:
            encoder = self._encoder_for(av, self.vehicle.render())        # warm-up, see start()
        except Exception as exc:  # noqa: BLE001 - no headless GL here: say so, no video
            self.event(f"video off: cannot render the camera: {exc}")
            return
        finally:
            self._video_ready.set()
        next_frame = time.monotonic()
        try:
            while self.running:
                next_frame += self.video_period
                time.sleep(max(0.0, next_frame - time.monotonic()))
                if not (self.stream_on and self.link_up and self.client is not None):
                    continue
                try:
                    rgb = self.vehicle.render()
                except Exception as exc:  # noqa: BLE001 - no headless GL here: say so, stop the stream
                    self.event(f"video off: cannot render the camera: {exc}")
                    return
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
                frame.pts = self.video_frames_sent
                for packet in encoder.encode(frame):
                    data = bytes(packet)
                    for start in range(0, len(data), VIDEO_CHUNK):
                        self.sock.sendto(data[start:start + VIDEO_CHUNK], (self.client[0], self.client_video_port))
                self.video_frames_sent += 1
        finally:
            self.vehicle.release_camera()

    def _encoder_for(self, av, rgb):
        """libx264 in a Tello-like configuration: Annex-B, low latency, a keyframe with SPS/PPS every second."""
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = rgb.shape[1], rgb.shape[0]
        encoder.pix_fmt = "yuv420p"
        rate = round(1.0 / self.video_period)
        encoder.time_base, encoder.framerate = Fraction(1, rate), Fraction(rate, 1)
        encoder.gop_size = rate
        encoder.options = {"preset": "ultrafast", "tune": "zerolatency"}
        encoder.open()
        return encoder
