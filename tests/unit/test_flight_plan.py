"""Plan executor: validation, reference trajectories, completion, and a full flown plan."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from mmchat_ros.core.flight.envelope import EnvelopeConfig, SafetyEnvelope
from mmchat_ros.core.flight.plan import PlanConfig, PlanExecutor, PlanOutput, PlanState, PlanVehicle, TrapezoidProfile
from mmchat_ros.core.flight.state_machine import FlightMode
from mmchat_ros.core.plan_vocabulary import ActionType, PlanStep

sys.path.insert(0, str(Path(__file__).parent))
from test_flight_control import FlightHarness  # noqa: E402  (the shared rigid-body test double)

DT = 0.02
T = ActionType


def step(kind, **values):
    return PlanStep(int(kind), **values)


class KinematicVehicle:
    """Test double for the flight core seen from the executor: follows position setpoints with a first-order lag
    and answers take-off / land requests the way FlightCore's modes do."""

    def __init__(self, position=(0.0, 0.0, 0.0), yaw=0.0, mode=FlightMode.LANDED, lag_s=0.25):
        self.position = np.array(position, float)
        self.velocity = np.zeros(3)
        self.yaw = yaw
        self.mode = mode
        self.lag_s = lag_s
        self.target = self.position.copy()
        self.target_yaw = yaw
        self.setpoints: list = []
        self.follow = None

    def snapshot(self) -> PlanVehicle:
        return PlanVehicle(self.position.copy(), self.velocity.copy(), self.yaw, self.mode)

    def apply(self, output: PlanOutput, dt: float) -> None:
        if output.request == "takeoff":
            self.mode = FlightMode.TAKING_OFF
            self.target = self.position + [0.0, 0.0, output.takeoff_height_m]
        elif output.request == "land":
            self.mode = FlightMode.LANDING
            self.target = np.array([self.position[0], self.position[1], 0.0])
        if output.follow is not None:
            self.follow = output.follow
        if output.setpoint is not None:
            sp = output.setpoint
            self.setpoints.append(sp)
            self.target, self.target_yaw = np.array([sp.x, sp.y, sp.z]), sp.yaw
            self.mode = FlightMode.POSITION
        if self.lag_s == math.inf:
            self.velocity[:] = 0.0
            return
        alpha = min(1.0, dt / self.lag_s)
        previous = self.position.copy()
        self.position += (self.target - self.position) * alpha
        self.velocity = (self.position - previous) / dt
        self.yaw += math.remainder(self.target_yaw - self.yaw, math.tau) * alpha
        if self.mode is FlightMode.TAKING_OFF and abs(self.position[2] - self.target[2]) < 0.02:
            self.mode = FlightMode.HOVER
        if self.mode is FlightMode.LANDING and self.position[2] < 0.01:
            self.mode, self.position[2], self.velocity[:] = FlightMode.LANDED, 0.0, 0.0


def execute(executor, vehicle, seconds, start=0.0, record=None):
    now = start
    for _ in range(int(round(seconds / DT))):
        vehicle.apply(executor.update(now, vehicle.snapshot()), DT)
        if record is not None:
            record.append(executor.feedback())
        now += DT
        if not executor.running:
            break
    return now


def test_trapezoid_profile_respects_speed_and_acceleration():
    for distance, speed in ((2.0, 0.5), (0.3, 2.0)):               # cruising, and a triangle that never cruises
        profile = TrapezoidProfile(distance, speed, 1.0)
        times = np.arange(0.0, profile.duration + 0.5, 0.01)
        samples = np.array([profile.at(t) for t in times])
        assert samples[-1, 0] == pytest.approx(distance) and samples[-1, 1] == 0.0
        assert samples[:, 1].max() <= speed + 1e-12
        assert np.all(np.diff(samples[:, 0]) >= -1e-12)
        assert np.max(np.abs(np.diff(samples[:, 1]))) <= 1.0 * 0.01 + 1e-9
    assert TrapezoidProfile(2.0, 0.5, 1.0).duration == pytest.approx(2.0 / 0.5 + 0.5)


# ------------------------------------------------------------------------------------------------ validation
def _hovering(x=0.0, y=0.0, z=1.5, yaw=0.0):
    return KinematicVehicle((x, y, z), yaw, FlightMode.HOVER)


@pytest.mark.parametrize("steps, vehicle, reason", [
    ([], _hovering(), "empty plan"),
    ([step(T.HOVER, duration_s=1.0), step(T.GOTO, x=float("nan"), y=0, z=2)], _hovering(),
     "step 1 (GOTO): x=nan is not a finite number"),
    ([step(T.GOTO, x=25.0, y=0.0, z=2.0)], _hovering(), "step 0 (GOTO): target (25.00, 0.00, 2.00) rejected: "
                                                          "x=25.00 m is above geofence max_x=20.00 m"),
    ([step(T.MOVE_BY, x=15.0), step(T.MOVE_BY, x=15.0)], _hovering(x=-5.0), "step 1 (MOVE_BY)"),
    ([step(T.ROTATE, yaw_deg=90), step(T.MOVE_BY, x=12.0)], _hovering(y=10.0), "max_y=20.00"),
    ([step(T.MOVE_BY, x=1.0)], KinematicVehicle(), "the plan must take off first"),
    ([step(T.TAKEOFF), step(T.LAND), step(T.HOVER, duration_s=2)], KinematicVehicle(), "step 2 (HOVER)"),
    ([step(T.TAKEOFF, z=9.0)], KinematicVehicle(), "z=9.00 m is above max_altitude_m=8.00 m"),
    ([step(T.FOLLOW)], _hovering(), "target_track_id >= 0 or a target_class"),
    ([step(T.FOLLOW, target_class="person"), step(T.LAND)], _hovering(), "FOLLOW must be the last step"),
    ([step(42)], _hovering(), "unknown action type 42"),
    ([step(T.MOVE_BY, x=1.0, speed=-1.0)], _hovering(), "speed -1.0 m/s is negative"),
    ([step(T.HOVER, duration_s=float("inf"))], _hovering(), "duration_s=inf"),
    ([step(T.GOTO, x=1.0, y=1.0, z=0.1)], _hovering(), "below the minimum flight height"),
])
def test_invalid_plans_are_rejected_whole_with_the_reason(steps, vehicle, reason):
    executor = PlanExecutor(SafetyEnvelope(EnvelopeConfig(max_altitude_m=8.0)))
    rejection = executor.start(steps, vehicle.snapshot(), 0.0)
    assert rejection is not None and reason in rejection
    assert executor.state is PlanState.IDLE and not executor.running
    assert executor.update(0.1, vehicle.snapshot()) == PlanOutput()
    assert executor.envelope.rejections["plan"] == 1


# ------------------------------------------------------------------------------------------------- execution
def test_move_by_uses_the_heading_frame_and_rotate_turns_counter_clockwise():
    executor = PlanExecutor()
    vehicle = _hovering(x=1.0, y=1.0, z=2.0, yaw=math.pi / 2)       # facing world +y
    plan = [step(T.MOVE_BY, x=2.0, y=1.0, z=0.5), step(T.ROTATE, yaw_deg=90.0), step(T.MOVE_BY, x=1.0)]
    assert executor.start(plan, vehicle.snapshot(), 0.0) is None
    execute(executor, vehicle, 30.0)
    assert executor.state is PlanState.SUCCEEDED and executor.feedback().message == "done"
    # forward 2 = +y, left 1 = -x, up 0.5; then face -x; then forward 1 = -x.
    np.testing.assert_allclose(vehicle.position, [1.0 - 1.0 - 1.0, 1.0 + 2.0, 2.5], atol=0.1)
    assert math.remainder(vehicle.yaw - math.pi, math.tau) == pytest.approx(0.0, abs=math.radians(5))


def test_reference_moves_at_the_step_speed_instead_of_jumping():
    executor = PlanExecutor(config=PlanConfig(acceleration_m_s2=1.0))
    vehicle = _hovering()
    assert executor.start([step(T.MOVE_BY, x=2.0, speed=0.5)], vehicle.snapshot(), 0.0) is None
    end = execute(executor, vehicle, 20.0)
    xs = np.array([sp.x for sp in vehicle.setpoints])
    assert xs[0] < 0.01                                              # starts where the vehicle is
    assert np.max(np.diff(xs)) <= 0.5 * DT + 1e-9                    # never faster than the step's speed
    assert max(sp.vx for sp in vehicle.setpoints) == pytest.approx(0.5)
    assert 4.5 <= end < 4.5 + 2.0                                    # 2 m at 0.5 m/s plus ramps, then settling
    assert executor.state is PlanState.SUCCEEDED


def test_goto_return_home_hover_stop_and_follow():
    executor = PlanExecutor()
    vehicle = KinematicVehicle((2.0, -1.0, 0.0))
    plan = [step(T.TAKEOFF, z=1.2), step(T.GOTO, x=4.0, y=3.0, z=2.0, speed=1.0), step(T.HOVER, duration_s=1.0),
            step(T.RETURN_HOME), step(T.STOP), step(T.FOLLOW, target_track_id=7, target_class="person")]
    assert executor.start(plan, vehicle.snapshot(), 0.0) is None
    record = []
    positions = {}
    now = 0.0
    while executor.running and now < 60.0:
        vehicle.apply(executor.update(now, vehicle.snapshot()), DT)
        record.append(executor.feedback())
        positions[record[-1].action_index] = vehicle.position.copy()
        now += DT
    assert executor.state is PlanState.SUCCEEDED
    np.testing.assert_allclose(positions[1], [4.0, 3.0, 2.0], atol=0.1)            # GOTO, world frame
    np.testing.assert_allclose(positions[3], [2.0, -1.0, 2.0], atol=0.1)           # home x, y at altitude
    hover_ticks = sum(1 for f in record if f.action == "HOVER")
    assert hover_ticks * DT == pytest.approx(1.0, abs=3 * DT)
    assert vehicle.follow.target_track_id == 7 and vehicle.follow.target_class == "person"
    assert executor.feedback().delegated == (5,)


def test_stuck_step_times_out_and_cancel_stops_the_plan():
    config = PlanConfig(timeout_factor=1.5, timeout_margin_s=2.0)
    executor = PlanExecutor(config=config)
    stuck = _hovering()
    stuck.lag_s = math.inf                                            # never moves
    assert executor.start([step(T.MOVE_BY, x=1.0, speed=1.0)], stuck.snapshot(), 0.0) is None
    execute(executor, stuck, 30.0)
    feedback = executor.feedback()
    assert feedback.state is PlanState.FAILED and "step 0 (MOVE_BY) timed out" in feedback.message

    vehicle = _hovering()
    assert executor.start([step(T.MOVE_BY, x=3.0), step(T.LAND)], vehicle.snapshot(), 0.0) is None
    execute(executor, vehicle, 1.0)
    assert executor.cancel("operator said stop")
    assert executor.state is PlanState.CANCELLED and executor.feedback().message == "operator said stop"
    assert executor.update(1.1, vehicle.snapshot()) == PlanOutput()
    assert not executor.cancel()


# ---------------------------------------------------------------------------------- flown by FlightCore
def test_takeoff_move_rotate_land_flies_to_completion_with_rising_progress():
    harness = FlightHarness("x500")
    core = harness.core
    plan = [step(T.TAKEOFF), step(T.MOVE_BY, x=2.0), step(T.ROTATE, yaw_deg=90.0), step(T.LAND)]
    assert core.start_plan(plan, harness.now)
    progress, actions, modes = [], [], set()

    def watch(now):
        status = core.status(now)
        progress.append(status.plan.overall_progress)
        actions.append(status.plan.action)
        modes.add(status.mode)

    status = harness.run(40.0, each=watch, until=lambda s: s.plan.state is not PlanState.RUNNING)
    assert status.plan.state is PlanState.SUCCEEDED, status.plan.message
    assert status.plan.actions_completed == 4 and status.plan.overall_progress == 1.0
    assert status.mode == "LANDED" and not status.armed and harness.sim.on_ground()
    assert np.all(np.diff(progress) >= 0.0) and progress[0] < 0.05
    assert [a for i, a in enumerate(actions) if i == 0 or a != actions[i - 1]] == \
        ["TAKEOFF", "MOVE_BY", "ROTATE", "LAND"]
    assert {"ARMED", "TAKING_OFF", "POSITION", "LANDING"} <= modes
    assert np.linalg.norm(harness.sim.position[:2] - [2.0, 0.0]) < 0.15            # the 2 m move, then down
    assert math.degrees(harness.sim.yaw) == pytest.approx(90.0, abs=5.0)


def test_flight_core_rejects_invalid_or_unauthorised_plans_whole():
    harness = FlightHarness(authorised=False)
    core = harness.core
    plan = [step(T.TAKEOFF), step(T.MOVE_BY, x=1.0)]
    refused = core.start_plan(plan, harness.now)
    assert not refused and "no authorised operator" in refused.reason
    core.set_authorised(True, harness.now)
    refused = core.start_plan([step(T.TAKEOFF), step(T.MOVE_BY, x=30.0), step(T.LAND)], harness.now)
    assert not refused and "step 1 (MOVE_BY)" in refused.reason and "max_x" in refused.reason
    status = harness.run(0.5)
    assert status.mode == "LANDED" and status.plan.state is PlanState.IDLE
    assert status.last_rejection == refused.reason

    # A bad plan does not disturb the one that is running.
    assert core.start_plan([step(T.TAKEOFF), step(T.HOVER, duration_s=5.0)], harness.now)
    status = harness.run(10.0, until=lambda s: s.plan.action == "HOVER")
    refused = core.start_plan([step(T.GOTO, x=0.0, y=0.0, z=float("inf"))], harness.now)
    assert not refused and "z=inf" in refused.reason
    status = harness.run(0.1)
    assert status.plan.state is PlanState.RUNNING and status.plan.action == "HOVER"


def test_a_late_cancel_for_a_replaced_plan_leaves_its_successor_running():
    harness = FlightHarness(authorised=True)
    core = harness.core
    assert core.start_plan([step(T.TAKEOFF), step(T.HOVER, duration_s=20.0)], harness.now)
    first = core.plan_serial
    harness.run(10.0, until=lambda s: s.plan.action == "HOVER")
    assert core.start_plan([step(T.MOVE_BY, x=1.0), step(T.HOVER, duration_s=5.0)], harness.now)
    second = core.plan_serial
    assert second == first + 1
    assert not core.cancel_plan("cancelled by the client", first)       # the planner cancelling the old goal
    status = harness.run(0.2)
    assert status.plan.state is PlanState.RUNNING and status.plan.action == "MOVE_BY"
    assert core.cancel_plan("cancelled by the client", second)
    assert harness.run(0.2).plan.state is not PlanState.RUNNING


def test_operator_override_cancels_the_plan():
    harness = FlightHarness()
    harness.take_off()
    core = harness.core
    assert core.start_plan([step(T.MOVE_BY, x=3.0), step(T.LAND)], harness.now)
    harness.run(1.0)
    status = harness.run(0.5, each=lambda now: core.submit_velocity("operator", 0.0, 0.5, 0.0, 0.0, now))
    assert status.plan.state is PlanState.CANCELLED and status.plan.message == "overridden by operator"
    assert status.mode == "VELOCITY" and status.active_source == "operator"
