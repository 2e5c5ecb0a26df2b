"""An SLO budgeted by timeslices (`BudgetingMethod.TIMESLICES`; rules in `workers.kernels.slo`).

Event time is cut into `slice_ms` slices aligned to the epoch. The open slice gathers the
valid events of its span; when event time reaches its end, a slice with valid events counts as
one valid unit, good when good/valid >= `target`, at its last millisecond (end - 1). Slices
without valid events count for nothing.
"""

from __future__ import annotations


class Timeslices:
    """The open slice of one SLO tracker. Mutable, updated in place."""

    __slots__ = ("end_ms", "good", "slice_ms", "start_ms", "target", "valid")

    def __init__(self, slice_ms: int, target: float) -> None:
        self.slice_ms = slice_ms
        self.target = target
        self.start_ms = 0
        self.end_ms = 0
        self.good = 0
        self.valid = 0

    def start(self, now_ms: int) -> None:
        """Open the slice holding `now_ms`."""
        self.start_ms = now_ms - now_ms % self.slice_ms
        self.end_ms = self.start_ms + self.slice_ms

    def add(self, ts_ms: int, now_ms: int, good: int, valid: int) -> bool:
        """Count into the open slice; False (nothing counted) when `ts_ms` is before it."""
        if now_ms >= self.end_ms:  # the open slice was empty: move to the one holding now
            self.start(now_ms)
        if ts_ms < self.start_ms:
            return False
        self.good += good
        self.valid += valid
        return True

    def close(self) -> tuple[int, int]:
        """Close the open slice (it has valid events and event time reached its end) and open
        the next: (its last millisecond, 1 if it was good else 0)."""
        good = 1 if self.good / self.valid >= self.target else 0
        last_ms = self.end_ms - 1
        self.start_ms = self.end_ms
        self.end_ms += self.slice_ms
        self.good = 0
        self.valid = 0
        return last_ms, good
