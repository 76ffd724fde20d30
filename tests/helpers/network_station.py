"""One side of the network-split test and of bench/network.py, run inside a network namespace (its DDS environment
comes from the test or bench):

  ground-fly      take off and land the robot across the link; prints a JSON line of the times taken
  ground-stream   take off, then stream zero-velocity operator commands at 20 Hz until stopped; prints STREAMING
  ground-station  a light ground station (flight state, compressed video, operator commands; no odometry) that
                  takes commands on stdin: 'takeoff' (prints "AIRBORNE <monotonic s>"), 'trials N' (N velocity
                  steps, alternately forward and back, each printed as "CMD <sign> <monotonic s>", then zero-velocity
                  commands streamed on; prints TRIALS_DONE), 'takeoff-once TAG' (one /takeoff call, printed as
                  "TAKEOFF TAG accepted|refused|unanswered: <reason>"), 'replay-auth' (publish again the last
                  /auth/state that crossed the link to the ground: a stale copy; prints "REPLAYED <counter>").
                  Every camera frame is printed as "FRAME <stamp-to-arrival ms> <bytes> <monotonic s>"
  robot-authorise KEY_DIR
                  face_auth's signed /auth/state without a face (the key pair in KEY_DIR, as in
                  tests/sim/test_auth_forgery_sim.py), on stdin: 'present' signs an authorised operator every
                  AUTH_PERIOD_S, valid AUTH_VALIDITY_S (face_auth's defaults), and prints the first claim of each
                  session as "AUTHORISED <session> <counter> <monotonic s>"; 'absent' stops signing (prints
                  "ABSENT <monotonic s>"): the last claim runs out at its expiry, as when face_auth no longer sees
                  the operator
  robot-chatter   publish a std_msgs/String on /link_check at 10 Hz (no simulator needed)
  ground-hear     print "HEARD <monotonic s>" on the first /link_check message, then exit
  robot-observe   print every flight-mode change on the robot's side as "MODE <mode> <monotonic s>"
  robot-motion    as robot-observe, and "MOVING <sign> <monotonic s>" when the odometry's forward speed passes
                  MOVING_SPEED_M_S forward (+1) or back (-1), "CLIMBING <monotonic s>" when its vertical speed
                  passes MOVING_SPEED_M_S up; "COMMAND <stamp-to-arrival ms> <monotonic s>" for
                  each operator velocity command, "SENT <bytes> <monotonic s>" for each compressed camera frame
                  the robot publishes (both subscribed as the flight controller and the ground subscribe them)

time.monotonic is one clock for every namespace of a machine, so the two sides' times compare directly.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time

from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import String
from std_srvs.srv import Trigger

from mmchat_ros.core import topics
from mmchat_ros.core.auth_signing import AuthClaim, AuthSigner, load_private_key
from mmchat_ros.msg import AuthState, FlightState
from mmchat_ros.nodes.auth_guard import auth_state_of
from mmchat_ros.nodes.common import STATE_QOS, stamp_to_seconds, topic_qos
from mmchat_ros.tools.flight_client import FlightClient
from mmchat_ros.tools.ros_client import RosClient

STREAM_RATE_HZ = 20.0
TRIAL_SPEED_M_S = 0.5
TRIAL_MOVE_S, TRIAL_REST_S = 1.5, 2.0
MOVING_SPEED_M_S = 0.1      # a step of TRIAL_SPEED_M_S has started to move the vehicle
RESTING_SPEED_M_S = 0.05    # below this the next crossing counts again
AUTH_PERIOD_S, AUTH_VALIDITY_S = 0.5, 2.0   # face_auth's state_period_s and signature_validity_s


def ground_fly(ros: RosClient) -> None:
    t0 = time.monotonic()
    flight = FlightClient(ros)
    discovered = time.monotonic()
    flight.take_off()
    flight.wait_mode("HOVER", timeout=40)
    airborne = time.monotonic()
    altitude = flight.position()[2]
    flight.land_and_wait()
    print(json.dumps({"discovery_s": discovered - t0, "takeoff_s": airborne - discovered,
                      "landing_s": time.monotonic() - airborne, "hover_altitude_m": altitude}), flush=True)


def ground_stream(ros: RosClient) -> None:
    flight = FlightClient(ros)
    publisher = ros.node.create_publisher(TwistStamped, "/cmd_vel/operator", 10)
    flight.take_off()
    flight.wait_mode("HOVER", timeout=40)
    announced = False
    while True:
        command = TwistStamped()
        command.header.stamp = ros.node.get_clock().now().to_msg()
        publisher.publish(command)
        if not announced and flight.mode() == "VELOCITY":
            print("STREAMING", flush=True)
            announced = True
        time.sleep(1.0 / STREAM_RATE_HZ)


class GroundStation:
    def __init__(self, ros: RosClient):
        self.ros = ros
        self.states = ros.collect(FlightState, topics.FLIGHT_STATE.name, topic_qos(topics.FLIGHT_STATE))
        ros.node.create_subscription(CompressedImage, topics.CAMERA_IMAGE_COMPRESSED.name, self.on_frame,
                                     topic_qos(topics.CAMERA_IMAGE_COMPRESSED))
        operator = topics.velocity_command("operator")
        self.command_pub = ros.node.create_publisher(TwistStamped, operator.name, topic_qos(operator))
        self.auth_copy: AuthState | None = None
        ros.node.create_subscription(AuthState, topics.AUTH_STATE.name, self.on_auth,
                                     topic_qos(topics.AUTH_STATE))
        self.auth_pub = ros.node.create_publisher(AuthState, topics.AUTH_STATE.name, topic_qos(topics.AUTH_STATE))
        self.forward_speed = 0.0
        self.streaming = False
        threading.Thread(target=self.stream, daemon=True).start()
        ros.wait_for(lambda: self.states, 120, "the robot's flight state across the link")

    def on_frame(self, msg: CompressedImage) -> None:
        latency_ms = 1000 * (self.ros.node.get_clock().now().nanoseconds * 1e-9 - stamp_to_seconds(msg.header.stamp))
        print(f"FRAME {latency_ms:.1f} {len(msg.data)} {time.monotonic():.3f}", flush=True)

    def on_auth(self, msg: AuthState) -> None:
        self.auth_copy = msg

    def replay_auth(self) -> None:
        if self.auth_copy is None:
            raise RuntimeError("no /auth/state reached the ground to replay")
        self.auth_pub.publish(self.auth_copy)
        print(f"REPLAYED {self.auth_copy.counter}", flush=True)

    def stream(self) -> None:
        while True:
            if self.streaming:
                command = TwistStamped()
                command.header.stamp = self.ros.node.get_clock().now().to_msg()
                command.twist.linear.x = self.forward_speed
                self.command_pub.publish(command)
            time.sleep(1.0 / STREAM_RATE_HZ)

    def take_off(self) -> None:
        deadline = time.monotonic() + 60.0
        while True:     # right after start-up the controller may lack fresh odometry: ask again for a while
            response = self.ros.call(Trigger, "/takeoff", Trigger.Request(), timeout=20)
            if response.success or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if not response.success:
            raise RuntimeError(f"take-off refused: {response.message}")
        # Zero-velocity commands streamed on (after 'trials') take it from HOVER to VELOCITY within a step.
        self.ros.wait_for(lambda: self.states[-1][1].mode in ("HOVER", "VELOCITY"), 60, "HOVER after take-off")
        print(f"AIRBORNE {time.monotonic():.3f}", flush=True)

    def take_off_once(self, tag: str) -> None:
        try:
            response = self.ros.call(Trigger, "/takeoff", Trigger.Request(), timeout=20)
        except TimeoutError as exc:
            print(f"TAKEOFF {tag} unanswered: {exc}", flush=True)
            return
        print(f"TAKEOFF {tag} {'accepted' if response.success else 'refused'}: {response.message}", flush=True)

    def trials(self, count: int) -> None:
        self.streaming = True
        for trial in range(count):
            sign = 1 if trial % 2 == 0 else -1
            print(f"CMD {sign} {time.monotonic():.3f}", flush=True)
            self.forward_speed = sign * TRIAL_SPEED_M_S
            time.sleep(TRIAL_MOVE_S)
            self.forward_speed = 0.0
            time.sleep(TRIAL_REST_S)
        print("TRIALS_DONE", flush=True)


def ground_station(ros: RosClient) -> None:
    station = GroundStation(ros)
    print("READY", flush=True)
    for line in sys.stdin:
        command, *args = line.split() or [""]
        if command == "takeoff":
            station.take_off()
        elif command == "trials":
            station.trials(int(args[0]))
        elif command == "takeoff-once":
            station.take_off_once(args[0])
        elif command == "replay-auth":
            station.replay_auth()


def robot_authorise(ros: RosClient) -> None:
    signer = AuthSigner(load_private_key(sys.argv[2]), AUTH_VALIDITY_S)
    publisher = ros.node.create_publisher(AuthState, topics.AUTH_STATE.name, topic_qos(topics.AUTH_STATE))
    lock = threading.Lock()             # 'absent' stops the signing at once, not after one more claim
    present = threading.Event()
    sessions = announced = 0

    def sign_while_present() -> None:
        nonlocal announced
        while present.wait():
            with lock:
                if present.is_set():
                    now_ns = ros.node.get_clock().now().nanoseconds
                    claim, signature = signer.sign(AuthClaim(True, "op-1", "test operator", 0.9, "face match"),
                                                   now_ns)
                    publisher.publish(auth_state_of(claim, signature))
                    if announced < sessions:
                        announced = sessions
                        print(f"AUTHORISED {sessions} {claim.counter} {time.monotonic():.3f}", flush=True)
            time.sleep(AUTH_PERIOD_S)

    threading.Thread(target=sign_while_present, daemon=True).start()
    for line in sys.stdin:
        with lock:
            if line.strip() == "present" and not present.is_set():
                sessions += 1
                present.set()
            elif line.strip() == "absent":
                present.clear()
                print(f"ABSENT {time.monotonic():.3f}", flush=True)


def robot_chatter(ros: RosClient) -> None:
    publisher = ros.node.create_publisher(String, "/link_check", 10)
    while True:
        publisher.publish(String(data="robot here"))
        time.sleep(0.1)


def ground_hear(ros: RosClient) -> None:
    heard = ros.collect(String, "/link_check", 10)
    ros.wait_for(lambda: heard, 120, "/link_check from the robot")
    print(f"HEARD {time.monotonic():.3f}", flush=True)


def print_mode_changes(ros: RosClient) -> None:
    last = None

    def on_state(state: FlightState) -> None:
        nonlocal last
        if state.mode != last:
            last = state.mode
            print(f"MODE {state.mode} {time.monotonic():.3f}", flush=True)

    ros.node.create_subscription(FlightState, "/flight/state", on_state, STATE_QOS)


def robot_observe(ros: RosClient) -> None:
    print_mode_changes(ros)
    while True:
        time.sleep(1.0)


def robot_motion(ros: RosClient) -> None:
    print_mode_changes(ros)
    armed = climb_armed = True

    def on_odometry(msg: Odometry) -> None:
        nonlocal armed, climb_armed
        forward, up = msg.twist.twist.linear.x, msg.twist.twist.linear.z
        if armed and abs(forward) > MOVING_SPEED_M_S:
            armed = False
            print(f"MOVING {1 if forward > 0 else -1} {time.monotonic():.3f}", flush=True)
        elif abs(forward) < RESTING_SPEED_M_S:
            armed = True
        if climb_armed and up > MOVING_SPEED_M_S:
            climb_armed = False
            print(f"CLIMBING {time.monotonic():.3f}", flush=True)
        elif abs(up) < RESTING_SPEED_M_S:
            climb_armed = True

    def on_command(msg: TwistStamped) -> None:
        latency_ms = 1000 * (ros.node.get_clock().now().nanoseconds * 1e-9 - stamp_to_seconds(msg.header.stamp))
        print(f"COMMAND {latency_ms:.1f} {time.monotonic():.3f}", flush=True)

    operator = topics.velocity_command("operator")
    ros.node.create_subscription(Odometry, topics.ODOM.name, on_odometry, topic_qos(topics.ODOM))
    ros.node.create_subscription(TwistStamped, operator.name, on_command, topic_qos(operator))
    ros.node.create_subscription(CompressedImage, topics.CAMERA_IMAGE_COMPRESSED.name,
                                 lambda msg: print(f"SENT {len(msg.data)} {time.monotonic():.3f}", flush=True),
                                 topic_qos(topics.CAMERA_IMAGE_COMPRESSED))
    while True:
        time.sleep(1.0)


ROLES = {"ground-fly": ground_fly, "ground-stream": ground_stream, "ground-station": ground_station,
         "ground-hear": ground_hear, "robot-authorise": robot_authorise, "robot-chatter": robot_chatter,
         "robot-observe": robot_observe, "robot-motion": robot_motion}


def main() -> int:
    ros = RosClient(int(os.environ["ROS_DOMAIN_ID"]), name=sys.argv[1].replace("-", "_"))
    try:
        ROLES[sys.argv[1]](ros)
    except KeyboardInterrupt:
        pass
    finally:
        ros.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
