"""The one way to write an mmchat_ros node: ``MmchatNode`` with its declared parameters, and the threads nodes need:
``QueueWorker`` (work handed to one thread: ``LatestFrameWorker`` for inference on the newest camera frame, a longer
queue for speech or sentences), ``PacedLoop`` (a fixed-rate loop) and ``NodeThread`` (a thread that blocks in a
device read or a server's loop of its own).

Worker threads stop before the ROS context goes: run_node stops the node (``shutdown``) on SIGINT/SIGTERM before it
shuts rclpy down, and the context's on-shutdown hook stops them too when something else shuts it down. So a worker
never publishes into a dead context and needs no ``context.ok()`` checks.
"""
from __future__ import annotations

import concurrent.futures
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from rclpy.node import Node

from mmchat_ros.core.pacing import JOB, Pacer, PeriodLog, WorkQueue
from mmchat_ros.core.topics import Topic
from mmchat_ros.nodes.common import Param, Params, topic_publisher, topic_subscription
from mmchat_ros.nodes.qos_watch import QosWatch, no_event_handlers


def join_thread(thread: threading.Thread, timeout_s: float) -> None:
    """Waits for a node's thread to end, unless the caller is that thread: a thread that ends the node
    (``context.try_shutdown()``) runs the context's shutdown hook, and so the node's stop, itself."""
    if thread is not threading.current_thread() and thread.is_alive():
        thread.join(timeout=timeout_s)


def fail_node(node: Node, message: str) -> None:
    """Ends the node from one of its threads: logged fatal, the spin returns and run_node exits with status 1."""
    node.get_logger().fatal(message)
    node.failed = True
    node.context.try_shutdown()


class MmchatNode(Node):
    """A node with declared parameters (``self.p``, from a PARAMS table; ``on_change`` applies live ones, see
    Params), publishers and subscriptions on the graph's topics (core/topics.py), and worker threads that are
    stopped before the context is shut down. Subclasses that hold more (a model, a device) release it in
    ``close``, which runs once, after the workers stopped."""

    def __init__(self, name: str, params: dict[str, Param],
                 on_change: Callable[[dict[str, Any]], str | None] | None = None, **node_options):
        super().__init__(name, **node_options)
        self.p = Params(self, params, on_change)
        self.failed = False   # set by a thread that ended the node: exit status 1
        self._workers: list[Worker] = []
        self._stopped = False
        self.context.on_shutdown(self.shutdown)
        self._qos_watch().start(lambda period_s, check: Node.create_timer(self, period_s, check))

    # Publishers and subscriptions come without rclpy's default event handlers, which the executor walks on every
    # wake; the graph is checked for peers that can't match instead (nodes/qos_watch.py says what that saves).
    def create_publisher(self, *args, **kwargs):
        return self._watched("publisher", super().create_publisher, args, kwargs)

    def create_subscription(self, *args, **kwargs):
        return self._watched("subscription", super().create_subscription, args, kwargs)

    def _watched(self, kind: str, create: Callable, args: tuple, kwargs: dict):
        if "event_callbacks" in kwargs:      # the caller's own handlers
            return create(*args, **kwargs)
        entity = create(*args, event_callbacks=no_event_handlers(kind), **kwargs)
        self._qos_watch().add(kind, entity)
        return entity

    def _qos_watch(self) -> QosWatch:
        # Made on first use: rclpy's Node.__init__ makes its parameter-event publisher before ours runs.
        if "qos_watch" not in self.__dict__:
            self.qos_watch = QosWatch(self)
        return self.qos_watch

    def publish_to(self, topic: Topic, msg_type: type, **options):
        return topic_publisher(self, topic, msg_type, **options)

    def subscribe_to(self, topic: Topic, msg_type: type, callback: Callable[[Any], Any], **options):
        return topic_subscription(self, topic, msg_type, callback, **options)

    def start_worker(self, worker: Worker) -> None:
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


class Worker:
    """What a node's threads share. ``on_start`` and ``on_end`` run on the thread, first and last (slow model
    loads, thread priority; releasing a GL context bound to the thread). ``stop`` sets ``stopping``, calls
    ``on_stop`` (to unblock what the thread waits in: a server's loop, audio playback) and waits for the thread,
    ``stop_timeout_s`` at most (one stuck in a device call is left behind, a daemon). A thread whose work cannot be
    cut short in native code (a model load, a decode) says ``finish_before_exit``: the interpreter then waits for
    it before it exits, even once the stop's wait ran out, because a thread still inside such a call when the
    interpreter finalizes aborts the process ('terminate called without an active exception', exit -6). An
    exception that escapes the thread ends the node (``fail_node``): a dead worker must not leave a node that looks
    alive."""

    stop_timeout_s = 5.0

    def __init__(self, node: Node, name: str, *, on_start: Callable[[], None] | None = None,
                 on_end: Callable[[], None] | None = None, on_stop: Callable[[], None] | None = None,
                 stop_timeout_s: float | None = None, finish_before_exit: bool = False):
        self.node, self.name = node, name
        self.on_start, self.on_end, self.on_stop = on_start, on_end, on_stop
        if stop_timeout_s is not None:
            self.stop_timeout_s = stop_timeout_s
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=not finish_before_exit)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        self.stopping.set()
        if self.on_stop is not None:
            self.on_stop()
        join_thread(self.thread, self.stop_timeout_s if timeout_s is None else timeout_s)

    def _main(self) -> None:
        try:
            if self.on_start is not None:
                self.on_start()
            self._run()
            if self.on_end is not None:
                self.on_end()
        except Exception as exc:
            if not self.stopping.is_set():
                fail_node(self.node, f"{self.name} stopped: {type(exc).__name__}: {exc}")

    def _run(self) -> None:
        raise NotImplementedError


class QueueWorker(Worker):
    """A thread that runs ``process(item)`` on the items ``offer``ed, oldest first, ``capacity`` of them waiting at
    most: beyond, the oldest waiting is dropped (returned by ``offer``, counted in ``dropped``); capacity 1 is
    ``LatestFrameWorker``. ``offer_when_room`` waits for room instead. ``submit`` runs a one-off job on the same
    thread ahead of the next item. At most one item per ``min_period_s``. An exception from one item or job is
    logged; the worker carries on."""

    def __init__(self, node: Node, name: str, process: Callable[[Any], None], *, capacity: int = 1,
                 min_period_s: float = 0.0, **hooks):
        super().__init__(node, name, **hooks)
        self.process = process
        self.min_period_s = min_period_s
        self.queue = WorkQueue(capacity)

    @property
    def dropped(self) -> int:
        return self.queue.dropped

    @property
    def waiting(self) -> int:
        return self.queue.waiting

    @property
    def ready(self) -> bool:
        """Nothing waiting and nothing in hand: an item offered now is processed at once."""
        return self.queue.ready

    def offer(self, item: Any) -> list[Any]:
        """Queues the item; returns the older ones it pushed out."""
        return self.queue.put(item)

    def offer_when_room(self, item: Any, wanted: Callable[[], bool] = lambda: True) -> bool:
        """Queues the item once there is room: False when the worker stops first or ``wanted()`` turns false."""
        return self.queue.put_when_room(item, wanted)

    def clear(self) -> list[Any]:
        """Takes back the items waiting."""
        return self.queue.clear()

    def submit(self, job: Callable[[], Any]) -> concurrent.futures.Future:
        """The job's result (or exception) in a future, once the worker ran it."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            try:
                future.set_result(job())
            except Exception as exc:
                future.set_exception(exc)
        self.queue.put_job(run)
        return future

    def stop(self, timeout_s: float | None = None) -> None:
        self.queue.close()
        super().stop(timeout_s)

    def _run(self) -> None:
        last_start = float("-inf")
        while True:
            wait = last_start + self.min_period_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            taken = self.queue.take()
            if taken is None:
                return
            kind, value = taken
            last_start = time.monotonic()
            try:
                value() if kind == JOB else self.process(value)
            except Exception as exc:   # one bad item or backend hiccup must not stop the worker
                self.node.get_logger().error(f"{self.name} failed: {type(exc).__name__}: {exc}",
                                             throttle_duration_sec=5.0)


class LatestFrameWorker(QueueWorker):
    """A QueueWorker for camera frames: one waits at most, so a worker slower than the camera always gets the
    newest; the frames it replaces are counted in ``dropped``."""

    def __init__(self, node: Node, name: str, process: Callable[[Any], None], **options):
        super().__init__(node, name, process, capacity=1, **options)


class PacedLoop(Worker):
    """A thread that calls ``step()`` at ``rate_hz`` (inf: as fast as it can) on absolute deadlines; a step late by
    up to ``max_lag_s`` is caught up, a longer overrun restarts the schedule without a burst of catch-up steps
    (core.pacing.Pacer). ``periods`` holds the intervals between step starts (jitter statistics). A failing step
    is logged and the loop goes on, or, with ``end_node_on_error``, ends the node (a simulator's physics).
    ``set_rate`` changes the rate from any thread (a loop that idles slowly while nothing is asked of it)."""

    stop_timeout_s = 2.0

    def __init__(self, node: Node, name: str, rate_hz: float, step: Callable[[], None], *, max_lag_s: float = 0.0,
                 end_node_on_error: bool = False, **hooks):
        super().__init__(node, name, **hooks)
        self.step = step
        self.period_s = self._period(rate_hz)
        self.max_lag_s = max_lag_s
        self.end_node_on_error = end_node_on_error
        self.log = PeriodLog()
        self._wake = threading.Event()     # ends the wait for the next step: a faster rate, or the stop

    @staticmethod
    def _period(rate_hz: float) -> float:
        return 0.0 if math.isinf(rate_hz) else 1.0 / rate_hz

    @property
    def periods(self) -> list[float]:
        return self.log.periods

    def set_rate(self, rate_hz: float) -> None:
        """Step at ``rate_hz`` from now on: a faster rate at once (the wait for the slower rate's next step ends),
        a slower one after the next step. ``periods`` starts afresh (its statistics are about one rate)."""
        period_s = self._period(rate_hz)
        if period_s == self.period_s:
            return
        faster = period_s < self.period_s
        self.period_s = period_s
        self.log = PeriodLog()
        if faster:
            self._wake.set()

    def stop(self, timeout_s: float | None = None) -> None:
        self.stopping.set()
        self._wake.set()
        super().stop(timeout_s)

    def _run(self) -> None:
        pacer = Pacer(self.period_s, time.monotonic(), self.max_lag_s)
        while not self.stopping.is_set():
            # Cleared before the period is compared: a set_rate after this line leaves the wait below short.
            self._wake.clear()
            if pacer.period_s != self.period_s:
                pacer = Pacer(self.period_s, time.monotonic(), self.max_lag_s)
            self.log.record(time.monotonic())
            try:
                self.step()
            except Exception as exc:
                if self.end_node_on_error:
                    raise
                self.node.get_logger().error(f"{self.name} step failed: {type(exc).__name__}: {exc}",
                                             throttle_duration_sec=1.0)   # keep the loop going; say what broke
            self._wake.wait(pacer.delay_after_step(time.monotonic()))


class NodeThread(Worker):
    """A thread that is neither a queue nor a paced loop: ``run(stopping)`` blocks in something of its own (a device
    read, a source that sets the pace, a server's loop) until ``stopping`` is set or ``on_stop`` unblocks it."""

    def __init__(self, node: Node, name: str, run: Callable[[threading.Event], None], **hooks):
        super().__init__(node, name, **hooks)
        self.run = run

    def _run(self) -> None:
        self.run(self.stopping)
