"""`mmchat`: launch the graph and inspect it on machines without ros2cli.

  mmchat launch MODE [name:=value ...]    start every node of MODE (sim, gazebo, hardware);
                                           part:=robot|ground starts one machine's share (docs/deployment.md)
  mmchat dds-profile --address A --peer B  a Fast DDS profile for a robot / ground split over a network
  mmchat topic list [-t] | echo TOPIC | hz TOPIC | pub TOPIC TYPE [YAML]
  mmchat node list
  mmchat service call NAME [REQUEST_YAML]
  mmchat param list|get|set|dump NODE ...  a running node's parameters (live ones can be set)
  mmchat lifecycle NODE get|set T|list     a lifecycle node's state (tracker, gesture, face_auth, asr, tts, drivers)
  mmchat doctor                            check the installation
  mmchat operators enroll|list|delete      manage the operators allowed to fly
  mmchat record | play | view | panel      record/replay bags, Foxglove live view, the operator web panel
  mmchat demo                              fly the simulated drone: take off, hover, land
"""
from __future__ import annotations

import argparse
import sys


def _launch(args) -> int:
    from mmchat_ros.core.launch_graph import GraphError, load_graph
    from mmchat_ros.tools.launcher import Launcher
    try:
        launch_args = {}
        for item in args.arguments:
            if ":=" not in item:
                raise GraphError(f"launch argument '{item}' is not of the form name:=value")
            key, value = item.split(":=", 1)
            launch_args[key] = value
        graph = load_graph(args.graph)
        specs = graph.resolve(args.mode, launch_args)
    except (GraphError, FileNotFoundError) as exc:
        print(f"mmchat launch: {exc}", file=sys.stderr)
        return 2
    if not specs:
        print(f"mmchat launch: mode '{args.mode}' has no nodes", file=sys.stderr)
        return 2
    return Launcher(specs, log_dir=args.log_dir).run(duration_s=args.duration)


def _dds_profile(args) -> int:
    from mmchat_ros.core.rosenv import network_profile
    print(network_profile(args.address, args.peer, shared_memory=not args.no_shared_memory), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmchat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    launch = sub.add_parser("launch", help="start every node of a mode as its own process")
    launch.add_argument("mode", help="sim, gazebo or hardware (see config/graph.yaml)")
    launch.add_argument("arguments", nargs="*", help="launch arguments, name:=value")
    launch.add_argument("--graph", help="graph file (default: config/graph.yaml)")
    launch.add_argument("--log-dir", help="where node logs go (default: a new temp dir)")
    launch.add_argument("--duration", type=float, help="stop after this many seconds")
    launch.set_defaults(func=_launch)

    dds = sub.add_parser("dds-profile", help="print a Fast DDS profile for a graph split over a network "
                                              "(docs/deployment.md)")
    dds.add_argument("--address", action="append", required=True,
                     help="this machine's address on the link (repeat; add 127.0.0.1 where several nodes run here)")
    dds.add_argument("--peer", action="append", required=True,
                     help="address to discover participants at: the other machine (repeat; add 127.0.0.1 here too)")
    dds.add_argument("--no-shared-memory", action="store_true",
                     help="UDP only (a machine running a single participant)")
    dds.set_defaults(func=_dds_profile)

    topic = sub.add_parser("topic", help="list, echo or measure topics")
    topic_sub = topic.add_subparsers(dest="topic_command", required=True)
    t_list = topic_sub.add_parser("list")
    t_list.add_argument("-t", "--show-types", action="store_true")
    t_list.add_argument("--wait", type=float, default=3.0, help="discovery time, seconds")
    t_list.set_defaults(func=lambda a: _introspect().topic_list(a.show_types, a.wait))
    t_echo = topic_sub.add_parser("echo")
    t_echo.add_argument("topic")
    t_echo.add_argument("--count", "-n", type=int, default=0, help="exit after N messages")
    t_echo.add_argument("--type", help="message type, e.g. nav_msgs/msg/Odometry (default: discovered)")
    t_echo.add_argument("--timeout", type=float, default=0.0, help="give up after this many seconds")
    t_echo.set_defaults(func=lambda a: _introspect().topic_echo(a.topic, a.count, a.type, a.timeout))
    t_hz = topic_sub.add_parser("hz")
    t_hz.add_argument("topic")
    t_hz.add_argument("--window", type=int, default=100)
    t_hz.add_argument("--duration", type=float, default=0.0, help="exit after this many seconds")
    t_hz.add_argument("--type")
    t_hz.set_defaults(func=lambda a: _introspect().topic_hz(a.topic, a.window, a.duration, a.type))
    t_pub = topic_sub.add_parser("pub", help="publish a message (as ros2 topic pub)")
    t_pub.add_argument("topic")
    t_pub.add_argument("type", help="message type, e.g. std_msgs/msg/String")
    t_pub.add_argument("values", nargs="?", default="", help="fields as YAML, e.g. \"{data: 'hello'}\"")
    t_pub.add_argument("--times", type=int, default=1, help="how many times (default once)")
    t_pub.add_argument("--rate", type=float, default=1.0, help="Hz between repeats")
    t_pub.add_argument("--wait", type=float, default=10.0, help="seconds to wait for a subscriber")
    t_pub.set_defaults(func=lambda a: _introspect().topic_pub(a.topic, a.type, a.values, a.times, a.rate, a.wait))

    node = sub.add_parser("node", help="list nodes")
    node_sub = node.add_subparsers(dest="node_command", required=True)
    n_list = node_sub.add_parser("list")
    n_list.add_argument("--wait", type=float, default=3.0)
    n_list.set_defaults(func=lambda a: _introspect().node_list(a.wait))

    service = sub.add_parser("service", help="call a service")
    service_sub = service.add_subparsers(dest="service_command", required=True)
    s_call = service_sub.add_parser("call")
    s_call.add_argument("name", help="e.g. /takeoff")
    s_call.add_argument("request", nargs="?", default="", help="request fields as YAML, e.g. \"{text: 'land'}\"")
    s_call.add_argument("--type", help="service type, e.g. std_srvs/srv/Trigger (default: discovered)")
    s_call.set_defaults(func=lambda a: _introspect().service_call(a.name, a.type, a.request))

    doctor = sub.add_parser("doctor", help="check the installation")
    doctor.set_defaults(func=lambda a: __import__("mmchat_ros.tools.doctor", fromlist=["run"]).run())

    from mmchat_ros.tools import lifecycle_cli, observe_cli, operators_cli, param_cli
    param_cli.add_subparser(sub)          # mmchat param list|get|set|dump
    lifecycle_cli.add_subparser(sub)      # mmchat lifecycle NODE get|set|list
    operators_cli.add_subparser(sub)      # mmchat operators enroll|list|delete
    observe_cli.add_subparsers(sub)       # mmchat record|play|view|panel

    demo = sub.add_parser("demo", help="fly the simulated drone: take off, fly a plan, land")
    demo.add_argument("--airframe", default="x500")
    demo.set_defaults(func=lambda a: __import__("mmchat_ros.tools.demo", fromlist=["run"]).run(a.airframe))
    return parser


def _introspect():
    from mmchat_ros.tools import introspect
    return introspect


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
