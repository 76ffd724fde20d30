"""One side of the network-split test, run inside a network namespace (its DDS environment comes from the test):

  ground-fly      take off and land the robot across the link; prints a JSON line of the times taken
  ground-stream   take off, then stream zero-velocity operator commands at 20 Hz until stopped; prints STREAMING
  robot-observe   print every flight-mode change on the robot's side as "MODE <mode> <monotonic s>"
"""
from __future__ import annotations

import json
import os
import sys
import time

from geometry_msgs.msg import TwistStamped

from mmchat_ros.nodes.common import STATE_QOS
from mmchat_ros.msg import FlightState
from mmchat_ros.tools.flight_client import FlightClient
from mmchat_ros.tools.ros_client import RosClient

STREAM_RATE_HZ = 20.0


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


def robot_observe(ros: RosClient) -> None:
    last = None

    def on_state(state: FlightState) -> None:
        nonlocal last
        if state.mode != last:
            last = state.mode
            print(f"MODE {state.mode} {time.monotonic():.3f}", flush=True)

    ros.node.create_subscription(FlightState, "/flight/state", on_state, STATE_QOS)
    while True:
        time.sleep(1.0)


ROLES = {"ground-fly": ground_fly, "ground-stream": ground_stream, "robot-observe": robot_observe}


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
