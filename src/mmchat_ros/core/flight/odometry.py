"""The flight core's odometry: a plausibility gate, the latest reading carried forward to the control step's time,
freshness, and how long the vehicle has been at rest.

The gate refuses a reading farther than ``jump_m`` from where the previous one predicts the vehicle is (an
outlier); the same jump repeated by ``reset_samples`` readings in a row is an estimator reset: accepted, and
reported so that the caller drops whatever was planned in the old frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mmchat_ros.core.flight.control import VehicleState
from mmchat_ros.core.geometry import norm

AT_REST_SPEED_M_S = 0.2
AT_REST_RATE_RAD_S = 0.5
MAX_ODOM_PREDICTION_S = 0.1         # odometry older than `now` by up to this is propagated to `now`
ACCEL_SMOOTHING_S = 0.03            # time constant of the measured acceleration used for that propagation


@dataclass(frozen=True)
class OdometryUpdate:
    accepted: bool
    reason: str = ""                # why a reading was refused; for a reset, what happened
    reset: bool = False             # accepted as an estimator reset: targets in the old frame no longer hold


class Odometry:
    """The latest odometry, as measured and as propagated to the control step's time."""

    def __init__(self, timeout_s: float, jump_m: float, reset_samples: int):
        self.timeout_s = timeout_s
        self.jump_m = jump_m
        self.reset_samples = reset_samples
        self.state: VehicleState | None = None       # the latest reading, propagated to the control step's time
        self.measured: VehicleState | None = None    # the latest reading as measured (at `stamp`)
        self.stamp = -math.inf
        self.at_rest_since: float | None = None
        self._accel = np.zeros(3)
        self._jump: tuple[np.ndarray, int] | None = None   # an outlier position and how often it repeated

    def update(self, state: VehicleState, now: float) -> OdometryUpdate:
        """World-frame position / velocity, body→world attitude and body rates, measured at ``now``."""
        if not state.is_finite() or norm(state.quaternion_wxyz) < 1e-6:
            return OdometryUpdate(False, "odometry rejected: non-finite values or a zero quaternion")
        verdict = self._plausibility(state.position, now)
        if not verdict.accepted:
            return verdict
        q = state.quaternion_wxyz / norm(state.quaternion_wxyz)
        self.state = VehicleState(state.position.copy(), state.velocity.copy(), q, state.angular_velocity_body.copy())
        previous, previous_stamp = self.measured, self.stamp
        self.measured = self.state
        self.stamp = float(now)
        interval = self.stamp - previous_stamp
        if previous is not None and 0.0 < interval <= MAX_ODOM_PREDICTION_S:
            # The measured acceleration, smoothed (never the commanded one: that would close a loop through the
            # prediction).
            raw = (self.measured.velocity - previous.velocity) / interval
            self._accel += interval / (interval + ACCEL_SMOOTHING_S) * (raw - self._accel)
        at_rest = norm(state.velocity) < AT_REST_SPEED_M_S and \
            norm(state.angular_velocity_body) < AT_REST_RATE_RAD_S
        if not at_rest:
            self.at_rest_since = None
        elif self.at_rest_since is None:
            self.at_rest_since = float(now)
        return verdict

    def _plausibility(self, position: np.ndarray, now: float) -> OdometryUpdate:
        """Whether a reading is an outlier. After a gap longer than the timeout there is nothing to predict from,
        and the reading is taken as it is."""
        previous, since = self.measured, now - self.stamp
        if previous is None or not 0.0 <= since <= self.timeout_s:
            return OdometryUpdate(True)
        off = norm(position - (previous.position + previous.velocity * since))
        if off <= self.jump_m:
            self._jump = None
            return OdometryUpdate(True)
        seen = self._jump
        repeats = seen[1] + 1 if seen is not None and norm(position - seen[0]) <= self.jump_m else 1
        if repeats < self.reset_samples:
            self._jump = (np.asarray(position, float).copy(), repeats)
            return OdometryUpdate(False, f"odometry rejected: {off:.2f} m from where the previous reading puts the "
                                         f"vehicle {since * 1000:.0f} ms later (more than odom_jump_m="
                                         f"{self.jump_m:g}): an outlier")
        # The estimator moved its frame: believe it, but nothing planned in the old frame may be flown.
        self._jump = None
        return OdometryUpdate(True, f"odometry reset: the position jumped {off:.2f} m and stayed; holding at the new "
                                    "estimate", reset=True)

    def fresh(self, now: float) -> bool:
        # Symmetric: odometry stamped slightly ahead of `now` (another clock reading of the same time) is fresh.
        return self.state is not None and abs(now - self.stamp) <= self.timeout_s

    def at_rest(self, now: float, for_s: float = 0.0) -> bool:
        """Fresh odometry shows the vehicle still (slow, not turning), and has for ``for_s`` seconds."""
        return self.fresh(now) and self.at_rest_since is not None and now - self.at_rest_since >= for_s

    def propagate(self, now: float) -> None:
        """Odometry stamped earlier than now (an external estimator's latency) is carried forward to now with the
        measured acceleration: tracking the measured past position would leave the vehicle one latency behind
        its reference."""
        measured = self.measured
        lag = now - self.stamp
        if measured is None or not 0.0 < lag <= MAX_ODOM_PREDICTION_S:
            return
        accel = self._accel
        self.state = VehicleState(measured.position + measured.velocity * lag + 0.5 * accel * lag * lag,
                                  measured.velocity + accel * lag, measured.quaternion_wxyz,
                                  measured.angular_velocity_body)
