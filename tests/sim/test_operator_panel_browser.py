"""The operator panel in a real browser (Debian's Chromium, headless, through Playwright) against the real graph:
simulator with its camera + flight controller + planner + operator_panel processes over DDS. The page loads,
shows live state, a command typed into its text box takes off, and its Land button lands the simulated drone.
Screenshots are written to $MMCHAT_ARTIFACTS (or the test's temp dir) and their paths printed."""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from geometry_msgs.msg import Point
from sensor_msgs.msg import Image

from mmchat_ros.core.paths import share_dir
from mmchat_ros.msg import AuthState, Detection, DetectionArray, Gesture
from mmchat_ros.nodes.common import COMMAND_QOS, SENSOR_QOS, STATE_QOS
from tests.helpers.flight import FlightClient, ros_args, start_stack
from tests.helpers.processes import python_cmd

pytestmark = [pytest.mark.slow, pytest.mark.sim]
playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
AIRBORNE_HOLD = ("HOVER", "POSITION")     # after a take-off plan the controller holds the take-off point
# Closed network here: no background requests, no first-run, no sandbox (containers), software rendering.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def measured_open_palm() -> list[Point]:
    """MediaPipe's landmarks of a real open-hand photo (tests/data/gestures), shrunk into the frame's right side."""
    data = json.loads((Path(__file__).parents[1] / "data" / "gestures" / "landmarks.json").read_text())
    hand = next(h for h in data["hands"] if h["gesture"] == "open_palm")
    return [Point(x=0.75 + 0.5 * (x - 0.5), y=0.5 + 0.5 * (y - 0.5), z=z) for x, y, z in hand["landmarks"]]


def artifacts_dir(tmp_path: Path) -> Path:
    path = Path(os.environ.get("MMCHAT_ARTIFACTS") or tmp_path / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def text_of(page, element_id: str) -> str:
    return page.locator(f"#{element_id}").inner_text()


def wait_for_text(page, element_id: str, pattern: str, timeout_s: float) -> str:
    """Until the element's text matches the regex (the page updates itself from the event stream)."""
    page.wait_for_function("([id, pattern]) => new RegExp(pattern).test(document.getElementById(id).textContent)",
                           arg=[element_id, pattern], timeout=timeout_s * 1000)
    return text_of(page, element_id)


@pytest.fixture
def panel_graph(spawn, ros, ros_env, tmp_path):
    """sim (camera on, the follow world: a pedestrian ahead) + flight controller + planner + operator panel."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} missing (Debian package chromium)")
    processes = start_stack(ros_env, tmp_path, sim_params={
        "camera_enabled": True, "camera_rate_hz": 5.0,
        "world_file": str(share_dir() / "sim" / "worlds" / "follow.yaml")})
    try:
        planner = spawn(python_cmd("mmchat_ros.nodes.planner", *ros_args(
            {"llm_backend": "none", "require_authorisation": False})), name="planner")
        panel = spawn(python_cmd("mmchat_ros.nodes.operator_panel", *ros_args({"port": 0})), name="operator_panel")
        url = panel.wait_for_line(r"operator panel at (http://127\.0\.0\.1:\d+/)", timeout=60).group(1)
        planner.wait_for_line("planner ready", timeout=60)
        yield FlightClient(ros), planner, panel, url
    finally:
        for proc in processes:
            proc.stop()


def test_panel_shows_live_state_takes_commands_and_lands_the_drone(panel_graph, ros, tmp_path):
    flight, planner, panel, url = panel_graph
    # Someone authorised (as face_auth would publish it), and the tracker's and gesture node's outputs for every
    # camera frame (test doubles echoing each frame's stamp, so the page has overlays to draw on the live camera).
    auth_pub = ros.node.create_publisher(AuthState, "/auth/state", STATE_QOS)
    auth_pub.publish(AuthState(authorised=True, operator_id="op-1", operator_name="Test Pilot", confidence=0.93,
                               reason="face match"))
    detections_pub = ros.node.create_publisher(DetectionArray, "/detections", SENSOR_QOS)
    gesture_pub = ros.node.create_publisher(Gesture, "/gesture", COMMAND_QOS)
    hand = measured_open_palm()

    def echo_perception(image: Image):
        detections_pub.publish(DetectionArray(
            header=image.header, image_width=image.width, image_height=image.height, detections=[
                Detection(class_id=0, class_name="person", score=0.88, center_x=image.width / 2.0,
                          center_y=image.height / 2.0, width=40.0, height=100.0, track_id=1)]))
        gesture_pub.publish(Gesture(header=image.header, name="open_palm", confidence=0.91, stable=True,
                                    handedness="left", num_hands=1, landmarks=hand))
    ros.node.create_subscription(Image, "/camera/image_raw", echo_perception, SENSOR_QOS)
    planner.wait_for_line("checking plans against the flight controller's envelope", timeout=30)
    artifacts = artifacts_dir(tmp_path)

    with playwright_api.sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="mmchat-chromium-") as profile:
        browser = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                        args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        try:
            page = browser.new_page()
            console_errors = []
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            failed_requests = []
            page.on("requestfailed", lambda r: failed_requests.append(r.url))
            page.goto(url)
            assert page.title() == "mmchat operator panel"
            wait_for_text(page, "connection", "^live$", 20)
            assert wait_for_text(page, "mode", "^LANDED$", 20) == "LANDED"
            assert wait_for_text(page, "auth-state", "Test Pilot", 20) == "authorised: Test Pilot"
            wait_for_text(page, "camera-caption", r"320×240 · 1 detection\(s\) · gesture open_palm 0\.91", 30)

            # Take off by typing into the command box: the planner plans it, the flight controller flies it.
            page.fill("#command-text", "take off")
            page.click("#command-send")
            assert "accepted" in wait_for_text(page, "command-result", "accepted|not accepted|failed", 30)
            ros.wait_for(lambda: flight.mode() in AIRBORNE_HOLD, 60, f"hover after take-off (now {flight.mode()})")
            flight.wait_altitude(1.5, 0.1, timeout=30)
            wait_for_text(page, "mode", "^(HOVER|POSITION)$", 10)
            shown = float(wait_for_text(page, "altitude", r"^1\.[3-6]\d$", 10))
            assert abs(shown - flight.position()[2]) < 0.1, "the page shows the odometry's altitude"
            log = text_of(page, "log")
            assert "take off" in log and "TAKEOFF" in log, log
            hover_png = artifacts / "operator_panel_hover.png"
            page.screenshot(path=str(hover_png), full_page=True)
            print(f"\n[artifact] operator panel screenshot (hovering): {hover_png}")

            page.click("#land")
            assert wait_for_text(page, "button-result", "land: ", 20) == "land: accepted"
            flight.wait_mode("LANDED", timeout=60)
            assert flight.position()[2] < 0.1
            wait_for_text(page, "mode", "^LANDED$", 10)
            assert float(text_of(page, "altitude")) < 0.15
            assert "land: accepted" in text_of(page, "log")
            landed_png = artifacts / "operator_panel_landed.png"
            page.screenshot(path=str(landed_png), full_page=True)
            print(f"[artifact] operator panel screenshot (landed): {landed_png}")
        finally:
            browser.close()
    assert hover_png.stat().st_size > 10_000 and landed_png.stat().st_size > 10_000
    assert not failed_requests, f"requests failed: {failed_requests}"
    assert not console_errors, f"console errors: {console_errors}"
    assert re.search(r"panel land: accepted", panel.output), panel.output[-2000:]
