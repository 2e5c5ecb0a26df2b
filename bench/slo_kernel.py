"""Burn-rate SLO kernel hot path: `SloTracker.record` for 100 SLOs, and memory per SLO
(issue 5: "the replay hot path, 100k events/s through the whole replay with 100 SLOs").

    python -m bench.slo_kernel [--events 1000000] [--slos 100]

The SLOs are ten variants (99.9 % and 99 % over 30 d rolling, 99.5 % over 28 d, calendar
monthly in America/New_York, timeslices, a no-data alert, ...) times ten selectors. Every event
matches five of them (its vendor, tool, team, model and global SLOs, say), so it is recorded
into five trackers: one record per event and tracker, not aggregated. Events arrive 100 per
second of event time (1M events are 2.8 h: every window up to 1 h fills and slides; 0.1 %
errors, with a 2-minute burst of 20 % errors every hour so that alerts fire and resolve) and a
clock tick advances every tracker each second. Throughput is CPU time of this process.

Memory per SLO is tracemalloc's count for trackers built and fed while tracing, divided by
their number: after 1,000 events, and after 10 million events each -- simulated cheaply with
counts aggregated per 5 minutes (9,920 events a record over 3.5 days, so that every window up
to 3 d has been filled and slid) for one tracker of each variant.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

from schemas.state import BudgetPeriod
from workers.kernels.budget_periods import PeriodSpec
from workers.kernels.slo import SloTracker
from workers.kernels.slo_config import (
    DAY_MS,
    MINUTE_MS,
    BudgetingMethod,
    Sli,
    SliKind,
    SloConfig,
)

T0_MS = 1_794_960_000_000  # 2026-11-18T00:00:00Z
PER_EVENT = 5
AVAILABILITY = Sli(kind=SliKind.AVAILABILITY)
LATENCY = Sli(kind=SliKind.LATENCY, latency_threshold_ms=500)


def variants() -> list[dict[str, object]]:
    monthly = PeriodSpec(BudgetPeriod.MONTHLY, tz="America/New_York")
    return [
        {"target": 0.999},
        {"target": 0.99},
        {"target": 0.995, "period_ms": 28 * DAY_MS},
        {"target": 0.999, "period_ms": None, "calendar": monthly},
        {"target": 0.999, "budgeting": BudgetingMethod.TIMESLICES, "timeslice_ms": MINUTE_MS},
        {"target": 0.999, "no_data_ms": 10 * MINUTE_MS},
        {"target": 0.95, "sli": LATENCY},
        {"target": 0.999, "period_ms": 7 * DAY_MS},
        {"target": 0.9999},
        {"target": 0.999, "min_events": 100},
    ]


def configs(count: int) -> list[SloConfig]:
    kinds = variants()
    out = []
    for n in range(count):
        fields: dict[str, object] = {"slo_id": f"slo-{n}", "sli": AVAILABILITY}
        fields.update(kinds[n % len(kinds)])
        out.append(SloConfig(**fields))  # type: ignore[arg-type]
    return out


def run(trackers: list[SloTracker], events: int) -> tuple[float, int]:
    """Feed `events` events (each into PER_EVENT trackers); CPU seconds and outputs."""
    groups = len(trackers) // PER_EVENT
    outputs = 0
    started = time.process_time()
    for n in range(events):
        ts = T0_MS + n * 10  # 100 events a second
        burst = (n // 100) % 3600 < 120  # 2 minutes of 20 % errors every hour
        good = 0 if (n % 5 == 0 if burst else n % 1000 == 0) else 1
        base = (n % groups) * PER_EVENT
        for tracker in trackers[base : base + PER_EVENT]:
            outputs += len(tracker.record(ts, good, 1))
        if n % 100 == 99:  # a clock tick every second
            for tracker in trackers:
                outputs += len(tracker.advance(ts + 10))
    return time.process_time() - started, outputs


def traced_bytes_per_slo(slos: list[SloConfig], events: int, per_record: int) -> float:
    """Trackers built and fed under tracemalloc: their retained bytes each."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    trackers = [SloTracker(config) for config in slos]
    records = events // per_record
    step_ms = max(1, int(3.5 * DAY_MS) // records)
    for tracker in trackers:
        for n in range(records):
            bad = per_record // 500 if n % 60 else per_record // 10
            tracker.record(T0_MS + n * step_ms, per_record - bad, per_record)
    gc.collect()
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert all(tracker.snapshot().valid for tracker in trackers)
    return size / len(trackers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--slos", type=int, default=100)
    args = parser.parse_args()
    if args.slos % PER_EVENT:
        parser.error(f"--slos must be a multiple of {PER_EVENT}")
    slos = configs(args.slos)
    trackers = [SloTracker(config) for config in slos]
    elapsed, outputs = run(trackers, args.events)
    updates = args.events * PER_EVENT
    sample = slos[: len(variants())]  # one tracker of each variant
    small = traced_bytes_per_slo(sample, 1_000, 1)
    large = traced_bytes_per_slo(sample, 10_000_000, 9_920)
    firing = sum(len(tracker.snapshot().alerting) for tracker in trackers)
    print(f"SLO trackers           {args.slos:>12,}  ({PER_EVENT} per event)")
    print(f"events                 {args.events:>12,}  outputs {outputs:,}, open alerts {firing}")
    print(f"record (per event)     {args.events / elapsed:>12,.0f} events/s")
    print(f"record (per tracker)   {updates / elapsed:>12,.0f} updates/s")
    print(f"memory per SLO, 1k     {small:>12,.0f} bytes  (1,000 events each)")
    print(f"memory per SLO, 10M    {large:>12,.0f} bytes  (10M events each, aggregated per 5 min)")


if __name__ == "__main__":
    main()
