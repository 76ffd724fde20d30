"""A ROS 2 participant with its own context and domain, spun in a background thread: used by `mmchat demo`,
the benches and the tests to talk to running nodes."""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, ShutdownException, SingleThreadedExecutor
from rclpy.qos import QoSProfile, qos_profile_sensor_data


class RosClient:
    def __init__(self, domain_id: int, name: str = "test_client"):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        self._lock = threading.Lock()

    def _spin(self):
        # A callback that raises must not end the spin silently: every later message and reply would be lost to
        # the test or bench without a word. It is reported and the spin goes on; only the shutdown ends it.
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except (ShutdownException, ExternalShutdownException):
                return
            except Exception as exc:
                if not self.context.ok():
                    return                  # a shutdown race
                print(f"[{self.node.get_name()}] a callback failed: {type(exc).__name__}: {exc}", file=sys.stderr,
                      flush=True)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)   # join the spin thread after shutdown, or the process can abort at exit

    def collect(self, msg_type, topic: str, qos: QoSProfile | int = 10) -> list:
        """Subscribe and append every message (with its arrival time) to the returned list."""
        received: list = []
        qos = qos_profile_sensor_data if qos == "sensor" else qos

        def on_msg(msg):
            with self._lock:
                received.append((time.monotonic(), msg))
        self.node.create_subscription(msg_type, topic, on_msg, qos)
        return received

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str | Callable[[], str],
                 poll: float = 0.02):
        """``what`` may be a callable: it is called at the timeout, so logs it includes show the whole wait."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(poll)
        raise TimeoutError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")

    def wait_for_message(self, received: list, predicate: Callable[[Any], bool] = lambda m: True,
                         timeout: float = 10.0, what: str | Callable[[], str] = "a message"):
        def find():
            with self._lock:
                for _, msg in reversed(received):
                    if predicate(msg):
                        return msg
            return None
        return self.wait_for(find, timeout, what)

    def wait_for_subscribers(self, publisher, count: int = 1, timeout: float = 10.0):
        self.wait_for(lambda: publisher.get_subscription_count() >= count, timeout,
                      f"{count} subscriber(s) on {publisher.topic_name}")

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        client = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {name} not available after {timeout} s")
        future = client.call_async(request)
        self.wait_for(future.done, timeout, f"reply from {name}")
        return future.result()
