"""`mmchat demo`: the simulated drone takes off, hovers, flies a 2 m square leg and a turn, and lands.

It starts the `sim` mode of the graph (sim + flight controller, real processes over DDS, on a ROS domain of its
own so it never meets another graph), flies through the flight controller's services and plan action, prints
what happens, and stops every process. Exit status 0 only if every step happened as commanded.
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
import time

from mmchat_ros.core.geometry import heading_to_world
from mmchat_ros.core.launch_graph import load_graph
from mmchat_ros.core.rosenv import ros_environment


DEMO_NODES = ("sim", "flight_controller")


def run(airframe: str = "x500") -> int:
    from mmchat_ros.msg import PlanAction
    from mmchat_ros.tools.flight_client import FlightClient, action, yaw_of
    from mmchat_ros.tools.launcher import Launcher
    from mmchat_ros.tools.ros_client import RosClient

    domain = 200 + os.getpid() % 30
    log_dir = tempfile.mkdtemp(prefix="mmchat-demo-")
    # The flight part of the graph: the perception and speech nodes have nothing to do in this scripted flight.
    specs = [s for s in load_graph().resolve("sim", {"airframe": airframe}) if s.name in DEMO_NODES]
    launcher = Launcher(specs, log_dir=log_dir, env=ros_environment(domain_id=domain), out=open(os.devnull, "w"))
    print(f"[demo] starting {', '.join(s.name for s in specs)} (ROS_DOMAIN_ID={domain}, logs in {log_dir})", flush=True)
    launcher.start()
    ros = None
    try:
        ros = RosClient(domain, "mmchat_demo")
        flight = FlightClient(ros)
        say = lambda text: print(f"[demo] {text}; position {tuple(round(v, 2) for v in flight.position())}, "  # noqa: E731
                                 f"mode {flight.mode()}", flush=True)
        say("vehicle on the ground")
        flight.take_off_and_settle(1.5)
        say("took off to 1.5 m")
        time.sleep(2.0)
        start = flight.position()
        heading = yaw_of(flight.odom[-1][1])
        result, _ = flight.execute([action(PlanAction.MOVE_BY, x=2.0), action(PlanAction.ROTATE, yaw_deg=90.0),
                                    action(PlanAction.MOVE_BY, x=1.0)])
        if not result.success:
            raise RuntimeError(f"plan failed: {result.message}")
        end = flight.position()
        dx, dy = heading_to_world((2.0, 1.0), heading)     # 2 m forward, then 1 m left
        error = math.dist(end[:2], (start[0] + dx, start[1] + dy))
        say(f"flew 2 m forward, turned left 90 deg, flew 1 m (ended {error:.2f} m from the target)")
        flight.land_and_wait()
        say("landed, motors off")
        if error > 0.3:
            raise RuntimeError(f"ended {error:.2f} m from where the plan should have put it")
        print("[demo] success", flush=True)
        return 0
    except Exception as exc:
        print(f"[demo] FAILED: {type(exc).__name__}: {exc} (node logs in {log_dir})", file=sys.stderr, flush=True)
        return 1
    finally:
        if ros is not None:
            ros.close()
        launcher.stop()
