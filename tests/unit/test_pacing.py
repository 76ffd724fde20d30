"""The work hand-off and the fixed-rate pacing behind nodes/base.py's worker threads."""
import threading

import pytest

from mmchat_ros.core.pacing import ITEM, JOB, Pacer, PeriodLog, WorkQueue


def test_with_capacity_one_an_item_not_yet_taken_is_replaced_by_the_newer_and_counted():
    queue = WorkQueue()
    assert queue.put(1) == [] and queue.put(2) == [1] and queue.put(3) == [2]
    assert queue.take() == (ITEM, 3) and queue.dropped == 2


def test_a_longer_queue_keeps_the_order_and_drops_the_oldest_beyond_its_capacity():
    queue = WorkQueue(capacity=2)
    assert [queue.put(item) for item in "abc"] == [[], [], ["a"]]
    assert [queue.take(), queue.take()] == [(ITEM, "b"), (ITEM, "c")] and queue.dropped == 1


def test_jobs_queue_and_go_before_the_items():
    queue = WorkQueue()
    queue.put("frame")
    first, second = (lambda: 1), (lambda: 2)
    queue.put_job(first)
    queue.put_job(second)
    assert [queue.take() for _ in range(3)] == [(JOB, first), (JOB, second), (ITEM, "frame")]


def test_close_wakes_a_waiting_consumer_and_ends_it():
    queue = WorkQueue()
    taken = []
    consumer = threading.Thread(target=lambda: taken.append(queue.take()))
    consumer.start()
    queue.close()
    consumer.join(timeout=2.0)
    assert not consumer.is_alive() and taken == [None]
    queue.put("late")
    assert queue.take() is None


def test_put_when_room_waits_for_the_consumer_instead_of_dropping():
    queue = WorkQueue(capacity=1)
    queue.put("first")
    placed = []
    producer = threading.Thread(target=lambda: placed.append(queue.put_when_room("second")))
    producer.start()
    producer.join(timeout=0.2)
    assert producer.is_alive(), "no room yet: the producer waits"
    assert queue.take() == (ITEM, "first")
    producer.join(timeout=2.0)
    assert placed == [True] and queue.take() == (ITEM, "second") and queue.dropped == 0


def test_put_when_room_gives_up_when_the_item_is_no_longer_wanted_or_the_queue_closes():
    queue = WorkQueue(capacity=1)
    queue.put("first")
    wanted = threading.Event()
    wanted.set()
    results = []
    producer = threading.Thread(target=lambda: results.append(queue.put_when_room("stale", wanted.is_set, 0.01)))
    producer.start()
    wanted.clear()
    producer.join(timeout=2.0)
    assert results == [False] and queue.clear() == ["first"]
    queue.close()
    assert queue.put_when_room("late") is False


def test_ready_while_the_consumer_waits_with_nothing_queued():
    queue = WorkQueue()
    assert queue.ready
    queue.put("frame")
    assert not queue.ready and queue.waiting == 1
    queue.take()
    assert not queue.ready, "the consumer still works on what it took"
    queue.put_job(lambda: None)
    queue.take()
    queue.close()
    assert queue.take() is None and not queue.ready


def test_a_queue_holds_at_least_one_item():
    with pytest.raises(ValueError):
        WorkQueue(capacity=0)


def test_pacer_keeps_absolute_deadlines_whatever_each_step_takes():
    pacer = Pacer(0.01, now=0.0)
    assert pacer.delay_after_step(0.003) == pytest.approx(0.007)
    assert pacer.delay_after_step(0.0195) == pytest.approx(0.0005)   # the next deadline is 0.02, not 0.0195 + 0.01


def test_pacer_after_an_overrun_restarts_the_schedule_instead_of_bursting():
    pacer = Pacer(0.01, now=0.0)
    assert pacer.delay_after_step(0.055) == 0.0            # five periods late: one step at once, not five
    assert pacer.delay_after_step(0.056) == pytest.approx(0.009)


def test_pacer_catches_up_a_lag_within_max_lag_and_restarts_beyond():
    pacer = Pacer(0.01, now=0.0, max_lag_s=0.05)
    assert pacer.delay_after_step(0.04) == 0.0             # 30 ms behind: the next steps follow at once ...
    assert [pacer.delay_after_step(t) for t in (0.041, 0.042, 0.043)] == [0.0, 0.0, 0.0]
    assert pacer.delay_after_step(0.044) == pytest.approx(0.006)   # ... until the schedule (0.05) is met again
    assert pacer.delay_after_step(0.2) == 0.0              # 140 ms behind: beyond max_lag, a new schedule from now
    assert pacer.delay_after_step(0.201) == pytest.approx(0.009)


def test_pacer_with_period_zero_never_waits_and_refuses_a_negative_period():
    pacer = Pacer(0.0, now=0.0)
    assert [pacer.delay_after_step(t) for t in (0.0, 1.0, 1.5)] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        Pacer(-0.01, now=0.0)


def test_period_log_keeps_the_intervals_between_ticks_bounded():
    log = PeriodLog(keep=4)
    for tick in (0.0, 1.0, 3.0, 6.0, 10.0, 15.0, 21.0):
        log.record(tick)
    assert log.periods == [3.0, 4.0, 5.0, 6.0]             # at 5 > keep the older half went
