"""Fewer camera frames while there is nothing to see: a recogniser that finds nothing in view (no hand) looks at
``idle_hz`` frames a second instead of every frame, and at every frame again from the first frame that shows
something. Pure Python, no ROS.

Looking for a hand that is not there is the recogniser's most expensive case (MediaPipe runs palm detection on the
whole frame; while it tracks a hand it does not). The price is the first sight of a hand: it comes up to one idle
period later than at the full rate (``IdleFrameGate.worst_first_sight_delay_s``)."""
from __future__ import annotations

import math

from mmchat_ros.core.idle_rate import IdleRate

PERIOD_TOLERANCE = 0.9


class IdleFrameGate:
    """Which frames a recogniser takes: all of them while something was in view within the last ``settle_s``,
    else one per ``1 / idle_hz`` (``idle_hz`` 0: all, always). ``admit`` is asked for each arriving frame;
    ``seen`` is told, after each processed frame, whether it showed something."""

    def __init__(self, idle_hz: float, settle_s: float):
        self.retune(idle_hz, settle_s)
        self.in_view = False
        self.last_admitted = -math.inf
        self.skipped = 0

    def retune(self, idle_hz: float, settle_s: float) -> None:
        """New rates (a live parameter change); raises ValueError for an idle rate < 0 or a settle time < 0."""
        if not idle_hz >= 0:
            raise ValueError(f"idle rate {idle_hz} Hz must be >= 0 (0: never idle)")
        self.rate = IdleRate(math.inf, idle_hz, settle_s)

    @property
    def worst_first_sight_delay_s(self) -> float:
        """How much later than at the full rate a hand appearing while idle is seen at worst."""
        return 1.0 / self.rate.idle_hz if self.rate.enabled else 0.0

    def seen(self, something_in_view: bool) -> None:
        """The last processed frame showed something (a hand): every frame is taken from the next one on."""
        self.in_view = something_in_view
        if something_in_view:
            self.rate.wake()

    def admit(self, now: float) -> bool:
        """Whether the frame arriving at ``now`` (seconds, a monotonic clock) is processed; one refused is counted
        in ``skipped``."""
        period_s = 1.0 / self.rate.rate_hz(not self.in_view, now)
        # A tenth of the period early still counts: frame times jitter, and a frame due exactly one period on
        # (5 Hz of a 15 Hz camera) must not wait for the next one.
        if now - self.last_admitted < PERIOD_TOLERANCE * period_s:
            self.skipped += 1
            return False
        self.last_admitted = now
        return True
