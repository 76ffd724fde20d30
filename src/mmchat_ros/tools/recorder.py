"""`mmchat record`: write chosen topics of the running graph to a ROS 2 bag (MCAP storage, rosbags writer).

    mmchat record                               the default selection (core/bag_topics.py): images at 5 Hz,
                                                detections, gestures, transcripts, plans, flight state, odometry
    mmchat record -o flight1 --duration 30      into ./flight1/ (a rosbag2 folder: metadata.yaml + .mcap)
    mmchat record /camera/image_raw:0 /gesture  only these topics (":0" keeps every image, ":RATE" thins)
    mmchat record --defaults /imu:100           the defaults plus /imu at 100 Hz

Subscriptions are raw (the CDR bytes rclpy receives go to the bag unchanged) and a writer thread of its own does
the disk work, so a slow disk never stalls the subscriptions. A topic whose type is not given waits until a
publisher appears and takes its type; its QoS follows the publishers found then. Each message's bag time is the
wall time it was received (like rosbag2); its header stamp is whatever the publisher put there. A progress line
(messages, bytes, per topic) is printed every --progress seconds; Ctrl-C (or --duration) closes the bag cleanly.
"""
from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from mmchat_ros.core.bag_topics import (DEFAULT_IMAGE_RATE_HZ, DEFAULT_ODOM_RATE_HZ, RateLimiter, TopicSpec,
                                        TopicSpecError, human_bytes, make_typestore, qos_class_for_publishers,
                                        recording_progress, select_topics)
from mmchat_ros.core.rosenv import apply_to_current_process

WRITER_QUEUE = 4000            # messages; ~20 s of the default selection. Beyond it new messages are dropped.
DISCOVERY_PERIOD_S = 1.0


def qos_profile(qos_class: str):
    """The rclpy profile of a QoS class (core/topics.py), as the graph's nodes use it."""
    from mmchat_ros.nodes.common import QOS_PROFILES
    return QOS_PROFILES[qos_class]


def offered_classes(endpoints) -> list[tuple[str, str]]:
    """(reliability, durability) names of discovered publishers, as core.bag_topics.qos_class_for_publishers
    takes them."""
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
    return [("reliable" if info.qos_profile.reliability == ReliabilityPolicy.RELIABLE else "best_effort",
             "transient_local" if info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL else "volatile")
            for info in endpoints]


def bag_qos(endpoint):
    """A discovered publisher's QoS as rosbags writes it into metadata.yaml (offered_qos_profiles)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
    profile = endpoint.qos_profile

    def duration(value) -> QosTime:
        ns = value.nanoseconds
        # "infinite" in rclpy is larger than rosbag2's int32 seconds: store rosbag2's own infinite marker.
        if ns >= 0x7FFFFFFF * 1_000_000_000:
            return QosTime(sec=0x7FFFFFFF, nsec=0xFFFFFFFF)
        return QosTime(sec=ns // 1_000_000_000, nsec=ns % 1_000_000_000)

    def enum(kind, value):
        try:
            return kind(int(value))
        except ValueError:
            return kind(0)
    return Qos(history=enum(QosHistory, profile.history), depth=int(profile.depth),
               reliability=enum(QosReliability, profile.reliability),
               durability=enum(QosDurability, profile.durability), deadline=duration(profile.deadline),
               lifespan=duration(profile.lifespan), liveliness=enum(QosLiveliness, profile.liveliness),
               liveliness_lease_duration=duration(profile.liveliness_lease_duration),
               avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions))


class BagRecorder:
    """Subscribes to ``specs`` on ``node`` and writes what arrives to a new bag at ``output``."""

    def __init__(self, node, output: Path, specs: list[TopicSpec], typestore=None, progress=None,
                 progress_period_s: float = 2.0, queue_size: int = WRITER_QUEUE):
        from rosbags.rosbag2 import StoragePlugin, Writer
        self.node = node
        self.log = node.get_logger()
        self.output = Path(output)
        if self.output.exists():
            raise FileExistsError(f"{self.output} exists: choose a new bag name (-o)")
        self.typestore = typestore if typestore is not None else make_typestore()
        self.specs = {spec.name: spec for spec in specs}
        self.progress = progress or (lambda line: print(line, flush=True))
        self.progress_period_s = progress_period_s
        self.writer = Writer(self.output, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.writer.set_custom_data("mmchat.topics", ",".join(
            f"{s.name}:{s.max_rate_hz:g}" for s in specs))
        self.limiters = {spec.name: RateLimiter(spec.max_rate_hz) for spec in specs}
        self.types: dict[str, str] = {}          # topic -> type, once subscribed
        self.connections: dict[str, object] = {}
        self.subscriptions = []
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.counts: Counter = Counter()
        self.bytes_written = 0
        self.dropped = 0
        self.started = time.monotonic()
        self.closed = False
        self.failed = ""     # why the bag could not be written (a full disk, a lost device): recording stops
        self.writer_thread = threading.Thread(target=self.write_loop, name="bag-writer", daemon=True)
        self.writer_thread.start()
        for spec in specs:
            if spec.type:
                self.subscribe(spec, spec.type)
        self.discovery_timer = node.create_timer(DISCOVERY_PERIOD_S, self.discover) \
            if any(not spec.type for spec in specs) else None
        if self.discovery_timer:
            self.discover()
        waiting = [name for name in self.specs if name not in self.types]
        self.progress(f"recording {len(self.specs)} topic(s) to {self.output}"
                      + (f"; waiting for publishers of {', '.join(waiting)}" if waiting else ""))

    # ------------------------------------------------------------------------------------------ subscriptions
    def discover(self) -> None:
        pending = [name for name in self.specs if name not in self.types]
        if not pending:
            if self.discovery_timer:
                self.discovery_timer.cancel()
            return
        graph = dict(self.node.get_topic_names_and_types())
        for name in pending:
            types = graph.get(name)
            if not types:
                continue
            if len(types) > 1:
                self.log.error(f"{name} is published with several types ({', '.join(types)}): not recorded",
                               throttle_duration_sec=30.0)
                continue
            self.subscribe(self.specs[name], types[0])

    def subscribe(self, spec: TopicSpec, type_name: str) -> None:
        from mmchat_ros.tools.introspect import message_class
        try:
            self.typestore.hash_rihs01(type_name)     # the bag must be able to describe the type
            msg_type = message_class(type_name)
        except Exception as exc:   # unknown to rosbags or not importable: say so, record the rest
            self.log.error(f"cannot record {spec.name}: type {type_name} is unknown ({type(exc).__name__}: {exc})")
            self.types[spec.name] = type_name          # do not retry every second
            return
        qos_class = spec.qos or qos_class_for_publishers(
            offered_classes(self.node.get_publishers_info_by_topic(spec.name)))
        self.types[spec.name] = type_name
        self.subscriptions.append(self.node.create_subscription(
            msg_type, spec.name, lambda data, topic=spec.name: self.on_message(topic, data), qos_profile(qos_class),
            raw=True))
        rate = f"at most {spec.max_rate_hz:g} Hz" if spec.max_rate_hz > 0 else "every message"
        self.log.info(f"recording {spec.name} ({type_name}, {qos_class} QoS, {rate})")

    def on_message(self, topic: str, data: bytes) -> None:
        now_ns = time.time_ns()
        if not self.limiters[topic].accept(now_ns):
            return
        try:
            self.queue.put_nowait((topic, now_ns, data))
        except queue.Full:
            self.dropped += 1
            self.log.warn("the bag writer is behind: dropping messages", throttle_duration_sec=5.0)

    # ---------------------------------------------------------------------------------------------- writing
    def connection(self, topic: str):
        conn = self.connections.get(topic)
        if conn is None:
            type_name = self.types[topic]
            endpoints = self.node.get_publishers_info_by_topic(topic)
            digest = self.typestore.hash_rihs01(type_name)
            for endpoint in endpoints:
                if endpoint.topic_type_hash and str(endpoint.topic_type_hash) != digest:
                    self.log.warn(f"{topic}: {endpoint.node_name} publishes {type_name} with definition hash "
                                  f"{endpoint.topic_type_hash}, the bag describes it as {digest}: readers may "
                                  "decode it wrongly (rebuild the interfaces?)")
                    break
            conn = self.writer.add_connection(topic, type_name, typestore=self.typestore,
                                              offered_qos_profiles=[bag_qos(e) for e in endpoints])
            self.connections[topic] = conn
        return conn

    def write_loop(self) -> None:
        next_report = time.monotonic() + self.progress_period_s
        while True:
            try:
                item = self.queue.get(timeout=0.2)
            except queue.Empty:
                item = None
            if item is None:
                if self.closed and self.queue.empty():
                    return
            else:
                topic, t_ns, data = item
                if self.failed:
                    self.dropped += 1
                    continue
                try:
                    self.writer.write(self.connection(topic), t_ns, data)
                    self.counts[topic] += 1
                    self.bytes_written += len(data)
                except OSError as exc:     # the storage itself failed (ENOSPC, EIO): no later write can succeed
                    self.failed = f"could not write to {self.output}: {exc.strerror or exc}"
                    self.log.error(f"{self.failed}; recording stops")
                except Exception as exc:   # one bad write is reported; the bag stays usable
                    self.log.error(f"could not write a {topic} message: {type(exc).__name__}: {exc}",
                                   throttle_duration_sec=5.0)
            if self.progress_period_s > 0 and time.monotonic() >= next_report:
                next_report += self.progress_period_s
                self.report()

    def report(self) -> None:
        self.progress(recording_progress(time.monotonic() - self.started, sum(self.counts.values()),
                                         self.bytes_written, self.counts, self.dropped))

    def close(self) -> dict:
        """Stop subscribing, write what is queued, close the bag. Returns the per-topic counts."""
        if self.closed:
            return dict(self.counts)
        for subscription in self.subscriptions:
            self.node.destroy_subscription(subscription)
        self.subscriptions.clear()
        if self.discovery_timer:
            self.discovery_timer.cancel()
        self.closed = True
        self.writer_thread.join()
        try:
            self.writer.close()
        except OSError as exc:     # the last chunk and the index did not fit: what was written may not read back
            self.failed = self.failed or f"could not write to {self.output}: {exc.strerror or exc}"
            self.progress(f"bag not closed cleanly ({exc.strerror or exc}): {self.output} is incomplete")
            return dict(self.counts)
        self.progress(f"bag closed: {sum(self.counts.values())} messages, {human_bytes(self.bytes_written)} in "
                      f"{time.monotonic() - self.started:.1f} s on {len(self.counts)} topic(s)"
                      + (f", {self.dropped} dropped" if self.dropped else "") + f" -> {self.output}")
        missing = [name for name in self.specs if not self.counts.get(name)]
        if missing:
            self.progress(f"no messages on: {', '.join(missing)}")
        return dict(self.counts)


# ------------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("topics", nargs="*", metavar="TOPIC[:RATE[:TYPE]]",
                        help="topics to record (default: the default selection); RATE thins to at most RATE "
                             "messages/s (0 = all); TYPE pkg/msg/Name if the topic is not published yet")
    parser.add_argument("-o", "--output", help="bag folder to create (default: mmchat_YYYYmmdd_HHMMSS)")
    parser.add_argument("--defaults", action="store_true", help="record the default selection as well as TOPICs")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="TOPIC", help="leave these topics out")
    parser.add_argument("--image-rate", type=float, default=DEFAULT_IMAGE_RATE_HZ,
                        help="default selection: camera images per second kept (0 = all)")
    parser.add_argument("--odom-rate", type=float, default=DEFAULT_ODOM_RATE_HZ,
                        help="default selection: odometry messages per second kept (0 = all)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = Ctrl-C)")
    parser.add_argument("--progress", type=float, default=2.0, help="progress line period, s (0 = none)")
    parser.add_argument("--list-defaults", action="store_true", help="print the default selection and exit")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.list_defaults:
        for spec in select_topics((), args.image_rate, args.odom_rate):
            rate = f"{spec.max_rate_hz:g} Hz" if spec.max_rate_hz else "all"
            print(f"{spec.name:22s} {spec.type:34s} {spec.qos:9s} {rate}")
        return 0
    try:
        specs = select_topics(args.topics, args.image_rate, args.odom_rate,
                              include_defaults=True if args.defaults else None, exclude=args.exclude)
    except TopicSpecError as exc:
        print(f"mmchat record: {exc}", file=sys.stderr)
        return 2
    output = Path(args.output or time.strftime("mmchat_%Y%m%d_%H%M%S"))
    if output.exists():
        print(f"mmchat record: {output} exists: choose a new bag name (-o)", file=sys.stderr)
        return 2
    apply_to_current_process()
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    print("loading message definitions ...", flush=True)
    typestore = make_typestore()
    rclpy.init(args=[])
    node = rclpy.create_node("mmchat_recorder")
    recorder = None
    try:
        recorder = BagRecorder(node, output, specs, typestore, progress_period_s=args.progress)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        deadline = time.monotonic() + args.duration if args.duration > 0 else None
        while rclpy.ok() and (deadline is None or time.monotonic() < deadline) and not recorder.failed:
            executor.spin_once(timeout_sec=0.2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except FileExistsError as exc:
        print(f"mmchat record: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:     # the bag cannot even be created (read-only or full file system)
        print(f"mmchat record: cannot create {output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        if recorder is not None:
            recorder.close()
        node.destroy_node()
        rclpy.try_shutdown()
    if recorder is not None and recorder.failed:
        print(f"mmchat record: {recorder.failed}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="mmchat record", description=__doc__,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
