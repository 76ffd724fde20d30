"""Follow-me in the loop: the real sim (sim/worlds/follow.yaml: a billboard with a real pedestrian photo walking a
loop), flight controller, tracker (OpenCV HOG + ultralytics ByteTrack on the rendered onboard camera) and follow
processes over DDS. The drone must keep the walking pedestrian ahead of it, asserted on odometry against the
simulator's ground truth of where the pedestrian is."""
from __future__ import annotations

import math
import time

import pytest
from geometry_msgs.msg import PoseArray
from std_msgs.msg import String

from mmchat_ros.core.paths import share_dir
from mmchat_ros.msg import Detection, DetectionArray
from mmchat_ros.nodes.common import COMMAND_QOS
from tests.helpers.domains import unused_domain_id
from tests.helpers.flight import FlightClient, ros_args, start_stack, yaw_of
from tests.helpers.processes import python_cmd

pytestmark = [pytest.mark.slow, pytest.mark.sim]


@pytest.fixture
def domain_id():
    """A domain nobody else on this machine uses: another run's detections, commands or odometry must not leak in."""
    return unused_domain_id()

WORLD = share_dir() / "sim" / "worlds" / "follow.yaml"
PEDESTRIAN_START = (3.0, 0.0)        # sim/worlds/follow.yaml: where its loop starts, walking away to the left
WALK_M = 3.5                         # follow while the pedestrian walks this far along its loop (sim time)


def horizontal(a, b):
    return math.hypot(a[0] - b[0], a[1] - b[1])


def bearing_error(odom, target) -> float:
    p = odom.pose.pose.position
    bearing = math.atan2(target[1] - p.y, target[0] - p.x)
    return abs(math.remainder(bearing - yaw_of(odom), math.tau))


def test_drone_follows_the_walking_pedestrian(spawn, ros, ros_env, tmp_path):
    # Half real time on sim time: the flight controller steps once per odometry message, so a CPU shared with a
    # camera renderer and a detector cannot starve its loop, and the 2-core machine gets twice the slack.
    processes = start_stack(ros_env, tmp_path,
                            sim_params={"camera_enabled": True, "camera_rate_hz": 6.0, "world_file": str(WORLD),
                                        "real_time_factor": 0.5, "stamp_with_sim_time": True},
                            fc_params={"hover_land_timeout_s": 0.0, "use_sim_time": True})
    try:
        tracker = spawn(python_cmd("mmchat_ros.nodes.tracker", *ros_args(
            {"detector": "hog", "hog_upscale": 1.25, "hog_scale": 1.1, "frame_rate": 4.0, "max_rate_hz": 4.0,
             "publish_debug_image": False})), name="tracker")
        follow = spawn(python_cmd("mmchat_ros.nodes.follow", *ros_args(
            {"target_height": 0.6, "forward_gain": 2.5, "max_forward_mps": 0.8, "vertical_gain": 0.5,
             "max_vertical_mps": 0.3, "max_yaw_rate_deg_s": 30.0,
             # the controller runs on sim time and refuses commands stamped on another clock (command_max_age_s)
             "use_sim_time": True})), name="follow")
        tracker.wait_for_line("tracker ready", timeout=120)
        follow.wait_for_line("follow ready", timeout=30)
        flight = FlightClient(ros)
        pedestrian = ros.collect(PoseArray, "/sim/targets", "sensor")
        detections = ros.collect(DetectionArray, "/detections", "sensor")
        speech = ros.collect(String, "/tts/say", COMMAND_QOS)
        target_pub = ros.node.create_publisher(Detection, "/follow/target", COMMAND_QOS)
        ros.wait_for_subscribers(target_pub)

        flight.take_off_and_settle()

        def where():
            p = pedestrian[-1][1].poses[0].position
            return p.x, p.y
        # Start as a person would: when the pedestrian is in front of the drone, setting off (its loop passes
        # its start once every ~30 s of sim time).
        ros.wait_for(lambda: pedestrian and horizontal(where(), PEDESTRIAN_START) < 0.3, 90,
                     "the pedestrian back at the start of its loop")
        ros.wait_for(lambda: any(d.track_id >= 0 for _, m in detections[-5:] for d in m.detections), 20,
                     "the tracker to see the pedestrian")
        start = flight.position()
        t0 = time.monotonic()
        target_pub.publish(Detection(class_name="person", track_id=-1))       # what the planner sends
        follow.wait_for_line(r"acquired person \d+", timeout=10)
        trace = []                 # what the drone and the tracker did, twice a second, for failure messages
        walked = 0.0
        while walked < WALK_M and time.monotonic() < t0 + 90.0:    # ~2.3 s of wall time per sim second
            odom = flight.odom[-1][1]
            p = odom.pose.pose.position
            seen = [(d.track_id, round(d.center_x), round(d.center_y), round(d.height))
                    for d in detections[-1][1].detections]
            trace.append(((p.x, p.y, p.z), yaw_of(odom), where(), seen))
            walked = sum(math.dist(a[2], b[2]) for a, b in zip(trace, trace[1:]))
            time.sleep(0.5)
        log = "\n".join(f"drone ({x:.2f}, {y:.2f}, {z:.2f}) yaw {math.degrees(yaw):4.0f} deg, pedestrian "
                        f"({px:.2f}, {py:.2f}), tracks (id, cx, cy, height px) {seen}"
                        for (x, y, z), yaw, (px, py), seen in trace) + "\n" + follow.output[-2000:]

        end, target_end = flight.position(), where()
        assert walked >= WALK_M, f"the pedestrian walked only {walked:.1f} m in 90 s (sim too slow?)\n{log}"
        moved = horizontal(end, start)
        assert moved > 2.0, f"the drone moved {moved:.2f} m while the pedestrian walked {walked:.1f} m\n{log}"
        assert end[0] - start[0] > 2.0, f"it did not follow forward, where the pedestrian went\n{log}"
        # Kept near the distance its apparent size stands for (~2.3 m; a P controller trails a walker a little
        # further), with the pedestrian ahead: judged over the last 4 s.
        window = flight.odom_since(time.monotonic() - 4.0)
        distances = [horizontal((m.pose.pose.position.x, m.pose.pose.position.y), target_end) for m in window]
        assert 1.6 < min(distances) and max(distances) < 4.0, f"{min(distances):.2f}..{max(distances):.2f} m\n{log}"
        worst_bearing = max(bearing_error(m, target_end) for m in window)
        assert worst_bearing < math.radians(30), f"pedestrian {math.degrees(worst_bearing):.0f} deg off the nose\n{log}"
        assert any(s.active_source == "follow" for t, s in flight.states if t >= t0)
        assert not any(m.data == "I lost the target." for _, m in speech), log
        assert flight.mode() in ("VELOCITY", "HOVER")
    finally:
        for proc in processes:
            proc.stop()
