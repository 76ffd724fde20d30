"""Where a frame's time goes, stage by stage: milliseconds per named stage collected over a period, summarised as
p50/p95 per stage in one log line. Pure Python, no ROS.

A node stamps each frame as it passes its stages (arrival from the camera, start of the work, end of inference,
publication) and adds the differences here; its periodic statistics line then says, with everything else running
on the machine, whether the time goes to transport, to waiting for the worker, or to the work itself. Benches read
those lines back from the node's log (``parse_summary``).
"""
from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by nearest rank on the sorted list; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100.0))]


SUMMARY_END = " ms (p50/p95)"


class StageTimings:
    """Milliseconds per stage since the last ``take_summary``; stages keep the order they were first added in. One
    thread may add while another takes the summary: the summary starts the new period before it reads the old."""

    def __init__(self):
        self.samples: dict[str, list[float]] = {}

    def add_frame(self, stages: dict[str, float]) -> None:
        """One frame's milliseconds per stage, into one period."""
        samples = self.samples
        for stage, ms in stages.items():
            samples.setdefault(stage, []).append(ms)

    @property
    def count(self) -> int:
        """Frames of the busiest stage (every frame passes the first stage)."""
        return max((len(v) for v in self.samples.values()), default=0)

    def summary(self) -> str:
        """'stage p50/p95 ms, ...' for every stage, e.g. 'transport 4.1/9.8, mediapipe 12.0/15.2 ms (p50/p95)'."""
        return _summary(self.samples)

    def take_summary(self) -> str:
        """The summary, and a new period from now."""
        samples, self.samples = self.samples, {}
        return _summary(samples)


def _summary(samples: dict[str, list[float]]) -> str:
    parts = [f"{stage} {percentile(v, 50):.1f}/{percentile(v, 95):.1f}" for stage, v in list(samples.items())]
    return ", ".join(parts) + SUMMARY_END if parts else "no frames"


def parse_summary(line: str) -> dict[str, tuple[float, float]]:
    """Stage → (p50, p95) from a line holding a ``summary`` (after the last ': ' before it); {} when it has none."""
    if SUMMARY_END not in line:
        return {}
    text = line.split(SUMMARY_END, 1)[0].rsplit(": ", 1)[-1]
    stages = {}
    for part in text.split(", "):
        stage, values = part.rsplit(" ", 1)
        p50, p95 = values.split("/")
        stages[stage] = (float(p50), float(p95))
    return stages
