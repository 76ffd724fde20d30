"""FlightCoreConfig: the flight core's settings (take-off, landing, timeouts, odometry gate, envelope, plan, mux),
checked when made; ``from_dict`` builds it from node parameters or YAML."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from mmchat_ros.core.flight.envelope import EnvelopeConfig
from mmchat_ros.core.flight.gains import DEFAULT_CONTROL_RATE_HZ
from mmchat_ros.core.flight.plan import PlanConfig


@dataclass(frozen=True)
class FlightCoreConfig:
    control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ
    takeoff_height_m: float = 1.5             # default take-off height above the ground
    takeoff_speed_m_s: float = 0.7
    takeoff_tolerance_m: float = 0.1          # take-off is complete within this of the height, nearly still
    spool_up_s: float = 0.3                   # ARMED at idle before the climb starts
    # Still on the ground this long into the climb: the outer integrators and the disturbance observer act (a vehicle
    # heavier than its model); on the ground twice as long: the take-off is abandoned (motors off, LANDED).
    takeoff_liftoff_timeout_s: float = 2.0
    max_arming_tilt_deg: float = 20.0         # a take-off is refused when the vehicle leans more (not upright)
    motor_idle_fraction: float = 0.05         # of motor_max_thrust_n while ARMED on the ground
    landing_speed_m_s: float = 0.5
    landing_final_speed_m_s: float = 0.25     # below landing_slowdown_height_m
    landing_slowdown_height_m: float = 1.0
    touchdown_height_m: float = 0.1
    touchdown_speed_m_s: float = 0.15
    touchdown_time_s: float = 0.5
    min_flight_height_m: float = 0.3          # above the ground, for commands and plans (not LAND)
    command_timeout_s: float = 0.5            # mux timeout for sources without their own
    odom_timeout_s: float = 0.5
    # A reading farther than this from where the previous one predicts the vehicle is an outlier and refused; the
    # same jump repeated by odom_reset_samples readings in a row is an estimator reset: accepted, then the vehicle
    # stops and holds where the new estimate puts it (plans and position targets were in the old frame).
    odom_jump_m: float = 1.0
    odom_reset_samples: int = 5
    imu_timeout_s: float = 0.1
    open_loop_thrust_fraction: float = 0.92   # of the hover thrust, for the blind descent
    hover_latch_speed_m_s: float = 0.3        # hover holds the position where the vehicle slowed below this
    hover_land_timeout_s: float | None = 60.0  # hovering with nothing in force this long → land; None: never
    require_authorisation: bool = True
    envelope: EnvelopeConfig = field(default_factory=EnvelopeConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    mux: Mapping[str, Any] | None = None      # {"sources": {name: {"priority": int, "timeout_s": float}}}

    def __post_init__(self) -> None:
        for name in ("control_rate_hz", "takeoff_height_m", "takeoff_speed_m_s", "takeoff_tolerance_m",
                     "landing_speed_m_s", "landing_final_speed_m_s", "touchdown_height_m", "touchdown_speed_m_s",
                     "command_timeout_s", "odom_timeout_s", "imu_timeout_s", "hover_latch_speed_m_s",
                     "odom_jump_m", "odom_reset_samples", "takeoff_liftoff_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0.0):
                raise ValueError(f"flight core {name} must be a finite number > 0, got {value!r}")
        if not 0.0 < self.open_loop_thrust_fraction < 1.0:
            raise ValueError("open_loop_thrust_fraction must be in (0, 1): the blind descent must go down")
        if not 0.0 <= self.motor_idle_fraction < 0.5:
            raise ValueError("motor_idle_fraction must be in [0, 0.5)")
        if not 0.0 < self.max_arming_tilt_deg < 90.0:
            raise ValueError(f"max_arming_tilt_deg must be in (0, 90), got {self.max_arming_tilt_deg!r}")

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | None) -> "FlightCoreConfig":
        """From nested plain data (node parameters / YAML): envelope and plan sub-dicts become their configs."""
        spec = dict(spec or {})
        unknown = set(spec) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown flight core keys {sorted(unknown)}")
        if isinstance(spec.get("envelope"), Mapping):
            spec["envelope"] = EnvelopeConfig.from_dict(spec["envelope"])
        if isinstance(spec.get("plan"), Mapping):
            plan_spec = dict(spec["plan"])
            plan_unknown = set(plan_spec) - set(PlanConfig.__dataclass_fields__)
            if plan_unknown:
                raise ValueError(f"unknown plan keys {sorted(plan_unknown)}")
            spec["plan"] = PlanConfig(**plan_spec)
        return cls(**spec)
