"""The ROS-free parts of the nodes' worker threads: the hand-off of the newest camera frame to a worker that is
slower than the camera, and the pacing of a fixed-rate loop. nodes/base.py wraps them in threads."""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

FRAME, JOB = "frame", "job"


class NewestSlot:
    """Frames from producers to one consumer: a frame not yet taken is replaced by a newer one (counted in
    ``dropped``), never queued, so the consumer always works on the newest. One-off jobs queue, and are taken
    before the frame. ``close`` wakes the consumer for good."""

    def __init__(self):
        self._ready = threading.Condition()
        self._frame: Any = None
        self._has_frame = False
        self._jobs: deque[Callable[[], Any]] = deque()
        self._closed = False
        self.dropped = 0

    def put(self, frame: Any) -> None:
        with self._ready:
            if self._has_frame:
                self.dropped += 1
            self._frame, self._has_frame = frame, True
            self._ready.notify()

    def put_job(self, job: Callable[[], Any]) -> None:
        with self._ready:
            self._jobs.append(job)
            self._ready.notify()

    def take(self) -> tuple[str, Any] | None:
        """(JOB, job) or (FRAME, frame), waiting for one; None once closed."""
        with self._ready:
            while not self._closed and not self._jobs and not self._has_frame:
                self._ready.wait()
            if self._closed:
                return None
            if self._jobs:
                return JOB, self._jobs.popleft()
            frame, self._frame, self._has_frame = self._frame, None, False
            return FRAME, frame

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


class Pacer:
    """Absolute deadlines one period apart, so the rate does not drift by the time each step takes. After an
    overrun the schedule restarts from then: no burst of catch-up steps."""

    def __init__(self, period_s: float, now: float):
        if not period_s > 0:
            raise ValueError(f"period {period_s} s must be > 0")
        self.period_s = period_s
        self.deadline = now

    def delay_after_step(self, now: float) -> float:
        """Seconds to wait before the next step, called when a step ends at ``now``."""
        self.deadline += self.period_s
        delay = self.deadline - now
        if delay <= 0:
            self.deadline = now
            return 0.0
        return delay


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
