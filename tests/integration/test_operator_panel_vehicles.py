"""The operator_panel node with two vehicles (vehicles:=[drone1, drone2]) as a real process: it lists them with
their flight modes, shows the selected one's flight state and camera, presses Land on the selected one alone,
addresses typed commands that name no vehicle to it, and switches when asked (every open page follows)."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from mmchat_ros.msg import FlightState
from mmchat_ros.nodes.common import SENSOR_QOS, STATE_QOS
from mmchat_ros.nodes.image_conversion import numpy_to_image
from mmchat_ros.srv import SubmitCommand
from tests.helpers.processes import python_cmd
from tests.integration.test_operator_panel_http import read_events, request

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}
MODES = {"drone1": "HOVER", "drone2": "LANDED"}
CAMERA_WIDTH = {"drone1": 64, "drone2": 32}     # tells whose frame the page was sent


@pytest.fixture
def panel(spawn):
    node = spawn(python_cmd("mmchat_ros.nodes.operator_panel", "--ros-args", "-p", "port:=0",
                            "-p", "service_timeout_s:=2.0", "-p", "vehicles:=[drone1,drone2]"),
                 name="operator_panel")
    url = node.wait_for_line(r"operator panel at (http://127\.0\.0\.1:\d+/)", timeout=60).group(1)
    return node, url


@pytest.fixture
def vehicles(ros):
    """Each vehicle's flight state and camera at 5 Hz, and its land service; the ground's submit_command.
    Yields what the services were asked: (vehicle, 'land') and ('planner', text)."""
    calls: list[tuple[str, str]] = []
    stop = threading.Event()
    publishers = []
    for vehicle in MODES:
        def land(_request, response, vehicle=vehicle):
            calls.append((vehicle, "land"))
            response.success, response.message = True, f"{vehicle} landing"
            return response
        ros.node.create_service(Trigger, f"/{vehicle}/land", land)
        publishers.append((vehicle, ros.node.create_publisher(FlightState, f"/{vehicle}/flight/state", STATE_QOS),
                           ros.node.create_publisher(Image, f"/{vehicle}/camera/image_raw", SENSOR_QOS)))

    def submit(request_, response):
        calls.append(("planner", request_.text))
        response.accepted, response.reply = True, "ok"
        return response
    ros.node.create_service(SubmitCommand, "/submit_command", submit)

    def publish():
        while not stop.is_set():
            for vehicle, state_pub, image_pub in publishers:
                state_pub.publish(FlightState(mode=MODES[vehicle], battery_percentage=0.5))
                width = CAMERA_WIDTH[vehicle]
                image_pub.publish(numpy_to_image(np.zeros((width * 3 // 4, width, 3), np.uint8), "rgb8"))
            stop.wait(0.2)
    threading.Thread(target=publish, daemon=True).start()
    yield calls
    stop.set()


def test_the_panel_lists_switches_and_commands_the_selected_vehicle(panel, vehicles):
    node, url = panel
    listed = lambda ev: [d for n, d in ev if n == "vehicles" and all(v["mode"] != "unknown" for v in d["vehicles"])]
    events = read_events(url + "events", lambda ev: listed(ev) and any(n == "flight" for n, _ in ev)
                         and any(n == "frame" for n, _ in ev))
    assert listed(events)[-1] == {"selected": "drone1", "vehicles": [{"name": "drone1", "mode": "HOVER"},
                                                                      {"name": "drone2", "mode": "LANDED"}]}
    assert all(d["mode"] == "HOVER" for n, d in events if n == "flight")
    assert all(d["width"] == CAMERA_WIDTH["drone1"] for n, d in events if n == "frame")

    status, _, body = request(url + "api/land", {}, JSON)
    assert status == 200 and json.loads(body) == {"success": True, "message": "drone1 landing"}
    request(url + "api/command", {"text": "take off"}, JSON)
    request(url + "api/command", {"text": "drone two, go up one metre"}, JSON)
    assert vehicles == [("drone1", "land"), ("planner", "drone1: take off"), ("planner", "drone two, go up one metre")]

    # switching: a page that is open follows, and from then on sees drone2's state and camera alone
    switched = threading.Event()
    stream: list = []

    def watch():
        stream.extend(read_events(url + "events", lambda ev: switched.is_set() and sum(
            n == "frame" and d["width"] == CAMERA_WIDTH["drone2"] for n, d in ev) >= 3))
    watcher = threading.Thread(target=watch)
    watcher.start()
    status, _, body = request(url + "api/vehicle", {"name": "drone2"}, JSON)
    switched.set()
    watcher.join(30)
    assert status == 200 and json.loads(body)["success"]
    names = [n for n, _ in stream]
    selection = next(i for i, (n, d) in enumerate(stream) if n == "vehicles" and d["selected"] == "drone2")
    after = stream[selection + 1:]
    first_drone2_frame = next(i for i, (n, d) in enumerate(after) if n == "frame")
    assert all(d["width"] == CAMERA_WIDTH["drone2"] for n, d in after[first_drone2_frame:] if n == "frame"), names
    assert all(d["mode"] == "LANDED" for n, d in after if n == "flight")
    assert json.loads(request(url + "api/vehicles")[2])["selected"] == "drone2"
    assert json.loads(request(url + "api/state")[2])["flight"]["mode"] == "LANDED"

    vehicles.clear()
    request(url + "api/land", {}, JSON)
    request(url + "api/command", {"text": "take off"}, JSON)
    assert vehicles == [("drone2", "land"), ("planner", "drone2: take off")]

    status, _, body = request(url + "api/vehicle", {"name": "drone3"}, JSON)
    assert status == 400 and "drone3" in json.loads(body)["message"]
    assert json.loads(request(url + "api/vehicles")[2])["selected"] == "drone2" and node.alive()


def test_the_page_lists_the_vehicles_and_a_click_switches(panel, vehicles, tmp_path):
    """The same panel in a real browser (Debian's Chromium through Playwright, as tests/sim/test_operator_panel_
    browser.py): the vehicles card shows both with their modes, a click on drone2 switches the flight card."""
    import os
    playwright_api = pytest.importorskip("playwright.sync_api")
    from tests.sim.test_operator_panel_browser import CHROMIUM, CHROMIUM_ARGS, artifacts_dir, wait_for_text
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} missing (Debian package chromium)")
    _, url = panel
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                        headless=True, args=CHROMIUM_ARGS,
                                                        viewport={"width": 1280, "height": 900})
        try:
            page = browser.new_page()
            console_errors = []
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            wait_for_text(page, "vehicles", "drone1 · HOVER.*drone2 · LANDED", 20)
            assert page.locator("#vehicles-card").is_visible()
            assert page.locator(".vehicle.selected").inner_text() == "drone1 · HOVER"
            assert wait_for_text(page, "mode", "^HOVER$", 10) == "HOVER"
            page.get_by_text("drone2 · LANDED").click()
            wait_for_text(page, "flight-vehicle", "^· drone2$", 10)     # the card's title (shown upper-case)
            assert wait_for_text(page, "mode", "^LANDED$", 10) == "LANDED"
            assert page.locator(".vehicle.selected").inner_text() == "drone2 · LANDED"
            screenshot = artifacts_dir(tmp_path) / "operator_panel_two_vehicles.png"
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"\n[artifact] operator panel with two vehicles, drone2 selected: {screenshot}")
        finally:
            browser.close()
    assert not console_errors, f"console errors: {console_errors}"
