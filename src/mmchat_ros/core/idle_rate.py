"""A slow loop while the vehicle rests: a vehicle standing still on the ground, disarmed, with nothing asked of it
needs no 250 Hz control loop and no 250 Hz odometry. ``IdleRate`` gives a loop its rate from that condition; the
node calls ``wake`` when anything asks for motion (a take-off, a plan, a command, an armed motor command) and sets
the loop to the full rate at once. docs/flight_control.md ("Idle rate on the ground") says what stays on."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RestLimits:
    """Below these the vehicle stands still: any faster (pushed, picked up, falling) and its loops run at full
    rate."""
    speed_m_s: float = 0.05
    angular_rate_rad_s: float = 0.1


def at_rest(velocity: np.ndarray, angular_velocity: np.ndarray, limits: RestLimits = RestLimits()) -> bool:
    """Whether a vehicle moving at ``velocity`` (m/s) and turning at ``angular_velocity`` (rad/s) stands still;
    a non-finite reading does not."""
    speed, turn = float(np.linalg.norm(velocity)), float(np.linalg.norm(angular_velocity))
    return speed <= limits.speed_m_s and turn <= limits.angular_rate_rad_s   # NaN compares False


class IdleRate:
    """The rate of a loop that may idle: ``full_hz`` unless the vehicle has been resting for ``settle_s``, then
    ``idle_hz``. ``idle_hz`` <= 0 never idles. ``wake`` restarts the settling: full rate now and for ``settle_s``
    more, so a request that changes nothing (a refused take-off) still gets the full rate while it is answered."""

    def __init__(self, full_hz: float, idle_hz: float, settle_s: float):
        if idle_hz > 0 and not idle_hz < full_hz:
            raise ValueError(f"idle rate {idle_hz} Hz must be below the full rate {full_hz} Hz (or 0: never idle)")
        if not settle_s >= 0:
            raise ValueError(f"settle time {settle_s} s must be >= 0")
        self.full_hz, self.idle_hz, self.settle_s = float(full_hz), float(idle_hz), float(settle_s)
        self._resting_since: float | None = None

    @property
    def enabled(self) -> bool:
        return self.idle_hz > 0

    def rate_hz(self, resting: bool, now: float) -> float:
        """The loop's rate at ``now`` (seconds, any monotonic clock), told whether the vehicle rests."""
        if not (resting and self.enabled):
            self._resting_since = None
            return self.full_hz
        if self._resting_since is None:
            self._resting_since = now
        return self.idle_hz if now - self._resting_since >= self.settle_s else self.full_hz

    def wake(self) -> float:
        """Something asks for motion: the full rate, which the caller sets at once."""
        self._resting_since = None
        return self.full_hz
