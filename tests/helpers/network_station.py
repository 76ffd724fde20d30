"""One side of the network-split test and of bench/network.py, run inside a network namespace (its DDS environment
comes from the test or bench):

  ground-fly      take off and land the robot across the link; prints a JSON line of the times taken
  ground-stream   take off, then stream zero-velocity operator commands at 20 Hz until stopped; prints STREAMING
  ground-station  a light ground station (flight state, compressed video, operator commands; no odometry) that
                  takes commands on stdin: 'takeoff' (prints AIRBORNE), 'trials N' (N velocity steps, alternately
                  forward and back, each printed as "CMD <sign> <monotonic s>", then zero-velocity commands streamed
                  on; prints TRIALS_DONE). Every camera frame is printed as "FRAME <stamp-to-arrival ms> <bytes>
                  <monotonic s>"
  robot-chatter   publish a std_msgs/String on /link_check at 10 Hz (no simulator needed)
  ground-hear     print "HEARD <monotonic s>" on the first /link_check message, then exit
  robot-observe   print every flight-mode change on the robot's side as "MODE <mode> <monotonic s>"
  robot-motion    as robot-observe, and "MOVING <sign> <monotonic s>" when the odometry's forward speed passes
                  MOVING_SPEED_M_S forward (+1) or back (-1); "COMMAND <stamp-to-arrival ms> <monotonic s>" for
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
from mmchat_ros.nodes.common import STATE_QOS, stamp_to_seconds, topic_qos
from mmchat_ros.msg import FlightState
from mmchat_ros.tools.flight_client import FlightClient
from mmchat_ros.tools.ros_client import RosClient

STREAM_RATE_HZ = 20.0
TRIAL_SPEED_M_S = 0.5
TRIAL_MOVE_S, TRIAL_REST_S = 1.5, 2.0
MOVING_SPEED_M_S = 0.1      # a step of TRIAL_SPEED_M_S has started to move the vehicle
RESTING_SPEED_M_S = 0.05    # below this the next crossing counts again


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
        self.forward_speed = 0.0
        self.streaming = False
        threading.Thread(target=self.stream, daemon=True).start()
        ros.wait_for(lambda: self.states, 120, "the robot's flight state across the link")

    def on_frame(self, msg: CompressedImage) -> None:
        latency_ms = 1000 * (self.ros.node.get_clock().now().nanoseconds * 1e-9 - stamp_to_seconds(msg.header.stamp))
        print(f"FRAME {latency_ms:.1f} {len(msg.data)} {time.monotonic():.3f}", flush=True)

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
        self.ros.wait_for(lambda: self.states[-1][1].mode == "HOVER", 60, "HOVER after take-off")
        print(f"AIRBORNE {time.monotonic():.3f}", flush=True)

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
    armed = True

    def on_odometry(msg: Odometry) -> None:
        nonlocal armed
        forward = msg.twist.twist.linear.x
        if armed and abs(forward) > MOVING_SPEED_M_S:
            armed = False
            print(f"MOVING {1 if forward > 0 else -1} {time.monotonic():.3f}", flush=True)
        elif abs(forward) < RESTING_SPEED_M_S:
            armed = True

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
         "ground-hear": ground_hear, "robot-chatter": robot_chatter, "robot-observe": robot_observe,
         "robot-motion": robot_motion}


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
