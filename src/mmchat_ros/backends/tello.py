"""Tello SDK link over UDP: commands with their replies, the state stream and the H.264 video stream. No rclpy.

Why the documented text protocol directly and not djitellopy: djitellopy binds process-global sockets to the fixed
ports 8889/8890/11111 at import-time class level, keeps one module-wide response list, and retries failed commands
itself; a driver needs the ports and host as parameters (a protocol emulator on loopback uses other ports), one
command in flight with an explicit timeout, a link-loss signal and bad-packet reporting. The protocol is a handful
of text datagrams (core/tello_protocol.py), so owning it costs less than working around the library; the H.264
video is decoded with PyAV (FFmpeg), as djitellopy does.

Threads: one receiver per socket (command replies, state, video). ``request()`` sends a command and waits for its
reply (one in flight at a time); ``send()`` is fire-and-forget (``rc``). Bad datagrams go to ``on_bad_packet`` and
are otherwise ignored.
"""
from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable

import numpy as np

from mmchat_ros.core.tello_protocol import (MAX_DATAGRAM, TelloProtocolError, TelloResponse, TelloState,
                                            format_command, format_rc, parse_response, parse_state)
from mmchat_ros.core.vehicle_frames import TelloRc

VIDEO_DATAGRAM = 2048      # the Tello sends 1460-byte chunks of the H.264 byte stream


class H264StreamDecoder:
    """Annex-B H.264 byte stream in arbitrary chunks (UDP datagrams) → RGB frames, with PyAV (FFmpeg)."""

    def __init__(self):
        try:
            import av
        except ImportError as exc:
            raise RuntimeError("PyAV (pip package 'av') is needed to decode the Tello's H.264 video") from exc
        self._av = av
        self._codec = av.CodecContext.create("h264", "r")

    def feed(self, chunk: bytes, convert: bool = True) -> list[np.ndarray]:
        """Decode what the chunk completes. Every frame is decoded (P-frames need their predecessors); only
        ``convert`` ones are turned into RGB arrays. Raises ValueError on undecodable data."""
        frames = []
        try:
            for packet in self._codec.parse(chunk):
                for frame in self._codec.decode(packet):
                    if convert:
                        frames.append(frame.to_ndarray(format="rgb24"))
        except self._av.error.FFmpegError as exc:
            raise ValueError(f"H.264 decoding failed: {exc}") from exc
        return frames


class TelloLink:
    """UDP sockets to one Tello. Callbacks run in the receiver threads: keep them short."""

    def __init__(self, host: str, command_port: int, state_port: int, video_port: int,
                 on_state: Callable[[TelloState, float], None],
                 on_bad_packet: Callable[[str, str], None],
                 on_frame: Callable[[np.ndarray, float], None] | None = None,
                 local_command_port: int = 0, bind_host: str = "0.0.0.0", video_max_rate_hz: float = 15.0):
        self.address = (host, int(command_port))
        self.on_state = on_state
        self.on_bad_packet = on_bad_packet
        self.on_frame = on_frame
        self.video_min_period_s = 1.0 / video_max_rate_hz if video_max_rate_hz > 0 else 0.0
        self.last_state_time: float | None = None      # monotonic time of the latest valid state
        self.state_count = 0
        self.bad_packets = 0
        self._replies: queue.Queue[TelloResponse] = queue.Queue()
        self._request_lock = threading.Lock()
        self._awaiting: str | None = None               # the command whose reply request() is waiting for
        self._running = True
        self.command_socket = self._udp_socket(bind_host, local_command_port)
        self.state_socket = self._udp_socket(bind_host, state_port)
        self.video_socket = self._udp_socket(bind_host, video_port) if on_frame else None
        self.decoder = H264StreamDecoder() if on_frame else None
        self._threads = [threading.Thread(target=self._receive_replies, name="tello-replies", daemon=True),
                         threading.Thread(target=self._receive_state, name="tello-state", daemon=True)]
        if self.video_socket is not None:
            self._threads.append(threading.Thread(target=self._receive_video, name="tello-video", daemon=True))
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _udp_socket(host: str, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port)))
        except OSError as exc:
            sock.close()
            raise OSError(f"cannot bind UDP {host}:{port}: {exc.strerror}") from exc
        sock.settimeout(0.2)
        return sock

    @property
    def local_command_port(self) -> int:
        return self.command_socket.getsockname()[1]

    # ------------------------------------------------------------------------------------------ sending
    def send(self, name: str, *args: int) -> None:
        """A command that gets no reply (rc) or whose reply nobody waits for."""
        self._sendto(format_command(name, *args))

    def send_rc(self, rc: TelloRc) -> None:
        self._sendto(format_rc(rc))

    def request(self, name: str, *args: int, timeout: float = 7.0) -> TelloResponse | None:
        """Send a command and wait for its reply; None when none came within ``timeout``."""
        data = format_command(name, *args)
        with self._request_lock:
            while True:                     # a late reply to an earlier, timed-out command is not this one's
                try:
                    stale = self._replies.get_nowait()
                except queue.Empty:
                    break
                self._bad("reply", f"late reply {stale.text!r} dropped")
            self._awaiting = name
            self._sendto(data)
            try:
                return self._replies.get(timeout=timeout)
            except queue.Empty:
                return None
            finally:
                self._awaiting = None

    def _sendto(self, data: bytes) -> None:
        try:
            self.command_socket.sendto(data, self.address)
        except OSError as exc:              # no route (Wi-Fi down): the link supervision reports the loss
            self.on_bad_packet("send", f"sending {data[:20]!r} failed: {exc.strerror or exc}")

    # ----------------------------------------------------------------------------------------- receiving
    def _receive(self, sock: socket.socket, size: int) -> tuple[bytes, tuple] | None:
        try:
            return sock.recvfrom(size)
        except socket.timeout:
            return None
        except OSError:
            if self._running:
                time.sleep(0.1)
            return None

    def _from_tello(self, sender: tuple, kind: str, data: bytes) -> bool:
        if sender[0] != self.address[0] and self.address[0] not in ("0.0.0.0", ""):
            self._bad(kind, f"{len(data)} bytes from {sender[0]}:{sender[1]}, not the Tello at {self.address[0]}")
            return False
        return True

    def _bad(self, kind: str, detail: str) -> None:
        self.bad_packets += 1
        self.on_bad_packet(kind, detail)

    def _receive_replies(self) -> None:
        while self._running:
            got = self._receive(self.command_socket, MAX_DATAGRAM + 1)
            if got is None or not self._from_tello(got[1], "reply", got[0]):
                continue
            try:
                reply = parse_response(got[0])
            except TelloProtocolError as exc:
                self._bad("reply", str(exc))
                continue
            if self._awaiting is None:
                self._bad("reply", f"unrequested reply {reply.text[:40]!r}")
            else:
                self._replies.put(reply)

    def _receive_state(self) -> None:
        while self._running:
            got = self._receive(self.state_socket, MAX_DATAGRAM + 1)
            if got is None or not self._from_tello(got[1], "state", got[0]):
                continue
            try:
                state = parse_state(got[0])
            except TelloProtocolError as exc:
                self._bad("state", str(exc))
                continue
            now = time.monotonic()
            self.last_state_time = now
            self.state_count += 1
            try:
                self.on_state(state, now)
            except Exception as exc:  # noqa: BLE001 - a failing consumer must not kill the receiver
                self._bad("state", f"state handler failed: {type(exc).__name__}: {exc}")

    def _receive_video(self) -> None:
        last_frame = 0.0
        while self._running:
            got = self._receive(self.video_socket, VIDEO_DATAGRAM)
            if got is None or not self._from_tello(got[1], "video", got[0]):
                continue
            now = time.monotonic()
            convert = now - last_frame >= self.video_min_period_s
            try:
                frames = self.decoder.feed(got[0], convert=convert)
            except ValueError as exc:
                self._bad("video", str(exc))
                continue
            if frames:
                last_frame = now
                try:
                    self.on_frame(frames[-1], now)
                except Exception as exc:  # noqa: BLE001
                    self._bad("video", f"frame handler failed: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._running = False
        for thread in self._threads:
            thread.join(timeout=1.0)
        for sock in (self.command_socket, self.state_socket, self.video_socket):
            if sock is not None:
                sock.close()
