"""The ROS-free parts of the nodes' worker threads: the hand-off of work to a consumer thread (the newest camera
frame to a worker slower than the camera, speech to a recogniser, sentences to a player), and the pacing of a
fixed-rate loop. nodes/base.py wraps them in threads."""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

ITEM, JOB = "item", "job"


class WorkQueue:
    """Items from producers to one consumer, oldest first, at most ``capacity`` of them waiting: a newer item then
    pushes out the oldest (counted in ``dropped``). With capacity 1 the consumer always gets the newest (camera
    frames); ``put_when_room`` waits for room instead (a pipeline stage that must not lose items). One-off jobs
    queue without limit and are taken before items. ``close`` wakes the consumer and waiting producers for good."""

    def __init__(self, capacity: int = 1):
        if capacity < 1:
            raise ValueError(f"capacity {capacity} must be >= 1")
        self.capacity = capacity
        self._changed = threading.Condition()
        self._items: deque[Any] = deque()
        self._jobs: deque[Callable[[], Any]] = deque()
        self._closed = False
        self._consumer_busy = False
        self.dropped = 0

    def put(self, item: Any) -> list[Any]:
        """Queues the item; returns the older ones it pushed out."""
        with self._changed:
            dropped = [self._items.popleft() for _ in range(len(self._items) - self.capacity + 1)]
            self.dropped += len(dropped)
            self._items.append(item)
            self._changed.notify_all()
            return dropped

    def put_when_room(self, item: Any, wanted: Callable[[], bool] = lambda: True, poll_s: float = 0.1) -> bool:
        """Queues the item once there is room; False, and not queued, when the queue closes first or ``wanted()``
        turns false meanwhile (checked at least every ``poll_s``)."""
        with self._changed:
            while not self._closed and wanted() and len(self._items) >= self.capacity:
                self._changed.wait(poll_s)
            if self._closed or not wanted():
                return False
            self._items.append(item)
            self._changed.notify_all()
            return True

    def put_job(self, job: Callable[[], Any]) -> None:
        with self._changed:
            self._jobs.append(job)
            self._changed.notify_all()

    def take(self) -> tuple[str, Any] | None:
        """(JOB, job) or (ITEM, item), waiting for one; None once closed. The consumer calls it when it is done
        with what it took before."""
        with self._changed:
            self._consumer_busy = False
            while not self._closed and not self._jobs and not self._items:
                self._changed.wait()
            if self._closed:
                return None
            self._consumer_busy = True
            self._changed.notify_all()   # room for a producer waiting in put_when_room
            return (JOB, self._jobs.popleft()) if self._jobs else (ITEM, self._items.popleft())

    def clear(self) -> list[Any]:
        """Takes back the items waiting (not the jobs)."""
        with self._changed:
            cleared = list(self._items)
            self._items.clear()
            self._changed.notify_all()
            return cleared

    @property
    def waiting(self) -> int:
        return len(self._items)

    @property
    def ready(self) -> bool:
        """Open, nothing waiting and the consumer done with what it took: an item put now is taken at once."""
        with self._changed:
            return not self._closed and not self._consumer_busy and not self._items and not self._jobs

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()


class Pacer:
    """Absolute deadlines one period apart, so the rate does not drift by the time each step takes. A step late by
    at most ``max_lag_s`` is caught up (a simulator keeping sim time in step with wall time); after a longer
    overrun the schedule restarts from then: no burst of catch-up steps. Period 0: as fast as possible."""

    def __init__(self, period_s: float, now: float, max_lag_s: float = 0.0):
        if not period_s >= 0:
            raise ValueError(f"period {period_s} s must be >= 0")
        self.period_s = period_s
        self.max_lag_s = max_lag_s
        self.deadline = now

    def delay_after_step(self, now: float) -> float:
        """Seconds to wait before the next step, called when a step ends at ``now``."""
        self.deadline += self.period_s
        delay = self.deadline - now
        if delay < -self.max_lag_s:
            self.deadline = now
        return max(delay, 0.0)


class PeriodLog:
    """The intervals between a loop's step starts, the last ``keep`` of them (at least ``keep // 2``)."""

    def __init__(self, keep: int = 5000):
        self.keep = keep
        self.periods: list[float] = []
        self._last: float | None = None

    def record(self, tick: float) -> None:
        if self._last is not None:
            self.periods.append(tick - self._last)
            if len(self.periods) > self.keep:
                del self.periods[:self.keep // 2]
        self._last = tick
