"""How long batches and commits take, for /metrics (`guardstream_batch_seconds`,
`guardstream_commit_seconds`, `guardstream_commit_wait_seconds`).

Plain cumulative histograms with fixed buckets, filled by the batch loop and the commit path
and read when /metrics is scraped: no prometheus_client object on the hot path, and the
batching layer stays free of the worker's metric registry.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(slots=True)
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))
    """Observations per bucket (the last: above the largest bound), not cumulative."""
    total_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self.total_s += seconds

    @contextmanager
    def timing(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - started)

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or below it) per bucket, `+Inf` last."""
        running, rows = 0, []
        for bound, count in zip((*map(str, BUCKETS_S), "+Inf"), self.counts, strict=True):
            running += count
            rows.append((bound, running))
        return rows


@dataclass(slots=True)
class BatchTimings:
    batch: Histogram = field(default_factory=Histogram)
    """One batch handled by an agent (ingest, decisions, outputs sent)."""
    commit: Histogram = field(default_factory=Histogram)
    """One commit of offsets (with exactly once: of the transactions), once it may start."""
    commit_wait: Histogram = field(default_factory=Histogram)
    """A commit waiting for the batches in flight to finish (the commit gate)."""
