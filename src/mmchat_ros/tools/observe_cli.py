"""The `mmchat` subcommands to see and replay what the robot sees and decides:

  mmchat record [TOPIC[:RATE] ...] [-o BAG]   record the graph to an MCAP ROS 2 bag (tools/recorder.py)
  mmchat play BAG [--rate R] [--loop]          replay a bag into the graph (tools/player.py)
  mmchat view [--host H] [--port P]            serve the graph to Foxglove (nodes/foxglove_bridge.py)
  mmchat panel [--host H] [--port P]           the operator's web panel (nodes/operator_panel.py)
  mmchat panel --show-token                    its access token (needed on any address but 127.0.0.1)

cli.py wires them in with ``observe_cli.add_subparsers(sub)``.
"""
from __future__ import annotations

import argparse


def _node_args(args: argparse.Namespace) -> list[str]:
    """--host/--port and name:=value overrides as the node's ROS arguments."""
    params = [f"host:={args.host}", f"port:={args.port}"] + list(args.parameters)
    bad = [p for p in params if ":=" not in p]
    if bad:
        raise SystemExit(f"mmchat {args.command}: parameters must be name:=value, got {', '.join(bad)}")
    ros_args = ["--ros-args"]
    for param in params:
        ros_args += ["-p", param]
    return [f"mmchat_{args.command}", *ros_args]


def _record(args) -> int:
    from mmchat_ros.tools import recorder
    return recorder.run(args)


def _play(args) -> int:
    from mmchat_ros.tools import player
    return player.run(args)


def _view(args) -> int:
    from mmchat_ros.nodes import foxglove_bridge     # logs the ws:// address to open in Foxglove
    return foxglove_bridge.main(_node_args(args))


def _panel(args) -> int:
    if args.show_token:
        import sys
        from mmchat_ros.core.panel_security import PanelSecurityError, load_or_create_token
        try:
            token, made = load_or_create_token(args.token_file or None)
        except (PanelSecurityError, OSError) as exc:
            print(f"mmchat panel: {exc}", file=sys.stderr)
            return 2
        print(token)
        print(f"{'made now; ' if made else ''}open the panel as http(s)://HOST:PORT/?token={token} (the page keeps it "
              "for the session)", file=sys.stderr)
        return 0
    from mmchat_ros.nodes import operator_panel      # logs the http:// address of the page
    return operator_panel.main(_node_args(args))


def _server_arguments(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="listen address (default loopback: this machine only; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=port, help=f"TCP port (default {port}; 0 = any free port)")
    parser.add_argument("parameters", nargs="*", metavar="name:=value", help="other node parameters")


def add_subparsers(subparsers) -> None:
    """Register record, play, view and panel on an argparse subparsers object (cli.py's ``sub``)."""
    from mmchat_ros.tools import player, recorder
    record = subparsers.add_parser("record", help="record topics to an MCAP ROS 2 bag",
                                   description=recorder.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    recorder.add_arguments(record)
    record.set_defaults(func=_record)

    play = subparsers.add_parser("play", help="replay a bag into the graph", description=player.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    player.add_arguments(play)
    play.set_defaults(func=_play)

    view = subparsers.add_parser("view", help="serve the graph to Foxglove (WebSocket)")
    _server_arguments(view, 8765)
    view.set_defaults(func=_view, command="view")

    panel = subparsers.add_parser("panel", help="the operator's web panel")
    _server_arguments(panel, 8080)
    panel.add_argument("--show-token", action="store_true", help="print the panel's access token (made once, 0600; "
                                                                 "needed when it listens beyond 127.0.0.1) and exit")
    panel.add_argument("--token-file", default="", help="token file (default: the data directory's panel_token)")
    panel.set_defaults(func=_panel, command="panel")


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m mmchat_ros.tools.observe_cli record ...`) until cli.py includes these."""
    parser = argparse.ArgumentParser(prog="mmchat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_subparsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    import sys
    sys.exit(main())
