"""`mmchat play`: replay a bag into the running graph, at recorded speed or scaled, so any node can be re-run on
recorded data.

    mmchat play flight1                          every topic at recorded speed
    mmchat play flight1 --rate 0.5 --loop        half speed, again and again
    mmchat play flight1 --topics /camera/image_raw --wait-for /camera/image_raw
                                                 only the camera, once something subscribes to it (a perception
                                                 node re-run on the recording)

Each topic is published with its recorded type and the QoS its recorded publishers offered (best effort for
streams, reliable for commands, reliable + transient local for state), as the recorded CDR bytes: nothing is
converted. Header stamps stay as recorded, so outputs of a re-run node carry the same stamps as the live run's
and can be compared frame by frame; --restamp shifts every message's header.stamp by one constant (the recording's
start maps to the replay's start) for nodes that drop old data (nested stamps other than header.stamp keep their
recorded values). A progress line is printed every --progress seconds. Reads rosbag2 folders with MCAP or SQLite
storage (anything rosbags reads).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mmchat_ros.core.bag_topics import (COMMAND, DEFAULT_TOPICS, ReplayClock, human_bytes,
                                        qos_class_for_publishers, replay_progress, shifted_stamp)
from mmchat_ros.core.rosenv import apply_to_current_process
from mmchat_ros.tools.recorder import qos_profile


def recorded_qos_class(connection) -> str:
    """The QoS class to replay a bag connection with: from the publishers the recorder saw, else the graph's
    convention for the topic, else reliable."""
    from rosbags.interfaces import QosDurability, QosReliability
    offered = getattr(connection.ext, "offered_qos_profiles", None) or []
    if offered:
        return qos_class_for_publishers([
            ("reliable" if q.reliability == QosReliability.RELIABLE else "best_effort",
             "transient_local" if q.durability == QosDurability.TRANSIENT_LOCAL else "volatile") for q in offered])
    known = {spec.name: spec.qos for spec in DEFAULT_TOPICS}
    return known.get(connection.topic) or COMMAND


class BagPlayer:
    """Publishes a bag's messages on ``node`` at their recorded pace divided by ``rate``."""

    def __init__(self, node, bag: Path, topics: list[str] | None = None, exclude: list[str] | None = None,
                 rate: float = 1.0, restamp: bool = False, progress=None, progress_period_s: float = 2.0):
        from rosbags.rosbag2 import Reader
        from mmchat_ros.tools.introspect import message_class
        self.node = node
        self.bag = Path(bag)
        self.rate = rate
        self.restamp = restamp
        self.progress = progress or (lambda line: print(line, flush=True))
        self.progress_period_s = progress_period_s
        self.reader = Reader(self.bag)
        self.reader.open()
        wanted = set(topics) if topics else None
        unknown = (wanted or set()) - {c.topic for c in self.reader.connections}
        if unknown:
            self.reader.close()
            raise ValueError(f"not in {self.bag}: {', '.join(sorted(unknown))} (it has "
                             f"{', '.join(sorted({c.topic for c in self.reader.connections}))})")
        self.connections = [c for c in self.reader.connections
                            if (wanted is None or c.topic in wanted) and c.topic not in set(exclude or ())]
        if not self.connections:
            self.reader.close()
            raise ValueError(f"no topics of {self.bag} left to play")
        self.publishers: dict[str, object] = {}
        self.classes: dict[str, type] = {}
        for conn in self.connections:
            if conn.topic in self.publishers:
                continue
            msg_type = message_class(conn.msgtype)
            qos_class = recorded_qos_class(conn)
            self.classes[conn.topic] = msg_type
            self.publishers[conn.topic] = node.create_publisher(msg_type, conn.topic, qos_profile(qos_class))
            node.get_logger().info(f"will play {conn.topic} ({conn.msgtype}, {qos_class} QoS, "
                                   f"{conn.msgcount} messages)")
        self.start_ns = self.reader.start_time
        self.duration_s = max(0.0, (self.reader.end_time - self.reader.start_time) * 1e-9)
        self.published = 0

    def flush(self, timeout_s: float = 2.0) -> bool:
        """Wait until subscribers acknowledged what reliable publishers sent: a player that exits right after
        its last message would otherwise take that message with it."""
        from rclpy.duration import Duration
        deadline = time.monotonic() + timeout_s
        return all(pub.wait_for_all_acked(Duration(seconds=max(0.0, deadline - time.monotonic())))
                   for pub in self.publishers.values())

    def close(self) -> None:
        self.reader.close()

    def wait_for_subscribers(self, topics: list[str], timeout_s: float, keep_going=lambda: True) -> bool:
        """Until every topic in ``topics`` has a subscriber (or timeout): replay into nodes that start late."""
        missing = [t for t in topics if t not in self.publishers]
        if missing:
            raise ValueError(f"--wait-for {', '.join(missing)}: not among the topics played")
        deadline = time.monotonic() + timeout_s
        while keep_going() and time.monotonic() < deadline:
            if all(self.publishers[t].get_subscription_count() > 0 for t in topics):
                return True
            time.sleep(0.05)
        return False

    def restamped(self, topic: str, data: bytes, offset_ns: int) -> bytes:
        from rclpy.serialization import deserialize_message, serialize_message
        msg = deserialize_message(data, self.classes[topic])
        stamp = getattr(getattr(msg, "header", None), "stamp", None)
        if stamp is None:
            return data
        stamp.sec, stamp.nanosec = shifted_stamp(stamp.sec, stamp.nanosec, offset_ns)
        return serialize_message(msg)

    def play_once(self, keep_going=lambda: True, start_offset_s: float = 0.0, lap: int = 0) -> bool:
        """One pass through the bag. Returns False when stopped early."""
        clock = ReplayClock(self.start_ns + int(start_offset_s * 1e9), time.monotonic(), self.rate)
        offset_ns = time.time_ns() - clock.first_log_ns      # --restamp: recording start -> now
        next_report = time.monotonic() + self.progress_period_s
        for conn, log_ns, data in self.reader.messages(connections=self.connections,
                                                       start=clock.first_log_ns):
            due = clock.due(log_ns)
            while True:
                if not keep_going():
                    return False
                now = time.monotonic()
                if self.progress_period_s > 0 and now >= next_report:
                    next_report += self.progress_period_s
                    self.progress(replay_progress(clock.bag_seconds(now) + start_offset_s, self.duration_s,
                                                  self.published, lap))
                if now >= due:
                    break
                time.sleep(min(0.1, due - now))
            if self.restamp:
                data = self.restamped(conn.topic, data, offset_ns)
            self.publishers[conn.topic].publish(bytes(data))
            self.published += 1
        self.progress(replay_progress(self.duration_s, self.duration_s, self.published, lap))
        return True


# ------------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("bag", help="bag folder (rosbag2: metadata.yaml + .mcap or .db3)")
    parser.add_argument("--rate", "-r", type=float, default=1.0, help="speed factor (2 = twice as fast)")
    parser.add_argument("--loop", "-l", action="store_true", help="start again at the end, until Ctrl-C")
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", help="play only these topics")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="TOPIC", help="do not play these topics")
    parser.add_argument("--restamp", action="store_true",
                        help="shift header stamps so the recording's start is now (default: stamps as recorded)")
    parser.add_argument("--start", type=float, default=0.0, help="skip this many seconds of the bag")
    parser.add_argument("--wait-for", nargs="+", default=[], metavar="TOPIC",
                        help="start once these topics have subscribers (e.g. a perception node starting up)")
    parser.add_argument("--wait-timeout", type=float, default=60.0, help="give up waiting after this long, s")
    parser.add_argument("--delay", type=float, default=0.5,
                        help="pause before the first message so subscribers finish matching, s")
    parser.add_argument("--progress", type=float, default=2.0, help="progress line period, s (0 = none)")
    parser.add_argument("--info", action="store_true", help="describe the bag and exit")
    return parser


def describe(bag: Path) -> str:
    from rosbags.rosbag2 import Reader
    with Reader(bag) as reader:
        lines = [f"{bag}: {reader.message_count} messages, {reader.duration * 1e-9:.1f} s, "
                 f"{human_bytes(sum(p.stat().st_size for p in Path(bag).iterdir() if p.is_file()))}"]
        for conn in reader.connections:
            lines.append(f"  {conn.topic:24s} {conn.msgtype:34s} {conn.msgcount:7d} msgs  "
                         f"{recorded_qos_class(conn)} QoS")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    bag = Path(args.bag)
    if not (bag / "metadata.yaml").is_file():
        print(f"mmchat play: {bag} is not a rosbag2 folder (no metadata.yaml)", file=sys.stderr)
        return 2
    if args.info:
        print(describe(bag))
        return 0
    if not args.rate > 0:
        print(f"mmchat play: --rate must be > 0, got {args.rate}", file=sys.stderr)
        return 2
    apply_to_current_process()
    import rclpy
    rclpy.init(args=[])
    node = rclpy.create_node("mmchat_player")
    player = None
    try:
        player = BagPlayer(node, bag, args.topics, args.exclude, args.rate, args.restamp,
                           progress_period_s=args.progress)
        print(describe(bag), flush=True)
        if args.wait_for:
            print(f"waiting for subscribers on {', '.join(args.wait_for)} ...", flush=True)
            if not player.wait_for_subscribers(args.wait_for, args.wait_timeout, rclpy.ok):
                if rclpy.ok():
                    print(f"mmchat play: no subscriber on {', '.join(args.wait_for)} after {args.wait_timeout} s",
                          file=sys.stderr)
                return 1
        time.sleep(max(0.0, args.delay))
        lap = 0
        while rclpy.ok():
            if not player.play_once(rclpy.ok, args.start, lap) or not args.loop:
                break
            lap += 1
        if rclpy.ok() and not player.flush():
            print("some subscribers did not acknowledge the last messages", file=sys.stderr)
        print(f"played {player.published} messages", flush=True)
        return 0
    except ValueError as exc:
        print(f"mmchat play: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        if player is not None:
            player.close()
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="mmchat play", description=__doc__,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
