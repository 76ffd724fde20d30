"""`mmchat topic list|echo|hz|pub` and `mmchat node list`: the ros2cli commands this machine lacks, on plain rclpy."""
from __future__ import annotations

import importlib
import math
import sys
import time
from collections import deque
from typing import Any

from mmchat_ros.core.rosenv import apply_to_current_process

DISCOVERY_WAIT_S = 3.0   # discovery on a loaded 2-core machine can take more than a second


def _init():
    apply_to_current_process()
    import rclpy
    rclpy.init(args=[])
    return rclpy, rclpy.create_node(f"mmchat_cli_{int(time.time() * 1000) % 100000}")


def _shutdown_exception():
    from rclpy.executors import ExternalShutdownException
    return ExternalShutdownException


def message_class(type_name: str):
    """'sensor_msgs/msg/Image' -> the Python class."""
    parts = type_name.split("/")
    if len(parts) != 3:
        raise ValueError(f"bad message type '{type_name}' (expected pkg/msg/Name)")
    module = importlib.import_module(f"{parts[0]}.{parts[1]}")
    return getattr(module, parts[2])


def message_to_dict(msg: Any, max_array: int = 16) -> Any:
    """A message as plain data; long arrays are summarised so images don't flood the terminal."""
    if hasattr(msg, "get_fields_and_field_types"):
        return {name: message_to_dict(getattr(msg, name), max_array) for name in msg.get_fields_and_field_types()}
    if isinstance(msg, (list, tuple)) or (hasattr(msg, "__len__") and hasattr(msg, "dtype")):
        items = list(msg)
        if len(items) > max_array:
            return f"<{len(items)} items: {[message_to_dict(i, max_array) for i in items[:4]]}...>"
        return [message_to_dict(i, max_array) for i in items]
    if isinstance(msg, bytes):
        return f"<{len(msg)} bytes>" if len(msg) > max_array else list(msg)
    if isinstance(msg, float) and not math.isfinite(msg):
        return str(msg)
    if hasattr(msg, "item"):
        return msg.item()
    return msg


def _wait_for_graph(rclpy, node, predicate=None, timeout=DISCOVERY_WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
        if predicate and predicate():
            return True
    return bool(predicate and predicate())


def topic_list(show_types: bool = False, wait_s: float = DISCOVERY_WAIT_S) -> int:
    rclpy, node = _init()
    try:
        _wait_for_graph(rclpy, node, timeout=wait_s)
        for name, types in sorted(node.get_topic_names_and_types()):
            print(f"{name} [{', '.join(types)}]" if show_types else name)
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def node_list(wait_s: float = DISCOVERY_WAIT_S) -> int:
    rclpy, node = _init()
    try:
        _wait_for_graph(rclpy, node, timeout=wait_s)
        own = node.get_name()
        for name, namespace in sorted(node.get_node_names_and_namespaces()):
            if name != own:
                print(f"{namespace.rstrip('/')}/{name}")
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _topic_type(rclpy, node, topic: str, wait_s: float) -> str | None:
    found: list[str] = []

    def lookup():
        for name, types in node.get_topic_names_and_types():
            if name == topic and types:
                found.append(types[0])
                return True
        return False

    _wait_for_graph(rclpy, node, lookup, timeout=wait_s)
    return found[0] if found else None


def _subscribe(node, topic, msg_cls, callback):
    from rclpy.qos import qos_profile_sensor_data
    # Best effort matches both reliable and best-effort publishers.
    return node.create_subscription(msg_cls, topic, callback, qos_profile_sensor_data)


def topic_echo(topic: str, count: int = 0, type_name: str | None = None, timeout_s: float = 0.0,
               wait_s: float = 5.0) -> int:
    import yaml
    rclpy, node = _init()
    try:
        type_name = type_name or _topic_type(rclpy, node, topic, wait_s)
        if not type_name:
            print(f"topic '{topic}' not found after {wait_s:.0f} s (is its publisher running on this "
                  "ROS_DOMAIN_ID?)", file=sys.stderr)
            return 1
        received = 0

        def on_msg(msg):
            nonlocal received
            received += 1
            sys.stdout.write(yaml.safe_dump(message_to_dict(msg), sort_keys=False) + "---\n")
            sys.stdout.flush()

        _subscribe(node, topic, message_class(type_name), on_msg)
        deadline = time.monotonic() + timeout_s if timeout_s else None
        while rclpy.ok() and (count == 0 or received < count):
            rclpy.spin_once(node, timeout_sec=0.1)
            if deadline and time.monotonic() > deadline:
                break
        return 0 if (count == 0 or received >= count) else 1
    except (KeyboardInterrupt, _shutdown_exception()):
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def topic_hz(topic: str, window: int = 100, duration_s: float = 0.0, type_name: str | None = None,
             wait_s: float = 5.0) -> int:
    rclpy, node = _init()
    try:
        type_name = type_name or _topic_type(rclpy, node, topic, wait_s)
        if not type_name:
            print(f"topic '{topic}' not found after {wait_s:.0f} s", file=sys.stderr)
            return 1
        arrivals: deque[float] = deque(maxlen=window + 1)
        _subscribe(node, topic, message_class(type_name), lambda _msg: arrivals.append(time.monotonic()))
        start = time.monotonic()
        last_report = start
        rate = 0.0
        while rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.05)
            now = time.monotonic()
            if now - last_report >= 1.0:
                last_report = now
                if len(arrivals) >= 2:
                    periods = [b - a for a, b in zip(arrivals, list(arrivals)[1:])]
                    mean = sum(periods) / len(periods)
                    rate = 1.0 / mean if mean > 0 else 0.0
                    jitter = (sum((p - mean) ** 2 for p in periods) / len(periods)) ** 0.5
                    print(f"average rate: {rate:.3f} Hz  min: {min(periods):.4f}s max: {max(periods):.4f}s "
                          f"std dev: {jitter:.5f}s window: {len(periods)}", flush=True)
                else:
                    print("no new messages", flush=True)
            if duration_s and now - start >= duration_s:
                break
        return 0 if rate > 0 else 1
    except (KeyboardInterrupt, _shutdown_exception()):
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _fill(msg: Any, values: dict, where: str) -> None:
    """Set a message's fields from plain data (nested messages as mappings), naming the first bad field."""
    for key, value in values.items():
        if not hasattr(msg, key):
            raise ValueError(f"{where} has no field '{key}'")
        current = getattr(msg, key)
        if isinstance(value, dict) and hasattr(current, "get_fields_and_field_types"):
            _fill(current, value, f"{where}.{key}")
        else:
            setattr(msg, key, value)


def topic_pub(topic: str, type_name: str, values_yaml: str = "", times: int = 1, rate_hz: float = 1.0,
              wait_s: float = 10.0) -> int:
    """Publish a message (`mmchat topic pub /tts/say std_msgs/msg/String "{data: hi}"`), like `ros2 topic pub
    --once`: waits until a subscriber has matched (up to wait_s) so the message is not sent into the void."""
    import yaml
    msg_cls = message_class(type_name)
    msg = msg_cls()
    try:
        _fill(msg, yaml.safe_load(values_yaml) or {} if values_yaml else {}, type_name)
    except (ValueError, TypeError, AssertionError) as exc:
        print(f"cannot build {type_name}: {exc}", file=sys.stderr)
        return 2
    rclpy, node = _init()
    try:
        publisher = node.create_publisher(msg_cls, topic, 10)
        if not _wait_for_graph(rclpy, node, lambda: publisher.get_subscription_count() > 0, timeout=wait_s):
            print(f"no subscriber on '{topic}' after {wait_s:.0f} s; publishing anyway", file=sys.stderr)
        for index in range(times):
            publisher.publish(msg)
            print(f"published #{index + 1} on {topic}: {message_to_dict(msg)}")
            if index + 1 < times:
                _wait_for_graph(rclpy, node, timeout=1.0 / rate_hz)
        _wait_for_graph(rclpy, node, timeout=0.5)      # let reliable delivery finish before the node goes
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def service_call(name: str, type_name: str | None = None, request_yaml: str = "", wait_s: float = 10.0) -> int:
    """Call a service once and print the response (`mmchat service call /takeoff`)."""
    import yaml
    rclpy, node = _init()
    try:
        if not type_name:
            found: list[str] = []

            def lookup():
                for srv, types in node.get_service_names_and_types():
                    if srv == name and types:
                        found.append(types[0])
                        return True
                return False
            _wait_for_graph(rclpy, node, lookup, timeout=wait_s)
            if not found:
                print(f"service '{name}' not found after {wait_s:.0f} s", file=sys.stderr)
                return 1
            type_name = found[0]
        srv_cls = message_class(type_name)
        request = srv_cls.Request()
        for key, value in (yaml.safe_load(request_yaml) or {}).items() if request_yaml else []:
            if not hasattr(request, key):
                print(f"{type_name} request has no field '{key}'", file=sys.stderr)
                return 2
            setattr(request, key, value)
        client = node.create_client(srv_cls, name)
        if not client.wait_for_service(timeout_sec=wait_s):
            print(f"service '{name}' not available", file=sys.stderr)
            return 1
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=wait_s)
        if not future.done():
            print(f"no response from '{name}' within {wait_s:.0f} s", file=sys.stderr)
            return 1
        sys.stdout.write(yaml.safe_dump(message_to_dict(future.result()), sort_keys=False))
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
