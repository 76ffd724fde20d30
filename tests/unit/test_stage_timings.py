"""Per-stage frame timings (core/stage_timings.py): the summary a node logs and the parse benches read back."""
from __future__ import annotations

import math

from mmchat_ros.core.stage_timings import StageTimings, parse_summary, percentile


def test_stage_timings_summarise_each_stage_in_the_order_first_added_then_start_afresh():
    timings = StageTimings()
    assert timings.count == 0 and timings.summary() == "no frames"
    for ms in range(1, 101):
        timings.add_frame({"transport": float(ms), "mediapipe": 10.0})
    timings.add_frame({"mediapipe": 10.0})
    assert timings.count == 101
    assert timings.take_summary() == "transport 51.0/96.0, mediapipe 10.0/10.0 ms (p50/p95)"
    assert timings.count == 0


def test_percentile_is_the_nearest_rank_and_nan_without_values():
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0], 95) == 2.0
    assert math.isnan(percentile([], 50))


def test_a_logged_summary_parses_back_to_its_figures():
    timings = StageTimings()
    timings.add_frame({"transport": 4.06, "mediapipe_cpu": 12.5})
    line = f"[INFO] [1796469111.076596300] [gesture]: 1 frames: {timings.summary()}; dropped 0 while busy"
    assert parse_summary(line) == {"transport": (4.1, 4.1), "mediapipe_cpu": (12.5, 12.5)}
    assert parse_summary("[INFO] [1.0] [gesture]: gesture recogniser ready") == {}
