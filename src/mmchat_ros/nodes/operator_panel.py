"""operator_panel node: the operator's web page (camera with overlays, state, log, land / e-stop, commands).

The page shows the camera with overlays, auth and flight state and a log of transcripts, plans and replies, with
buttons for land and emergency stop and a text box for commands.

Serves the package's web/ files (index.html, panel.js, panel.css: no internet resources) and a Server-Sent
Events stream (/events) from the standard library's HTTP server, on loopback by default (parameters host, port).
The server's loop runs in a NodeThread (it blocks in accept, neither a queue nor a paced loop), each request in a
thread of the server's; when the node stops, the connections pages keep open are closed and every request thread
is waited for.
Camera frames (/camera/image_raw) go to open pages as JPEG at most max_frame_rate_hz, with the newest
/detections boxes and /gesture hand skeleton (drawn by the page) when their stamps are within overlay_max_age_s
of the frame's; /auth/state, /flight/state, /speech/transcript, /planner/plan and /tts/say as they come. The page's
buttons call /land and /emergency_stop (std_srvs/Trigger) and its text box /submit_command
(mmchat_ros/srv/SubmitCommand) through POST /api/land, /api/emergency_stop, /api/command {"text": ...};
GET /api/state is the current state as JSON. POSTs must be JSON from the panel's own origin (no cross-site posts).

Bound to anything but 127.0.0.1 / ::1 / localhost, every request and the event stream need the panel's token
(core/panel_security.py; `mmchat panel --show-token`); refused ones get a 401 with a page that says what to do.
With tls:=true it serves HTTPS with a self-signed certificate made once in the data directory.

Several vehicles (parameter ``vehicles``: their namespaces): the page lists them with their flight modes (GET
/api/vehicles) and switches between them (POST /api/vehicle {"name": ...}; every open page follows). The selected vehicle's
/<name>/flight/state, camera, detections and hand skeleton are shown, the land and emergency-stop buttons call its
/<name>/land and /<name>/emergency_stop, and a typed command that names no vehicle is sent addressed to it
("drone2: take off"; core/language/addressing.py). Authorisation, transcripts, plans and replies stay the ground's
(root names).
"""
from __future__ import annotations

import base64
import json
import socket
import ssl
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from mmchat_ros.core import topics
from mmchat_ros.core.language.addressing import VehicleAddressing
from mmchat_ros.core.overlays import LatestByStamp, build_overlay
from mmchat_ros.core.panel import (STATIC_FILES, WEB_DIR, EventFanout, PanelState, auth_summary,
                                   flight_summary, plan_text, sse_event, validate_command)
from mmchat_ros.core.panel_security import (PanelSecurityError, ensure_self_signed_cert,
                                            load_or_create_token, presented_token, refusal_page, session_cookie,
                                            token_matches, token_required)
from mmchat_ros.core.vehicle_names import for_vehicle, in_vehicle
from mmchat_ros.msg import ActionPlan, AuthState, DetectionArray, FlightState, Gesture, Transcript
from mmchat_ros.nodes.base import MmchatNode, NodeThread
from mmchat_ros.nodes.common import Param, run_node, stamp_to_seconds
from mmchat_ros.nodes.image_conversion import ImageConversionError, encode_image
from mmchat_ros.srv import SubmitCommand

KEEPALIVE_S = 10.0

PARAMS = {
    "host": Param("127.0.0.1", "address the panel listens on (loopback: this machine only; 0.0.0.0: every "
                               "interface, for a panel on another machine of a trusted network)"),
    "port": Param(8080, "TCP port of the panel (0: any free port, logged at start-up)"),
    "max_frame_rate_hz": Param(10.0, "camera frames sent to the page per second at most"),
    "jpeg_quality": Param(75, "JPEG quality of the camera frames, 1..100"),
    "overlay_max_age_s": Param(0.5, "draw detections and hand landmarks whose stamp is at most this far from the "
                                    "frame's, s"),
    "log_length": Param(50, "log entries (transcripts, plans, replies, button results) kept for a newly opened "
                            "page"),
    "service_timeout_s": Param(5.0, "give up on a land, emergency stop or command call after this long, s"),
    "token_file": Param("", "the access token needed on any address but 127.0.0.1/::1/localhost (made once, 0600; "
                            "`mmchat panel --show-token`); empty = $XDG_DATA_HOME/mmchat_ros/panel_token"),
    "tls": Param(False, "serve HTTPS with a self-signed certificate (made once, key 0600, in tls_dir)"),
    "vehicles": Param([""], "namespaces of the vehicles the panel lists and switches between (the selected one's "
                            "state, camera, land and emergency stop; typed commands that name no vehicle are "
                            "addressed to it); [''] = the one vehicle in the root namespace"),
    "tls_dir": Param("", "directory of panel_cert.pem / panel_key.pem for tls; empty = $XDG_DATA_HOME/mmchat_ros"),
}


class ServiceError(RuntimeError):
    """A call the panel could not complete (no server, timeout)."""


class OperatorPanelNode(MmchatNode):
    def __init__(self):
        super().__init__("operator_panel", PARAMS)
        if not 1 <= self.p.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality={self.p.jpeg_quality} is outside 1..100")
        if self.p.max_frame_rate_hz <= 0:
            raise ValueError(f"max_frame_rate_hz={self.p.max_frame_rate_hz} must be > 0")
        missing = [name for name, _ in STATIC_FILES.values() if not (WEB_DIR / name).is_file()]
        if missing:
            raise FileNotFoundError(f"the panel's web files are missing from {WEB_DIR}: {', '.join(missing)}")
        self.state = PanelState(self.p.log_length)
        self.fanout = EventFanout()
        self.detections = LatestByStamp(self.p.overlay_max_age_s)
        self.gesture = LatestByStamp(self.p.overlay_max_age_s)
        self.vehicles = list(self.p.vehicles or [""])
        self.addressing = VehicleAddressing([name for name in self.vehicles if name])
        self.selected = self.vehicles[0]
        self.flights: dict[str, dict] = {}     # each vehicle's newest flight summary
        self.last_frame_sent = 0.0
        self.frames_sent = 0
        self.bad_frames = 0
        self.call_lock = threading.Lock()     # one button/command call at a time, in order

        self.trigger_clients = {(vehicle, name): self.create_client(Trigger, in_vehicle(vehicle, name))
                                for vehicle in self.vehicles for name in ("land", "emergency_stop")}
        self.command_client = self.create_client(SubmitCommand, "submit_command")
        for vehicle in self.vehicles:
            self.subscribe_to(for_vehicle(vehicle, topics.CAMERA_IMAGE), Image,
                              self.while_selected(vehicle, self.on_image))
            self.subscribe_to(for_vehicle(vehicle, topics.DETECTIONS), DetectionArray,
                              self.while_selected(vehicle, self.on_detections))
            self.subscribe_to(for_vehicle(vehicle, topics.GESTURE), Gesture,
                              self.while_selected(vehicle, self.on_gesture))
            self.subscribe_to(for_vehicle(vehicle, topics.FLIGHT_STATE), FlightState,
                              lambda msg, v=vehicle: self.on_flight_state(v, msg))
        self.subscribe_to(topics.AUTH_STATE, AuthState, self.on_auth)
        self.subscribe_to(topics.TRANSCRIPT, Transcript, self.on_transcript)
        self.subscribe_to(topics.PLAN, ActionPlan, self.on_plan)
        self.subscribe_to(topics.SAY, String, self.on_say)

        self.token = None
        self.refused = 0
        if token_required(self.p.host):
            try:
                self.token, made = load_or_create_token(self.p.token_file or None)
            except (PanelSecurityError, OSError) as exc:
                raise RuntimeError(f"the panel listens on {self.p.host}, beyond this machine's loopback, and needs "
                                   f"its access token: {exc}") from exc
            self.get_logger().info(f"listening on {self.p.host}: every request needs the panel's access token "
                                   f"({'made now; ' if made else ''}`mmchat panel --show-token` shows it)")
        self.server = PanelServer((self.p.host, self.p.port), PanelRequestHandler)
        self.tls = bool(self.p.tls)
        if self.tls:
            cert, key, made = ensure_self_signed_cert(self.p.tls_dir or None, (self.p.host, "localhost"))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.get_logger().info(f"TLS with {'a new ' if made else ''}self-signed certificate {cert}")
        self.server.panel = self
        self.http = NodeThread(self, "http", lambda _stopping: self.server.serve_forever(poll_interval=0.2),
                               on_stop=self.server.stop_serving)
        self.start_worker(self.http)
        host, port = self.server.server_address[:2]
        self.url = f"{'https' if self.tls else 'http'}://{host}:{port}/"
        self.get_logger().info(f"operator panel at {self.url} (web files {WEB_DIR})")

    # ------------------------------------------------------------------------------------------------ inputs
    def while_selected(self, vehicle: str, handler):
        """A callback that hands ``vehicle``'s messages to ``handler`` while it is the selected vehicle."""
        def callback(msg) -> None:
            if vehicle == self.selected:
                handler(msg)
        return callback

    def on_image(self, msg: Image) -> None:
        now = time.monotonic()
        if self.fanout.clients == 0 or now - self.last_frame_sent < 1.0 / self.p.max_frame_rate_hz:
            return
        try:
            jpeg, width, height = encode_image(msg, "jpeg", self.p.jpeg_quality)
        except ImageConversionError as exc:
            self.bad_frames += 1
            self.get_logger().error(f"cannot show a camera frame: {exc}", throttle_duration_sec=5.0)
            return
        self.last_frame_sent = now
        stamp = stamp_to_seconds(msg.header.stamp)
        overlay = build_overlay(width, height, self.detections.fresh_for(stamp), self.gesture.fresh_for(stamp))
        self.frames_sent += 1
        self.fanout.publish(sse_event("frame", {"jpeg": base64.b64encode(jpeg).decode("ascii"), "width": width,
                                                "height": height, "stamp": stamp, "overlay": overlay.as_dict()}),
                            droppable=True)

    def on_detections(self, msg: DetectionArray) -> None:
        self.detections.update(msg, stamp_to_seconds(msg.header.stamp))

    def on_gesture(self, msg: Gesture) -> None:
        self.gesture.update(msg, stamp_to_seconds(msg.header.stamp))

    def on_flight_state(self, vehicle: str, msg: FlightState) -> None:
        summary = flight_summary(msg)
        mode_changed = self.flights.get(vehicle, {}).get("mode") != summary["mode"]
        self.flights[vehicle] = summary
        if mode_changed:
            self.fanout.publish(sse_event("vehicles", self.vehicle_list()))
        if vehicle == self.selected:
            self.state.set_flight(summary)
            self.fanout.publish(sse_event("flight", summary))

    def vehicle_list(self) -> dict:
        return {"selected": self.selected,
                "vehicles": [{"name": name, "mode": self.flights.get(name, {}).get("mode", "unknown")}
                             for name in self.vehicles]}

    def select(self, vehicle: str) -> dict:
        """Show and command ``vehicle`` from now on (from an HTTP thread)."""
        if vehicle not in self.vehicles:
            return {"success": False, "message": f"no vehicle '{vehicle}' (the panel lists {self.vehicles})"}
        if vehicle != self.selected:
            self.selected = vehicle
            # the other vehicle's overlays and state must not be drawn on this one's
            self.detections = LatestByStamp(self.p.overlay_max_age_s)
            self.gesture = LatestByStamp(self.p.overlay_max_age_s)
            self.state.set_flight(self.flights.get(vehicle))
            self.log_entry("operator", f"selected {vehicle}")
            self.fanout.publish(sse_event("vehicles", self.vehicle_list()))
            self.fanout.publish(sse_event("flight", self.flights.get(vehicle)))
        return {"success": True, "message": f"{vehicle} selected"}

    def on_auth(self, msg: AuthState) -> None:
        summary = auth_summary(msg)
        self.state.set_auth(summary)
        self.fanout.publish(sse_event("auth", summary))

    def log_entry(self, kind: str, text: str) -> None:
        self.fanout.publish(sse_event("log", self.state.add_log(kind, text)))

    def on_transcript(self, msg: Transcript) -> None:
        self.log_entry("heard", f"\"{msg.text}\" ({msg.confidence:.2f})")

    def on_plan(self, msg: ActionPlan) -> None:
        self.log_entry("plan", plan_text(msg))

    def on_say(self, msg: String) -> None:
        self.log_entry("reply", msg.data)

    # ---------------------------------------------------------------------------- calls (from HTTP threads)
    def call(self, client, request, what: str):
        """A service call made from an HTTP thread while the executor spins; ServiceError on no server or
        timeout."""
        timeout = self.p.service_timeout_s
        with self.call_lock:
            if not client.wait_for_service(timeout_sec=min(timeout, 2.0)):
                raise ServiceError(f"{client.srv_name} is not available: is the "
                                   f"{'planner' if what == 'command' else 'flight controller'} running?")
            future = client.call_async(request)
            done = threading.Event()
            future.add_done_callback(lambda _f: done.set())
            stopping, deadline = self.http.stopping, time.monotonic() + timeout
            while not done.wait(0.1):   # in slices: a panel that stops does not wait the timeout out
                if stopping.is_set() or time.monotonic() > deadline:
                    client.remove_pending_request(future)
                    raise ServiceError("the panel is stopping" if stopping.is_set() else
                                       f"{client.srv_name} did not answer within {timeout} s")
            return future.result()

    def trigger(self, name: str) -> dict:
        vehicle = self.selected
        client = self.trigger_clients[(vehicle, name)]
        try:
            response = self.call(client, Trigger.Request(), name)
            result = {"success": bool(response.success), "message": response.message}
        except ServiceError as exc:
            result = {"success": False, "message": str(exc)}
        label = name.replace("_", " ") + (f" {vehicle}" if vehicle else "")
        self.log_entry("operator", f"{label}: {'accepted' if result['success'] else 'refused: ' + result['message']}")
        (self.get_logger().info if result["success"] else self.get_logger().warn)(
            f"panel {label}: {result['message']}")
        return result

    def submit(self, text: str) -> dict:
        if self.selected and self.addressing.addressed(text) is None:
            text = f"{self.selected}: {text}"
        self.log_entry("typed", f"\"{text}\"")
        try:
            response = self.call(self.command_client, SubmitCommand.Request(text=text), "command")
            result = {"accepted": bool(response.accepted), "plan_id": response.plan_id, "reply": response.reply}
        except ServiceError as exc:
            result = {"accepted": False, "plan_id": "", "reply": str(exc)}
            self.log_entry("error", str(exc))
        self.get_logger().info(f"panel command \"{text}\": {'accepted' if result['accepted'] else 'not accepted'} "
                               f"({result['reply']})")
        return result

    def initial_events(self) -> list[bytes]:
        return [sse_event("snapshot", self.state.snapshot()), sse_event("vehicles", self.vehicle_list())]

    def close(self) -> None:
        self.server.server_close()   # waits for the request threads


class PanelServer(ThreadingHTTPServer):
    """The panel's HTTP server, whose request threads end with it: ``stop_serving`` ends its loop and closes the
    connections still open (an event stream, a browser's idle keep-alive connection, which would block a request
    thread in its read for ever), so that ``server_close`` can wait for every request thread."""

    panel: OperatorPanelNode
    daemon_threads = False   # ThreadingHTTPServer's daemon request threads are not waited for

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def stop_serving(self) -> None:
        self.shutdown()
        with self.connections_lock:
            open_connections = list(self.connections)
        for connection in open_connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass   # already closed by the client

    def handle_error(self, request, client_address):
        if not self.panel.http.stopping.is_set():   # while stopping, a request whose connection was closed
            super().handle_error(request, client_address)


class PanelRequestHandler(BaseHTTPRequestHandler):
    server_version = "mmchat-panel/1"
    protocol_version = "HTTP/1.1"

    @property
    def panel(self) -> OperatorPanelNode:
        return self.server.panel

    def log_message(self, format, *args):   # noqa: A002  (the stdlib's name) - requests go to the ROS log
        self.panel.get_logger().debug(f"{self.address_string()} {format % args}")

    def allowed(self) -> bool:
        """Token check (only when the panel listens beyond loopback): on failure the refusal is sent."""
        self.cookie = None
        token = self.panel.token
        if token is None:
            return True
        url = urlsplit(self.path)
        presented, where = presented_token(self.headers, url.query)
        if token_matches(token, presented):
            if where == "query":   # keep it in an HttpOnly cookie for the page's own requests and event stream
                self.cookie = session_cookie(token, self.panel.tls)
                if self.command == "GET" and url.path in STATIC_FILES:   # and off the address bar / history
                    rest = {k: v for k, v in parse_qs(url.query).items() if k != "token"}
                    self.send_response(HTTPStatus.SEE_OTHER)
                    self.send_header("Location", url.path + ("?" + urlencode(rest, doseq=True) if rest else ""))
                    self.send_header("Set-Cookie", self.cookie)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
            return True
        self.panel.refused += 1
        self.panel.get_logger().warning(f"refused {self.command} {url.path} from {self.client_address[0]}: "
                                        f"{'wrong' if presented else 'no'} access token",
                                        throttle_duration_sec=5.0)
        if url.path.startswith("/api/") or url.path == "/events" or self.command != "GET":
            body, content_type = json.dumps({"error": "this panel needs its access token (mmchat panel "
                                                      "--show-token)"}).encode(), "application/json"
        else:
            body, content_type = refusal_page(presented is not None), "text/html; charset=utf-8"
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", 'Bearer realm="mmchat panel"')
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)
        return False

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        if getattr(self, "cookie", None):
            self.send_header("Set-Cookie", self.cookie)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def reply_json(self, data, status: int = HTTPStatus.OK) -> None:
        self.reply(status, json.dumps(data).encode(), "application/json")

    def do_GET(self):  # noqa: N802  (http.server's name)
        if not self.allowed():
            return
        path = urlsplit(self.path).path
        if path in STATIC_FILES:
            name, content_type = STATIC_FILES[path]
            self.reply(HTTPStatus.OK, (WEB_DIR / name).read_bytes(), content_type)
        elif path == "/events":
            self.stream_events()
        elif path == "/api/state":
            self.reply_json(self.panel.state.snapshot())
        elif path == "/api/vehicles":
            self.reply_json(self.panel.vehicle_list())
        else:
            self.reply_json({"error": f"no such page: {path}"}, HTTPStatus.NOT_FOUND)

    def do_POST(self):  # noqa: N802
        if not self.allowed():
            return
        path = urlsplit(self.path).path
        origin = self.headers.get("Origin")
        if origin and urlsplit(origin).netloc != self.headers.get("Host"):
            self.reply_json({"error": "cross-origin requests are refused"}, HTTPStatus.FORBIDDEN)
            return
        if self.headers.get_content_type() != "application/json":
            self.reply_json({"error": "send JSON (Content-Type: application/json)"},
                            HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(min(length, 65536)) or b"{}") if length else {}
        except (ValueError, json.JSONDecodeError):
            self.reply_json({"error": "the request body is not JSON"}, HTTPStatus.BAD_REQUEST)
            return
        if path in ("/api/land", "/api/emergency_stop"):
            self.reply_json(self.panel.trigger(path.rsplit("/", 1)[1]))
        elif path == "/api/command":
            try:
                text = validate_command(body.get("text") if isinstance(body, dict) else None)
            except ValueError as exc:
                self.reply_json({"accepted": False, "plan_id": "", "reply": str(exc)}, HTTPStatus.BAD_REQUEST)
                return
            self.reply_json(self.panel.submit(text))
        elif path == "/api/vehicle":
            name = body.get("name") if isinstance(body, dict) else None
            result = self.panel.select(name) if isinstance(name, str) else {
                "success": False, "message": "send {\"name\": VEHICLE}"}
            self.reply_json(result, HTTPStatus.OK if result["success"] else HTTPStatus.BAD_REQUEST)
        else:
            self.reply_json({"error": f"no such action: {path}"}, HTTPStatus.NOT_FOUND)

    def stream_events(self) -> None:
        self.send_response(HTTPStatus.OK)
        if getattr(self, "cookie", None):
            self.send_header("Set-Cookie", self.cookie)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        events = self.panel.fanout.subscribe(self.panel.initial_events())
        try:
            last_write = time.monotonic()
            while not self.panel.http.stopping.is_set():
                try:
                    event = events.get(timeout=0.5)
                except Exception:   # queue.Empty: a comment line now and then keeps proxies from closing us
                    if time.monotonic() - last_write < KEEPALIVE_S:
                        continue
                    event = b": keepalive\n\n"
                self.wfile.write(event)
                self.wfile.flush()
                last_write = time.monotonic()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass     # the page was closed
        finally:
            self.panel.fanout.unsubscribe(events)


def main(args=None) -> int:
    return run_node(OperatorPanelNode, args)


if __name__ == "__main__":
    sys.exit(main())
