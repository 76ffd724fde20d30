"""What every mmchat_ros node shares: the process entry point, declared-and-described parameters, publishers and
subscriptions on the topics of core/topics.py with the QoS profile of their class."""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rclpy
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)
from rclpy.signals import SignalHandlerOptions

from mmchat_ros.core import topics
from mmchat_ros.core.live_parameters import LiveRule, changes_problem

# The rclpy profile of each QoS class of core/topics.py.
QOS_PROFILES: dict[str, QoSProfile] = {
    topics.SENSOR: qos_profile_sensor_data,
    topics.SETPOINT: QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST),
    topics.COMMAND: QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST),
    topics.STATE: QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST),
}
# By name, for test helpers and tools that talk to a topic outside the table.
SENSOR_QOS, COMMAND_QOS, STATE_QOS = (QOS_PROFILES[c] for c in (topics.SENSOR, topics.COMMAND, topics.STATE))


def topic_qos(topic: topics.Topic) -> QoSProfile:
    return QOS_PROFILES[topic.qos]


def _checked_type(topic: topics.Topic, msg_type: type) -> type:
    """The message class, if it is the table's type for the topic (a mismatch would pass silently in DDS: the
    endpoints just never match)."""
    name = f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"
    if name != topic.type:
        raise TypeError(f"{topic.name} carries {topic.type} (core/topics.py), not {name}")
    return msg_type


def topic_publisher(node: Node, topic: topics.Topic, msg_type: type, **options):
    """A publisher on a topic of the graph's table, with its QoS class (relative name: remappable)."""
    return node.create_publisher(_checked_type(topic, msg_type), topic.relative_name, topic_qos(topic), **options)


def topic_subscription(node: Node, topic: topics.Topic, msg_type: type, callback: Callable, **options):
    """A subscription to a topic of the graph's table, with its QoS class (relative name: remappable)."""
    return node.create_subscription(_checked_type(topic, msg_type), topic.relative_name, callback,
                                    topic_qos(topic), **options)


@dataclass(frozen=True)
class Param:
    """A declared parameter. ``live``: the node applies a new value while it runs (validated against
    ``value_range`` and ``check``, core/live_parameters.py); otherwise setting it later is refused with the reason."""
    default: Any
    description: str
    read_only: bool = False
    value_range: tuple[float, float] | None = None
    live: bool = False
    check: Callable[[Any], str | None] | None = None

    @property
    def rule(self) -> LiveRule:
        return LiveRule(self.live, self.value_range, self.check)

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(description=self.description, read_only=self.read_only,
                                         additional_constraints=self.rule.constraints())
        if self.value_range is not None and not isinstance(self.default, bool):
            low, high = self.value_range
            if isinstance(self.default, float):     # scalars only: ROS has no ranges for arrays
                descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
            elif isinstance(self.default, int):
                descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        return descriptor


class Params:
    """Attribute access to a node's declared parameters. Values are read at start-up; a live parameter set later
    (``ros2 param set``, ``mmchat param set``) is validated and applied here, the others are refused with the
    reason. ``on_change`` gets every value as it would be after a change, applies what the node derives from
    them (an envelope, a controller's gains) and returns why it refuses them, or None: nothing changes then."""

    def __init__(self, node: Node, spec: dict[str, Param],
                 on_change: Callable[[dict[str, Any]], str | None] | None = None):
        self._spec = spec
        self._on_change = on_change
        self._logger = node.get_logger()
        for name, param in spec.items():
            node.declare_parameter(name, param.default, param.descriptor())
            setattr(self, name, _plain(node.get_parameter(name).value))
        node.add_on_set_parameters_callback(self._on_set)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._spec}

    def _on_set(self, parameters) -> SetParametersResult:
        changes = {p.name: _plain(p.value) for p in parameters if p.name in self._spec}
        if not changes:
            return SetParametersResult(successful=True)
        problem = changes_problem(changes, {name: self._spec[name].rule for name in changes})
        if problem is None and self._on_change is not None:
            problem = self._on_change({**self.as_dict(), **changes})
        if problem:
            self._logger.warn(f"parameter change refused: {problem}")
            return SetParametersResult(successful=False, reason=problem)
        described = ", ".join(f"{name} {getattr(self, name)!r} -> {value!r}" for name, value in changes.items())
        for name, value in changes.items():
            setattr(self, name, value)
        self._logger.info(f"parameters changed: {described}")
        return SetParametersResult(successful=True)


def _plain(value: Any) -> Any:
    """Array parameters as lists (rclpy may hand out array.array)."""
    return list(value) if isinstance(value, (list, tuple)) or hasattr(value, "typecode") else value


def stamp_to_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def first_frame_line(msg) -> str:
    """The log line a perception node writes for the first camera frame it processes: tells the operator that
    images flow, in what format, and (exact stamp) lets a replay start from the same frame."""
    return (f"first camera frame: {msg.width}x{msg.height} {msg.encoding}, stamped "
            f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}")


def seconds_to_stamp(seconds: float):
    from builtin_interfaces.msg import Time
    sec = int(seconds // 1)
    return Time(sec=sec, nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


def make_executor(kind: str = "single", threads: int = 2):
    """The single-threaded executor costs far less CPU per callback than the multi-threaded one (no thread pool
    hand-off), which matters for 250 Hz odometry on a 2-core machine. Callbacks then run one at a time: nodes use
    async callbacks or their own threads for anything long. (rclpy's experimental EventsExecutor spun a core at
    100 % here with our publisher threads, so it is not used.)"""
    if kind == "single":
        from rclpy.executors import SingleThreadedExecutor
        return SingleThreadedExecutor()
    if kind == "multi":
        return MultiThreadedExecutor(num_threads=threads)
    raise ValueError(f"unknown executor kind '{kind}' (single, multi)")


def sleep_async(node: Node, seconds: float):
    """An awaitable pause inside an async callback that never blocks the executor."""
    from rclpy.task import Future
    future = Future()
    timer = None

    def fire():
        timer.cancel()
        node.destroy_timer(timer)
        if not future.done():
            future.set_result(None)
    timer = node.create_timer(seconds, fire)
    return future


def run_node(factory: Callable[[], Node], args: list[str] | None = None, threads: int = 2,
             executor_kind: str = "single") -> int:
    """Entry point body: init, spin until SIGINT/SIGTERM, stop the node's workers, shut down. Returns the exit
    status: 0 after a signal, 1 when the node failed or could not start.

    The signals are ours, not rclpy's: rclpy's handler shuts the context down at once, under worker threads that
    may be publishing. Here a signal only ends the spin; the node is stopped while its context is still valid."""
    rclpy.init(args=args if args is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    for signum in (signal.SIGINT, signal.SIGTERM):   # a signal while the node starts (a slow model load) stops it
        signal.signal(signum, signal.default_int_handler)
    node = None
    status = 0
    try:
        node = factory()
        executor = make_executor(executor_kind, threads)
        executor.add_node(node)
        spin_until_signal(node, executor)
        status = 1 if getattr(node, "failed", False) else 0
    except (KeyboardInterrupt, ExternalShutdownException):
        status = 1 if getattr(node, "failed", False) else 0
    except Exception as exc:  # a node that cannot start says why, with a non-zero exit for the launcher to report
        import traceback
        name = node.get_name() if node else "node"
        traceback.print_exc()
        print(f"[{name}] fatal: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        if node is not None:
            shutdown = getattr(node, "shutdown", None)
            if callable(shutdown):
                shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return status


def spin_until_signal(node: Node, executor) -> None:
    """Spin until SIGINT or SIGTERM. Python runs a signal handler only when the main thread leaves the executor's
    wait, so the signal also wakes the executor: the wakeup fd Python writes the signal to is relayed to a guard
    condition."""
    requested = threading.Event()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    wake = node.create_guard_condition(lambda: None)

    def relay():
        while os.read(wake_read, 1):
            wake.trigger()
        os.close(wake_read)
    # Its own thread, not a node worker: it belongs to the spin, not to a node, blocks in os.read, and is joined
    # below, before run_node stops the node and shuts the context down.
    relay_thread = threading.Thread(target=relay, name="signal_relay", daemon=True)
    relay_thread.start()
    previous_fd = signal.set_wakeup_fd(wake_write)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: requested.set())
    try:
        while not requested.is_set() and node.context.ok():
            executor.spin_once()
    finally:
        signal.set_wakeup_fd(previous_fd)
        os.close(wake_write)
        relay_thread.join()   # it has relayed every signal while the guard condition still exists
