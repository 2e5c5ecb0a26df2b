"""Window hot paths: the rings of event-time buckets the kernels update per event.

    python -m bench.windows [--events 200000] [--repeat 5]

Single core, in process, no Kafka. Each scenario feeds `--events` events into one window the
way its kernel does on the hot path, and prints events/s of the fastest of `--repeat` runs
(CPU time of this process, `time.process_time`, so that a shared machine's noise counts less):

- breaker-time: a breaker's 60 s time window (1 s buckets), one call per ms, every tenth
  failed (`TimeWindow.add`, as `breaker.step` calls it);
- breaker-time-sparse: the same window, one call per 250 ms (a bucket edge every 4 calls);
- rolling-sum: a rolling day in 24-minute buckets, a spend per 100 ms, and `next_change_ms`
  after each (as `BudgetLedger.due_ms` asks);
- rate-limit: requests per minute in 60 slices, a request per 10 ms, `exceeded` after each;
- slo-windows: the Workbook's eight windows, a count per 100 ms into the head accumulator and
  a `roll` per second (as `SloTracker.advance` with a clock tick);
- objective-counts: an availability objective (60 buckets of a minute), a record per 100 ms;
- objective-mean: an attribute-mean objective, a record per 100 ms.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal

from bench.breaker_kernel import best_rate
from workers.kernels.breaker_windows import TimeWindow
from workers.kernels.objective import ObjectiveTracker
from workers.kernels.rate_limit import SlidingRateLimit
from workers.kernels.rolling_sum import RollingSum
from workers.kernels.slo_targets_config import ObjectiveMetric, WindowObjective
from workers.kernels.slo_windows import SloWindows

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WORKBOOK_WINDOWS_MS = (
    300_000, 1_800_000, HOUR_MS, 2 * HOUR_MS, 6 * HOUR_MS, DAY_MS, 3 * DAY_MS, 30 * DAY_MS,
)  # fmt: skip
_ZERO = Decimal(0)


def breaker_time(events: int, spacing_ms: int) -> Callable[[], None]:
    def run() -> None:
        window = TimeWindow(60)
        add = window.add
        for i in range(events):
            add(i % 10 == 0, False, _ZERO, 12.0, T0_MS + i * spacing_ms)

    return run


def rolling_sum(events: int) -> Callable[[], None]:
    def run() -> None:
        rolling = RollingSum(DAY_MS, DAY_MS // 60)
        add, next_change = rolling.add, rolling.next_change_ms
        for i in range(events):
            add(T0_MS + i * 100, 4_200_000, 420)
            next_change()

    return run


def rate_limit(events: int) -> Callable[[], None]:
    def run() -> None:
        limiter = SlidingRateLimit(limit=5000)
        record, exceeded = limiter.record, limiter.exceeded
        for i in range(events):
            record(T0_MS + i * 10)
            exceeded()

    return run


def slo_windows(events: int) -> Callable[[], None]:
    def run() -> None:
        windows = SloWindows(WORKBOOK_WINDOWS_MS, T0_MS)
        roll = windows.roll
        for i in range(events):
            ts = T0_MS + i * 100
            if i % 10 == 0:
                roll(ts)
            if ts >= windows.head_lo_ms:
                windows.pending_good += 1
                windows.pending_valid += 1
            else:
                windows.add(ts, 1, 1)

    return run


def objective(events: int, metric: ObjectiveMetric) -> Callable[[], None]:
    config = WindowObjective(
        objective_id="bench",
        metric=metric,
        window_ms=HOUR_MS,
        target=0.99 if metric is ObjectiveMetric.AVAILABILITY else 100.0,
        warning_at=0.98 if metric is ObjectiveMetric.AVAILABILITY else 200.0,
        critical_at=0.97 if metric is ObjectiveMetric.AVAILABILITY else 300.0,
        higher_is_better=metric is ObjectiveMetric.AVAILABILITY,
        attribute="quality" if metric is ObjectiveMetric.ATTRIBUTE_MEAN else None,
    )

    def run() -> None:
        tracker = ObjectiveTracker(config)
        record = tracker.record
        for i in range(events):
            ts = T0_MS + i * 100
            if metric is ObjectiveMetric.AVAILABILITY:
                record(ts, valid=1, good=1 if i % 50 else 0)
            else:
                record(ts, value_sum=float(i % 150), value_count=1)

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    n = args.events
    scenarios: dict[str, Callable[[], None]] = {
        "breaker-time": breaker_time(n, 1),
        "breaker-time-sparse": breaker_time(n, 250),
        "rolling-sum": rolling_sum(n),
        "rate-limit": rate_limit(n),
        "slo-windows": slo_windows(n),
        "objective-counts": objective(n, ObjectiveMetric.AVAILABILITY),
        "objective-mean": objective(n, ObjectiveMetric.ATTRIBUTE_MEAN),
    }
    print(f"{'scenario':<20} {'events/s':>12} {'ns/event':>9}")
    for name, run in scenarios.items():
        rate = best_rate(run, n, args.repeat)
        print(f"{name:<20} {rate:>12,.0f} {1e9 / rate:>9,.0f}")


if __name__ == "__main__":
    main()
