"""The one way to write an mmchat_ros node: ``MmchatNode`` with its declared parameters, and the two worker threads
nodes need, ``LatestFrameWorker`` (inference on the newest camera frame) and ``PacedLoop`` (a fixed-rate loop).

Worker threads stop before the ROS context goes: run_node stops the node (``shutdown``) on SIGINT/SIGTERM before it
shuts rclpy down, and the context's on-shutdown hook stops them too when something else shuts it down. So a worker
never publishes into a dead context and needs no ``context.ok()`` checks.
"""
from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

from rclpy.node import Node

from mmchat_ros.core.pacing import JOB, NewestSlot, Pacer, PeriodLog
from mmchat_ros.core.topics import Topic
from mmchat_ros.nodes.common import Param, Params, topic_publisher, topic_subscription


def join_thread(thread: threading.Thread, timeout_s: float) -> None:
    """Waits for a node's thread to end, unless the caller is that thread: a thread that ends the node
    (``context.try_shutdown()``) runs the context's shutdown hook, and so the node's stop, itself."""
    if thread is not threading.current_thread() and thread.is_alive():
        thread.join(timeout=timeout_s)


class MmchatNode(Node):
    """A node with declared parameters (``self.p``, from a PARAMS table; ``on_change`` applies live ones, see
    Params), publishers and subscriptions on the graph's topics (core/topics.py), and worker threads that are
    stopped before the context is shut down. Subclasses that hold more (a model, a device) release it in
    ``close``, which runs once, after the workers stopped."""

    def __init__(self, name: str, params: dict[str, Param],
                 on_change: Callable[[dict[str, Any]], str | None] | None = None, **node_options):
        super().__init__(name, **node_options)
        self.p = Params(self, params, on_change)
        self._workers: list[LatestFrameWorker | PacedLoop] = []
        self._stopped = False
        self.context.on_shutdown(self.shutdown)

    def publish_to(self, topic: Topic, msg_type: type, **options):
        return topic_publisher(self, topic, msg_type, **options)

    def subscribe_to(self, topic: Topic, msg_type: type, callback: Callable[[Any], Any], **options):
        return topic_subscription(self, topic, msg_type, callback, **options)

    def start_worker(self, worker: LatestFrameWorker | PacedLoop) -> None:
        self._workers.append(worker)
        worker.start()

    def shutdown(self) -> None:
        """Stops the workers, newest first, then ``close``; once only (run_node and the context's hook both call
        it)."""
        if self._stopped:
            return
        self._stopped = True
        for worker in reversed(self._workers):
            worker.stop()
        self.close()

    def close(self) -> None:
        """What a node releases after its workers stopped (models, devices, sockets)."""


class LatestFrameWorker:
    """A thread that runs ``process(frame)`` on the newest frame ``offer``ed: frames arriving while it is busy
    replace the one waiting (counted in ``dropped``), never queue. ``submit`` runs a one-off job on the same thread
    ahead of the next frame. ``on_start`` runs first on the thread (slow model loads, thread priority). At most one
    frame per ``min_period_s``. An exception from one frame or job is logged; the worker carries on."""

    def __init__(self, node: Node, name: str, process: Callable[[Any], None], *,
                 on_start: Callable[[], None] | None = None, min_period_s: float = 0.0):
        self.node, self.name, self.process = node, name, process
        self.on_start = on_start
        self.min_period_s = min_period_s
        self.slot = NewestSlot()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def dropped(self) -> int:
        return self.slot.dropped

    def offer(self, frame: Any) -> None:
        self.slot.put(frame)

    def submit(self, job: Callable[[], Any]) -> concurrent.futures.Future:
        """The job's result (or exception) in a future, once the worker ran it."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            try:
                future.set_result(job())
            except Exception as exc:
                future.set_exception(exc)
        self.slot.put_job(run)
        return future

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.slot.close()
        join_thread(self.thread, timeout_s)

    def _run(self) -> None:
        if self.on_start is not None:
            self.on_start()
        last_start = float("-inf")
        while True:
            wait = last_start + self.min_period_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            item = self.slot.take()
            if item is None:
                return
            kind, value = item
            last_start = time.monotonic()
            try:
                value() if kind == JOB else self.process(value)
            except Exception as exc:   # one bad frame or backend hiccup must not stop the worker
                self.node.get_logger().error(f"{self.name} failed: {type(exc).__name__}: {exc}",
                                             throttle_duration_sec=5.0)


class PacedLoop:
    """A thread that calls ``step()`` at ``rate_hz`` on absolute deadlines, without a burst of catch-up steps after
    an overrun (core.pacing.Pacer). ``periods`` holds the intervals between step starts (jitter statistics).
    ``on_start`` runs first on the thread (e.g. to raise its scheduling priority). A failing step is logged and
    the loop goes on."""

    def __init__(self, node: Node, name: str, rate_hz: float, step: Callable[[], None], *,
                 on_start: Callable[[], None] | None = None):
        self.node, self.name, self.step = node, name, step
        self.period_s = 1.0 / rate_hz
        self.on_start = on_start
        self.log = PeriodLog()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def periods(self) -> list[float]:
        return self.log.periods

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self.stopping.set()
        join_thread(self.thread, timeout_s)

    def _run(self) -> None:
        if self.on_start is not None:
            self.on_start()
        pacer = Pacer(self.period_s, time.monotonic())
        while not self.stopping.is_set():
            self.log.record(time.monotonic())
            try:
                self.step()
            except Exception as exc:   # keep the loop going; say what broke
                self.node.get_logger().error(f"{self.name} step failed: {type(exc).__name__}: {exc}",
                                             throttle_duration_sec=1.0)
            self.stopping.wait(pacer.delay_after_step(time.monotonic()))
