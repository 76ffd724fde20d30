"""References that stay inside the vehicle's kinematic limits (speed, acceleration, jerk).

The controller feeds a reference's velocity and acceleration forward; a reference that asks for more than the
envelope allows would be clipped downstream and leave the feedback loops chasing it. Everything here produces
references whose speed, acceleration and jerk never exceed ``KinematicLimits``:

- ``TrapezoidProfile``: rest-to-rest distance with speed and acceleration limits (no jerk limit);
- ``SmoothProfile``: the same, with bounded jerk: the trapezoid's velocity averaged over a window of a/j seconds
  (a moving average cannot raise a speed or an acceleration above the original's bound, keeps the distance, and
  turns every acceleration step into a ramp of slope <= j);
- ``GoToShaper``: an online, retargetable reference towards a fixed target (operator go-to, hover targets),
  jerk-limited per axis with the limits split along the direction of travel;
- ``FigureEight``: the bench's lemniscate, uniformly slowed (time-scaled) until it fits the limits, with a
  smooth start.

Pure Python + numpy, no clock, no ROS.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KinematicLimits:
    """What a reference may ask of the vehicle (world frame)."""
    speed_xy: float           # m/s, horizontal norm
    speed_z: float            # m/s
    accel_xy: float           # m/s², horizontal norm
    accel_up: float           # m/s² above hover
    accel_down: float         # m/s² below hover
    jerk_xy: float            # m/s³
    jerk_z: float             # m/s³

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"kinematic limit {name} must be finite and > 0, got {value!r}")

    def scaled(self, speed: float = 1.0, accel: float = 1.0, jerk: float = 1.0) -> "KinematicLimits":
        return KinematicLimits(self.speed_xy * speed, self.speed_z * speed, self.accel_xy * accel,
                               self.accel_up * accel, self.accel_down * accel, self.jerk_xy * jerk,
                               self.jerk_z * jerk)

    def along(self, direction: np.ndarray) -> tuple[float, float, float]:
        """(speed, acceleration, jerk) allowed along a straight line in ``direction`` (world, any length): the
        largest values whose horizontal and vertical parts both stay inside their limits."""
        d = np.asarray(direction, float)
        norm = float(np.linalg.norm(d))
        if norm < 1e-12:
            return self.speed_xy, self.accel_xy, self.jerk_xy
        horizontal = math.hypot(d[0], d[1]) / norm
        vertical = abs(d[2]) / norm
        out = []
        for xy, z in ((self.speed_xy, self.speed_z), (self.accel_xy, min(self.accel_up, self.accel_down)),
                      (self.jerk_xy, self.jerk_z)):
            value = math.inf
            if horizontal > 1e-9:
                value = min(value, xy / horizontal)
            if vertical > 1e-9:
                value = min(value, z / vertical)
            out.append(value)
        return out[0], out[1], out[2]


# ------------------------------------------------------------------------------------------ rest-to-rest
class TrapezoidProfile:
    """Distance s(t) along a path of length `distance` with speed ≤ max_speed and acceleration ≤ acceleration."""

    def __init__(self, distance: float, max_speed: float, acceleration: float):
        self.distance = abs(float(distance))
        accel_distance = max_speed * max_speed / acceleration
        if self.distance >= accel_distance:         # reaches cruise speed
            self.peak_speed = max_speed
            self.accel_time = max_speed / acceleration
            self.cruise_time = (self.distance - accel_distance) / max_speed
        else:                                         # triangle: accelerate half-way, then brake
            self.peak_speed = math.sqrt(self.distance * acceleration)
            self.accel_time = self.peak_speed / acceleration
            self.cruise_time = 0.0
        self.acceleration = acceleration
        self.duration = 2.0 * self.accel_time + self.cruise_time

    def at(self, t: float) -> tuple[float, float, float]:
        """(distance covered, speed, acceleration) at time t after the start."""
        a, ta, tc = self.acceleration, self.accel_time, self.cruise_time
        if t <= 0.0:
            return 0.0, 0.0, 0.0
        if t < ta:
            return 0.5 * a * t * t, a * t, a
        if t < ta + tc:
            return 0.5 * a * ta * ta + self.peak_speed * (t - ta), self.peak_speed, 0.0
        if t < self.duration:
            remaining = self.duration - t
            return self.distance - 0.5 * a * remaining * remaining, a * remaining, -a
        return self.distance, 0.0, 0.0

    def integral(self, t: float) -> float:
        """∫₀ᵗ s(u) du (the moving average of SmoothProfile needs it)."""
        a, ta, tc, vp, d = self.acceleration, self.accel_time, self.cruise_time, self.peak_speed, self.distance
        if t <= 0.0:
            return 0.0
        if t < ta:
            return a * t ** 3 / 6.0
        s1, area1 = 0.5 * a * ta * ta, a * ta ** 3 / 6.0
        t2 = ta + tc
        if t < t2:
            u = t - ta
            return area1 + s1 * u + 0.5 * vp * u * u
        area2 = area1 + s1 * tc + 0.5 * vp * tc * tc
        end = self.duration
        if t < end:
            return area2 + d * (t - t2) - a / 6.0 * ((end - t2) ** 3 - (end - t) ** 3)
        area3 = area2 + d * (end - t2) - a / 6.0 * (end - t2) ** 3
        return area3 + d * (t - end)


class SmoothProfile:
    """Rest-to-rest distance with speed ≤ max_speed, acceleration ≤ acceleration and jerk ≤ jerk.

    The trapezoid's motion averaged over a window of w seconds: s(t) = (S(t) − S(t−w)) / w with S = ∫ s. The
    average of speeds ≤ v is ≤ v, of accelerations ≤ a is ≤ a; jerk is (a(t) − a(t−w)) / w, and a jumps by a
    (2a when the window can span both the speeding-up and the braking), so w = a/j (or 2a/j) bounds it by j.
    The move ends exactly at `distance`, w seconds later than the trapezoid.
    """

    def __init__(self, distance: float, max_speed: float, acceleration: float, jerk: float = math.inf):
        self.base = TrapezoidProfile(distance, max_speed, acceleration)
        self.distance = self.base.distance
        window = acceleration / jerk if math.isfinite(jerk) and jerk > 0.0 else 0.0
        if window > 0.0 and self.base.cruise_time < window:
            window *= 2.0
        self.window = window
        self.duration = self.base.duration + window
        self.peak_speed = self.base.peak_speed

    def at(self, t: float) -> tuple[float, float, float]:
        """(distance covered, speed, acceleration) at time t after the start."""
        w = self.window
        if w <= 0.0:
            return self.base.at(t)
        if t <= 0.0:
            return 0.0, 0.0, 0.0
        if t >= self.duration:
            return self.distance, 0.0, 0.0
        s_now, v_now, _ = self.base.at(t)
        s_then, v_then, _ = self.base.at(t - w)
        position = (self.base.integral(t) - self.base.integral(t - w)) / w
        return position, (s_now - s_then) / w, (v_now - v_then) / w


# ------------------------------------------------------------------------------------------------- online
class _StopProfile:
    """Braking from speed v0 to rest with deceleration ≤ a and jerk ≤ j: the constant-deceleration stop averaged
    over a window of a/j seconds (as SmoothProfile), shifted to start at distance 0 with speed v0."""

    def __init__(self, speed: float, deceleration: float, jerk: float):
        self.v0, self.a = abs(float(speed)), float(deceleration)
        self.stop_time = self.v0 / self.a
        self.window = self.a / jerk if math.isfinite(jerk) and jerk > 0.0 else 0.0
        self.duration = self.stop_time + self.window
        self._offset = self._smoothed(0.0)[0]
        self.distance = self._smoothed(self.duration)[0] - self._offset

    def _base(self, u: float) -> tuple[float, float, float]:
        """Unsmoothed stop: (s, v, S = ∫₀ᵘ s) with constant speed before u = 0."""
        v0, a, t_stop = self.v0, self.a, self.stop_time
        if u < 0.0:
            return v0 * u, v0, 0.5 * v0 * u * u
        if u < t_stop:
            return v0 * u - 0.5 * a * u * u, v0 - a * u, 0.5 * v0 * u * u - a * u ** 3 / 6.0
        end = v0 * t_stop - 0.5 * a * t_stop ** 2
        area = 0.5 * v0 * t_stop ** 2 - a * t_stop ** 3 / 6.0
        return end, 0.0, area + end * (u - t_stop)

    def _smoothed(self, t: float) -> tuple[float, float, float]:
        w = self.window
        if w <= 0.0:
            s, v, _ = self._base(t)
            return s, v, (-self.a if 0.0 <= t < self.stop_time else 0.0)
        s1, v1, area1 = self._base(t)
        s0, v0, area0 = self._base(t - w)
        return (area1 - area0) / w, (s1 - s0) / w, (v1 - v0) / w

    def at(self, t: float) -> tuple[float, float, float]:
        t = min(max(t, 0.0), self.duration)
        s, v, a = self._smoothed(t)
        return s - self._offset, v, a


class GoToShaper:
    """Reference towards a fixed target (operator go-to, hover targets), inside the kinematic limits.

    From rest: a SmoothProfile along the straight line, with the line's speed / acceleration / jerk (its
    horizontal and vertical parts each within their limits), so it ends exactly at the target with no
    overshoot. A new target while the reference moves: it first brakes along its current velocity (jerk-limited,
    within the limits), then starts a new line from where it stopped; limits are never exceeded, at the cost
    of a stop when a go-to is redirected mid-flight.
    """

    def __init__(self, limits: KinematicLimits):
        self.limits = limits
        self.position = np.zeros(3)
        self.velocity = np.zeros(3)
        self.acceleration = np.zeros(3)
        self.target: np.ndarray | None = None
        self._segment: tuple[np.ndarray, np.ndarray, SmoothProfile | _StopProfile] | None = None
        self._elapsed = 0.0

    def reset(self, position, velocity=(0.0, 0.0, 0.0), acceleration=(0.0, 0.0, 0.0)) -> None:
        """Follow another reference up to here: the shaper continues from this state."""
        self.position = np.asarray(position, float).copy()
        self.velocity = np.asarray(velocity, float).copy()
        self.acceleration = np.asarray(acceleration, float).copy()
        self.target = None
        self._segment = None

    def set_target(self, target) -> None:
        target = np.asarray(target, float).reshape(3)
        if self.target is not None and np.array_equal(target, self.target):
            return
        self.target = target.copy()
        self._plan()

    def brake(self) -> np.ndarray:
        """Stop as soon as the limits allow: the target becomes the point where the braking ends (returned)."""
        self._elapsed = 0.0
        speed = float(np.linalg.norm(self.velocity))
        if speed <= 1e-6:
            self.target = self.position.copy()
            self._segment = None
            return self.target.copy()
        self.target = None
        self._plan()
        start, direction, profile = self._segment
        self.target = start + direction * profile.distance
        return self.target.copy()

    def _plan(self) -> None:
        self._elapsed = 0.0
        speed = float(np.linalg.norm(self.velocity))
        if speed > 1e-6:
            direction = self.velocity / speed
            _, accel, jerk = self.limits.along(direction)
            if direction[2] > 1e-9:          # braking a climb pulls below hover, and vice versa
                accel = min(accel, self.limits.accel_down / direction[2])
            self._segment = (self.position.copy(), direction, _StopProfile(speed, accel, jerk))
            return
        delta = self.target - self.position
        length = float(np.linalg.norm(delta))
        if length < 1e-9:
            self._segment = None
            self.position = self.target.copy()
            return
        speed_limit, accel, jerk = self.limits.along(delta)
        self._segment = (self.position.copy(), delta / length, SmoothProfile(length, speed_limit, accel, jerk))

    @property
    def done(self) -> bool:
        return self.target is None or (self._segment is None and bool(np.allclose(self.position, self.target)))

    def update(self, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance by dt; returns (position, velocity, acceleration) of the reference."""
        if self._segment is not None:
            self._elapsed += dt
            start, direction, profile = self._segment
            s, v, a = profile.at(self._elapsed)
            self.position = start + direction * s
            self.velocity = direction * v
            self.acceleration = direction * a
            if self._elapsed >= profile.duration:
                self.velocity = np.zeros(3)
                self.acceleration = np.zeros(3)
                if isinstance(profile, _StopProfile) and not np.allclose(self.position, self.target):
                    self._plan()                  # stopped: now the line to the target
                elif isinstance(profile, _StopProfile):
                    self.position = self.target.copy()
                    self._segment = None
                else:
                    self.position = self.target.copy()
                    self._segment = None
        return self.position.copy(), self.velocity.copy(), self.acceleration.copy()


# --------------------------------------------------------------------------------------------- figure eight
def time_scale_factor(peak_speed: float, peak_accel: float, peak_jerk: float, speed: float, accel: float,
                      jerk: float) -> float:
    """Largest k ≤ 1 for which a path flown k times slower-in-time stays inside the limits: speed scales with k,
    acceleration with k², jerk with k³."""
    k = 1.0
    if peak_speed > speed:
        k = min(k, speed / peak_speed)
    if peak_accel > accel:
        k = min(k, math.sqrt(accel / peak_accel))
    if peak_jerk > jerk:
        k = min(k, (jerk / peak_jerk) ** (1.0 / 3.0))
    return k


class FigureEight:
    """Lemniscate of Gerono x = a sin φ, y = a sin φ cos φ in a horizontal plane through ``centre``, timed for
    ``mean_speed`` and slowed uniformly (``scale`` < 1) where that would exceed the limits, with a smooth start:
    the phase rate ramps up over ``ramp_s`` seconds (long enough that the ramp, too, stays within the limits)."""

    def __init__(self, centre, size_m: float, mean_speed: float, limits: KinematicLimits, margin: float = 1.0):
        self.centre = np.asarray(centre, float).reshape(3)
        self.a = float(size_m)
        theta = np.linspace(0.0, 2.0 * math.pi, 4001)
        length = float(np.sum(np.hypot(np.diff(self.a * np.sin(theta)),
                                       np.diff(self.a * np.sin(theta) * np.cos(theta)))))
        self.nominal_omega = 2.0 * math.pi * mean_speed / length
        # Peaks at the nominal timing (analytic derivatives sampled over a period).
        _, v, a, j = self._derivatives(theta, self.nominal_omega, 0.0, 0.0)
        peak_v = float(np.max(np.linalg.norm(v, axis=0)))
        peak_a = float(np.max(np.linalg.norm(a, axis=0)))
        peak_j = float(np.max(np.linalg.norm(j, axis=0)))
        # A margin under each limit leaves the feedback loops room to correct errors without being clipped.
        self.scale = time_scale_factor(peak_v, peak_a, peak_j, margin * limits.speed_xy, margin * limits.accel_xy,
                                       margin * limits.jerk_xy)
        self.omega = self.nominal_omega * self.scale
        self.limits = limits
        self.ramp_s = 1.0
        while self.ramp_s < 60.0 and not self._ramp_fits(margin):
            self.ramp_s *= 1.5

    @property
    def slowdown_pct(self) -> float:
        return (1.0 - self.scale) * 100.0

    @property
    def period_s(self) -> float:
        return 2.0 * math.pi / self.omega

    def _phase(self, t: float) -> tuple[float, float, float]:
        """φ, φ', φ'' with φ' ramping from 0 to ω over ramp_s (smoothstep, so φ'' is continuous)."""
        w, r = self.omega, self.ramp_s
        if t <= 0.0:
            return 0.0, 0.0, 0.0
        if t < r:
            u = t / r
            phase = w * r * (u ** 3 - 0.5 * u ** 4)
            return phase, w * (3 * u * u - 2 * u ** 3), w * (6 * u - 6 * u * u) / r
        return w * r * 0.5 + w * (t - r), w, 0.0

    def _derivatives(self, phi, rate, rate_dot, rate_ddot):
        a = self.a
        s, c = np.sin(phi), np.cos(phi)
        s2, c2 = np.sin(2 * phi), np.cos(2 * phi)
        # f(φ) = (a sin φ, a/2 sin 2φ) and its φ-derivatives.
        f1 = np.array([a * c, a * c2])
        f2 = np.array([-a * s, -2 * a * s2])
        f3 = np.array([-a * c, -4 * a * c2])
        pos = np.array([a * s, 0.5 * a * s2])
        vel = f1 * rate
        acc = f2 * rate ** 2 + f1 * rate_dot
        jerk = f3 * rate ** 3 + 3 * f2 * rate * rate_dot + f1 * rate_ddot
        return pos, vel, acc, jerk

    def _ramp_fits(self, margin: float) -> bool:
        for t in np.linspace(0.0, self.ramp_s, 200):
            _, v, a = self.reference(float(t))
            if math.hypot(*v[:2]) > margin * self.limits.speed_xy or math.hypot(*a[:2]) > margin * self.limits.accel_xy:
                return False
        return True

    def reference(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position, velocity, acceleration) at time t after the start (world frame)."""
        phi, rate, rate_dot = self._phase(t)
        pos, vel, acc, _ = self._derivatives(phi, rate, rate_dot, 0.0)
        return (self.centre + np.array([pos[0], pos[1], 0.0]), np.array([vel[0], vel[1], 0.0]),
                np.array([acc[0], acc[1], 0.0]))
