"""The operator_panel node as a real process, over plain HTTP: it serves its own page (nothing from elsewhere),
streams state as Server-Sent Events, answers bad requests with clear errors and keeps running, and reports a
missing flight controller instead of hanging."""
from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request

import pytest

from mmchat_ros.msg import FlightState
from mmchat_ros.nodes.common import STATE_QOS
from tests.helpers.flight import ros_args
from tests.helpers.processes import python_cmd

pytestmark = pytest.mark.slow


def request(url: str, body=None, headers=None, timeout: float = 15.0) -> tuple[int, str, bytes]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), error.read()


def read_events(url: str, until, timeout: float = 20.0) -> list[tuple[str, dict]]:
    """Server-Sent Events from url until ``until(events)``."""
    events: list[tuple[str, dict]] = []
    with urllib.request.urlopen(url, timeout=timeout) as stream:
        name = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
                if until(events):
                    break
    return events


@pytest.fixture
def panel(spawn):
    node = spawn(python_cmd("mmchat_ros.nodes.operator_panel", *ros_args({"port": 0, "service_timeout_s": 2.0})),
                 name="operator_panel")
    url = node.wait_for_line(r"operator panel at (http://127\.0\.0\.1:\d+/)", timeout=60).group(1)
    return node, url


def test_panel_serves_its_page_and_streams_state(panel, ros):
    node, url = panel
    status, kind, page = request(url)
    assert status == 200 and kind == "text/html"
    html = page.decode()
    assert 'id="land"' in html and 'id="estop"' in html and 'id="command-text"' in html
    # Everything the page loads comes from the panel itself: no scheme-qualified or protocol-relative URLs.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    for name, content_type in (("panel.js", "text/javascript"), ("panel.css", "text/css")):
        status, kind, body = request(url + name)
        assert status == 200 and kind == content_type and b"http://" not in body and b"https://" not in body
    assert request(url + "../setup.py")[0] == 404

    state_pub = ros.node.create_publisher(FlightState, "/flight/state", STATE_QOS)
    stop = threading.Event()

    def publish():
        while not stop.is_set():
            state = FlightState(mode="HOVER", armed=True, battery_percentage=float("nan"))
            state.pose.position.z = 1.5
            state_pub.publish(state)
            stop.wait(0.2)
    threading.Thread(target=publish, daemon=True).start()
    try:
        events = read_events(url + "events", lambda ev: any(name == "flight" for name, _ in ev))
    finally:
        stop.set()
    assert events[0][0] == "snapshot" and set(events[0][1]) == {"flight", "auth", "log"}
    flight = next(data for name, data in events if name == "flight")
    assert flight["mode"] == "HOVER" and flight["altitude"] == 1.5 and flight["battery"] is None
    status, _, body = request(url + "api/state")
    assert status == 200 and json.loads(body)["flight"]["mode"] == "HOVER"


def test_bad_requests_get_clear_errors_and_the_panel_keeps_running(panel):
    node, url = panel
    json_header = {"Content-Type": "application/json"}
    status, _, body = request(url + "api/command", {"text": "   "}, json_header)
    assert status == 400 and json.loads(body)["reply"] == "the command is empty"
    status, _, body = request(url + "api/command", b"{not json", json_header)
    assert status == 400 and "not JSON" in json.loads(body)["error"]
    status, _, body = request(url + "api/land", b"text=1", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415, "a plain HTML form from another site cannot press Land"
    status, _, _ = request(url + "api/land", {}, {**json_header, "Origin": "http://evil.example"})
    assert status == 403
    assert request(url + "api/fly_away", {}, json_header)[0] == 404
    # No flight controller in this graph: the button says so within the service timeout instead of hanging.
    status, _, body = request(url + "api/land", {}, json_header)
    result = json.loads(body)
    assert status == 200 and result["success"] is False and "not available" in result["message"]
    assert request(url)[0] == 200 and node.alive()
