"""RESONTINEX-style trip conditions: a metric over tumbling event-time windows, violated in N
windows in a row.

For each condition (see `TripCondition`): windows are `[k * window_ms, (k + 1) * window_ms)`
in epoch milliseconds. The window an event falls in is the current one; when an event of any
kind (call, latency, clock) reaches or passes the current window's end, that window is
evaluated, once:
- fewer than `minimum_calls` samples: no verdict, the streak is left as it is;
- otherwise the metric is computed; a violation adds one to the streak, a value within the
  threshold resets it to 0.
Then the window holding the event becomes current (empty). If event time jumped over several
windows, the ones in between held nothing: fewer than `minimum_calls` (which is >= 1), so they
neither violate nor reset the streak. A streak that reaches `consecutive_violations` trips.

Samples: rates count the calls the breaker recorded (not ignored ones); the latency p95 counts
their durations and `Latency` events, in a `QuantileSketch` (1 % relative error, bounded
memory). A sample from before the current window (late) is not counted for the condition.

Memory is bounded per condition: two counters, or one sketch that is cleared every window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.kernels.breaker_config import TripCondition, TripMetric
from workers.kernels.sketch import QuantileSketch

_LATENCY_P95 = TripMetric.LATENCY_P95
_SUCCESS_RATE = TripMetric.SUCCESS_RATE


@dataclass(slots=True)
class TripTracker:
    """One condition's current window and streak (mutable: part of the breaker state)."""

    condition: TripCondition
    window_start_ms: int | None = None
    """Start of the current window; None until a sample or event arrives after a reset."""
    calls: int = 0
    failed_calls: int = 0
    sketch: QuantileSketch | None = field(default=None)
    streak: int = 0

    def __post_init__(self) -> None:
        if self.condition.metric is _LATENCY_P95 and self.sketch is None:
            self.sketch = QuantileSketch()

    @property
    def name(self) -> str:
        return self.condition.name or str(self.condition.metric)

    def advance(self, ts_ms: int) -> float | None:
        """Event time is `ts_ms`: evaluate the current window if it ended. Returns the metric
        value when this makes the streak reach `consecutive_violations` (the condition trips),
        else None."""
        start = self.window_start_ms
        window_ms = self.condition.window_ms
        if start is not None and ts_ms < start + window_ms:
            return None
        tripped = None if start is None else self._evaluate()
        self.window_start_ms = ts_ms - ts_ms % window_ms
        self.calls = self.failed_calls = 0
        if self.sketch is not None:
            self.sketch.clear()
        return tripped

    def observe_call(self, ts_ms: int, failed: bool, duration_ms: float) -> None:
        """Count a recorded call (after `advance(ts_ms)`)."""
        start = self.window_start_ms
        if start is None or ts_ms < start:
            return  # late for this condition's window
        if self.sketch is not None:
            self.sketch.add(duration_ms)
        else:
            self.calls += 1
            if failed:
                self.failed_calls += 1

    def observe_latency(self, ts_ms: int, latency_ms: float) -> None:
        """Count a latency measurement (after `advance(ts_ms)`); only latency conditions."""
        start = self.window_start_ms
        if self.sketch is not None and start is not None and ts_ms >= start:
            self.sketch.add(latency_ms)

    def reset(self) -> None:
        """Forget the window and the streak (the breaker left or re-entered CLOSED)."""
        self.window_start_ms = None
        self.calls = self.failed_calls = self.streak = 0
        if self.sketch is not None:
            self.sketch.clear()

    def copy(self) -> TripTracker:
        return TripTracker(
            self.condition,
            self.window_start_ms,
            self.calls,
            self.failed_calls,
            self.sketch.copy() if self.sketch is not None else None,
            self.streak,
        )

    def _evaluate(self) -> float | None:
        condition = self.condition
        value = self._metric()
        if value is None:
            return None  # too few samples: no verdict
        if condition.metric is _SUCCESS_RATE:
            violated = value < condition.threshold
        else:  # latency p95, error rate: violated above the threshold
            violated = value > condition.threshold
        self.streak = self.streak + 1 if violated else 0
        return value if self.streak >= condition.consecutive_violations else None

    def _metric(self) -> float | None:
        minimum = self.condition.minimum_calls
        if self.sketch is not None:
            return self.sketch.quantile(0.95) if self.sketch.count >= minimum else None
        if self.calls < minimum:
            return None
        if self.condition.metric is _SUCCESS_RATE:
            return (self.calls - self.failed_calls) / self.calls
        return self.failed_calls / self.calls


def new_trackers(conditions: tuple[TripCondition, ...]) -> list[TripTracker] | None:
    """Trackers for a policy's conditions; None when it has none (the kernel's fast path)."""
    return [TripTracker(condition) for condition in conditions] or None
