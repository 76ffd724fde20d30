"""What a degraded link does to each packet: delay with jitter, random loss, a bandwidth cap with a bounded queue.

Pure and clock-free (the caller passes the time and a seeded random source), so the UDP relay that applies it
(tools/link_relay.py) and its tests agree on exactly which packets are dropped and when the others arrive. Stands in
for `tc netem`, which the kernels here lack.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Impairment:
    delay_s: float = 0.0            # one-way delay added to every packet
    jitter_s: float = 0.0           # each packet's delay varies uniformly by up to this much either way
    loss: float = 0.0               # fraction of packets dropped at random
    rate_bps: float | None = None   # bandwidth cap, bits per second; None: unlimited
    max_queue_s: float = 0.2        # at the cap, a packet that would wait longer than this is dropped (tbf's latency)

    def __post_init__(self):
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"loss {self.loss} is not a fraction between 0 and 1")
        if self.delay_s < 0 or self.jitter_s < 0 or self.jitter_s > self.delay_s:
            raise ValueError("delay_s and jitter_s must be >= 0, with jitter_s <= delay_s")
        if self.rate_bps is not None and self.rate_bps <= 0:
            raise ValueError("rate_bps must be positive (None for no cap)")


class ImpairedLink:
    """One direction of a link: admit() says when a packet arriving now leaves the far end, or None if it is lost.
    ``impairment`` may be replaced while the link is in use (a link that degrades, or a partition: loss 1)."""

    def __init__(self, impairment: Impairment, rng: random.Random):
        self.impairment = impairment
        self.rng = rng
        self._busy_until = 0.0      # when the capped link has finished sending what it already took
        self.admitted = 0
        self.admitted_bytes = 0
        self.lost = 0               # dropped at random (loss)
        self.overflowed = 0         # dropped at the cap: the queue was full

    @property
    def dropped(self) -> int:
        return self.lost + self.overflowed

    def admit(self, size_bytes: int, now: float) -> float | None:
        imp = self.impairment
        if self.rng.random() < imp.loss:
            self.lost += 1
            return None
        sent = now
        if imp.rate_bps is not None:
            start = max(now, self._busy_until)
            if start - now > imp.max_queue_s:
                self.overflowed += 1
                return None
            self._busy_until = sent = start + size_bytes * 8.0 / imp.rate_bps
        self.admitted += 1
        self.admitted_bytes += size_bytes
        return sent + imp.delay_s + self.rng.uniform(-imp.jitter_s, imp.jitter_s)
