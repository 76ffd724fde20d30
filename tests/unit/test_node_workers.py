"""nodes/base.py's worker threads (QueueWorker, LatestFrameWorker, PacedLoop, NodeThread) on a stand-in node: what
they run, how they stop, and that a thread that dies ends the node instead of leaving it looking alive."""
from __future__ import annotations

import threading
import time

from mmchat_ros.nodes.base import LatestFrameWorker, NodeThread, PacedLoop, QueueWorker


class Logger:
    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def error(self, message, **_):
        self.lines.append(("error", message))

    def fatal(self, message, **_):
        self.lines.append(("fatal", message))


class Context:
    def __init__(self):
        self.shut_down = threading.Event()

    def try_shutdown(self):
        self.shut_down.set()


class StandInNode:
    """What the workers use of a node: its logger and its context."""

    def __init__(self):
        self.logger, self.context, self.failed = Logger(), Context(), False

    def get_logger(self):
        return self.logger


def wait_until(condition, timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_queue_worker_processes_in_order_and_says_what_it_dropped():
    node, done, gate = StandInNode(), [], threading.Event()
    worker = QueueWorker(node, "speech", lambda item: (gate.wait(2.0), done.append(item)), capacity=2)
    worker.start()
    worker.offer("a")
    assert wait_until(lambda: worker.waiting == 0)            # "a" is in hand, blocked on the gate
    assert [worker.offer(item) for item in "bcd"] == [[], [], ["b"]]
    gate.set()
    assert wait_until(lambda: done == ["a", "c", "d"]) and worker.dropped == 1
    worker.stop()
    assert not worker.thread.is_alive()


def test_latest_frame_worker_keeps_one_frame_and_runs_jobs_first_and_survives_a_bad_frame():
    node, seen = StandInNode(), []

    def process(frame):
        if frame == "bad":
            raise ValueError("cannot read")
        seen.append(frame)
    worker = LatestFrameWorker(node, "frames", process)
    assert worker.queue.capacity == 1
    worker.start()
    worker.offer("bad")
    assert wait_until(lambda: node.logger.lines == [("error", "frames failed: ValueError: cannot read")])
    assert worker.submit(lambda: 42).result(timeout=2.0) == 42
    worker.offer("good")
    assert wait_until(lambda: seen == ["good"]) and not node.failed
    worker.stop()


def test_stop_runs_on_stop_before_waiting_and_on_end_on_the_thread():
    node, unblock, ended_on = StandInNode(), threading.Event(), []
    worker = QueueWorker(node, "player", lambda _item: unblock.wait(10.0), on_stop=unblock.set,
                         on_end=lambda: ended_on.append(threading.current_thread()))
    worker.start()
    worker.offer("a long sentence")
    assert wait_until(lambda: not worker.ready and worker.waiting == 0)
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 1.0 and ended_on == [worker.thread]
    assert worker.offer_when_room("after the stop") is False


def test_paced_loop_steps_at_its_rate_and_a_fatal_step_ends_the_node():
    node, steps = StandInNode(), []
    loop = PacedLoop(node, "physics", 200.0, lambda: steps.append(time.monotonic()))
    loop.start()
    assert wait_until(lambda: len(steps) >= 20)
    loop.stop()
    assert not loop.thread.is_alive() and 0.0045 < sum(loop.periods) / len(loop.periods) < 0.05   # paced, not free

    def broken():
        raise RuntimeError("diverged")
    loop = PacedLoop(node, "physics", 200.0, broken, end_node_on_error=True)
    loop.start()
    assert node.context.shut_down.wait(2.0) and node.failed
    assert node.logger.lines[-1] == ("fatal", "physics stopped: RuntimeError: diverged")
    loop.thread.join(2.0)
    assert not loop.thread.is_alive()


def test_paced_loop_logs_a_failing_step_and_goes_on_by_default():
    node, calls = StandInNode(), []

    def step():
        calls.append(1)
        raise RuntimeError("no link")
    loop = PacedLoop(node, "control", 500.0, step)
    loop.start()
    assert wait_until(lambda: len(calls) >= 5)
    loop.stop()
    assert not node.failed and node.logger.lines[0] == ("error", "control step failed: RuntimeError: no link")


def test_node_thread_stops_through_its_event_and_only_a_crash_ends_the_node():
    node = StandInNode()
    thread = NodeThread(node, "capture", lambda stopping: stopping.wait(10.0))
    thread.start()
    thread.stop()
    assert not thread.thread.is_alive() and not node.context.shut_down.is_set()

    def crash(_stopping):
        raise OSError("device unplugged")
    thread = NodeThread(node, "capture", crash)
    thread.start()
    assert node.context.shut_down.wait(2.0) and node.failed
    assert node.logger.lines[-1] == ("fatal", "capture stopped: OSError: device unplugged")
