"""The newest-frame hand-off and the fixed-rate pacing behind nodes/base.py's worker threads."""
import threading

import pytest

from mmchat_ros.core.pacing import FRAME, JOB, NewestSlot, Pacer, PeriodLog


def test_a_frame_not_yet_taken_is_replaced_by_the_newer_and_counted():
    slot = NewestSlot()
    for frame in (1, 2, 3):
        slot.put(frame)
    assert slot.take() == (FRAME, 3) and slot.dropped == 2


def test_jobs_queue_and_go_before_the_frame():
    slot = NewestSlot()
    slot.put("frame")
    first, second = (lambda: 1), (lambda: 2)
    slot.put_job(first)
    slot.put_job(second)
    assert [slot.take() for _ in range(3)] == [(JOB, first), (JOB, second), (FRAME, "frame")]


def test_close_wakes_a_waiting_consumer_and_ends_it():
    slot = NewestSlot()
    taken = []
    consumer = threading.Thread(target=lambda: taken.append(slot.take()))
    consumer.start()
    slot.close()
    consumer.join(timeout=2.0)
    assert not consumer.is_alive() and taken == [None]
    slot.put("late")
    assert slot.take() is None


def test_pacer_keeps_absolute_deadlines_whatever_each_step_takes():
    pacer = Pacer(0.01, now=0.0)
    assert pacer.delay_after_step(0.003) == pytest.approx(0.007)
    assert pacer.delay_after_step(0.0195) == pytest.approx(0.0005)   # the next deadline is 0.02, not 0.0195 + 0.01


def test_pacer_after_an_overrun_restarts_the_schedule_instead_of_bursting():
    pacer = Pacer(0.01, now=0.0)
    assert pacer.delay_after_step(0.055) == 0.0            # five periods late: one step at once, not five
    assert pacer.delay_after_step(0.056) == pytest.approx(0.009)


def test_pacer_refuses_a_period_that_is_not_positive():
    with pytest.raises(ValueError):
        Pacer(0.0, now=0.0)


def test_period_log_keeps_the_intervals_between_ticks_bounded():
    log = PeriodLog(keep=4)
    for tick in (0.0, 1.0, 3.0, 6.0, 10.0, 15.0, 21.0):
        log.record(tick)
    assert log.periods == [3.0, 4.0, 5.0, 6.0]             # at 5 > keep the older half went
