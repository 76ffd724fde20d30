"""The flight core flying the MuJoCo simulator in lockstep (no ROS, faster than real time): plans stay inside the
envelope, an airframe nobody tuned flies from its airframes.yaml entry alone, and a vehicle that differs from its
airframe file (heavier, windy) still holds its position."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from mmchat_ros.backends.sim.lockstep import Lockstep
from mmchat_ros.backends.sim.quadrotor import Perturbation
from mmchat_ros.core.flight.gains import default_gains_file
from mmchat_ros.core.plan_vocabulary import ActionType, PlanStep

pytestmark = [pytest.mark.sim]


def _fly_plan(loop: Lockstep, steps, timeout_s: float = 60.0):
    assert loop.core.start_plan(steps, loop.now), loop.core.last_rejection
    _, status = loop.run(timeout_s, until=lambda st: st.plan.state.value != "running")
    assert status.plan.state.value == "succeeded", status.plan
    return status


def test_a_3_m_plan_move_on_crazyflie_never_exceeds_the_envelope_speed():
    loop = Lockstep("crazyflie", config={"envelope": {"max_speed_xy": 1.0}})
    try:
        loop.take_off(1.5)
        start = loop.true_position()
        loop.max_speed_xy = 0.0
        # The step asks for 3 m/s; the envelope allows 1 m/s and the reference is time-scaled below it.
        _fly_plan(loop, [PlanStep(ActionType.MOVE_BY, x=3.0, speed=3.0)])
        assert loop.max_speed_xy <= 1.0, f"flew at {loop.max_speed_xy:.3f} m/s"
        assert loop.max_speed_xy > 0.7                    # and it did use the speed it had
        error = np.linalg.norm(loop.true_position() - (start + [3.0, 0.0, 0.0]))
        assert error < 0.1, f"ended {error:.3f} m from the goal"
    finally:
        loop.close()


def test_an_airframe_nobody_tuned_flies_a_plan_to_within_10_cm():
    entries = yaml.safe_load(default_gains_file().read_text())
    assert "quad250" not in entries                       # no gains, no limits: all derived from its constants
    loop = Lockstep("quad250")
    try:
        loop.take_off(1.5)
        start = loop.true_position()
        _fly_plan(loop, [PlanStep(ActionType.MOVE_BY, x=2.0, y=1.0, speed=1.5),
                         PlanStep(ActionType.ROTATE, yaw_deg=90.0),
                         PlanStep(ActionType.MOVE_BY, x=1.0, z=0.5, speed=1.5),
                         PlanStep(ActionType.HOVER, duration_s=1.0)])
        goal = start + [2.0, 2.0, 0.5]                    # after the turn, forward is +y
        error = float(np.linalg.norm(loop.true_position() - goal))
        assert error < 0.10, f"ended {error:.3f} m from the goal"
        assert loop.max_tilt_deg < loop.core.gains.limits.max_tilt_deg + 5.0
    finally:
        loop.close()


@pytest.mark.parametrize("airframe", ["crazyflie", "x500"])
def test_a_heavier_vehicle_in_gusty_wind_with_its_centre_of_mass_off_holds_position(airframe):
    perturbation = Perturbation(mass_scale=1.2, com_offset_m=(0.01, 0.0, 0.0), wind_m_s=(3.0, 0.0, 0.0),
                                gust_m_s=1.0)
    loop = Lockstep(airframe, perturbation=perturbation)
    try:
        loop.take_off(1.5, settle_s=4.0)
        hold = loop.true_position()
        loop.max_tilt_deg = 0.0        # (a 27 g vehicle 1 cm off balance tips a lot while leaving the ground)
        errors = []
        loop.run(6.0, each=lambda s, st: errors.append(float(np.linalg.norm(loop.true_position() - hold))))
        assert max(errors) < 0.08, f"drifted up to {max(errors):.3f} m"
        assert loop.max_tilt_deg < 30.0 and not math.isnan(max(errors))
    finally:
        loop.close()
