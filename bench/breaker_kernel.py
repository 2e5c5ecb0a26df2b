"""Breaker kernel hot path: `classify` + `step` per ToolInvocation, and memory per breaker key.

Single core, in process, no Kafka. Throughput is the best of `--repeat` runs over `--events`
invocations (90 % successes, 10 % 503 errors, 1 ms apart) into one breaker key, timed in CPU
time of this process (`time.process_time`), so the figure is the kernel's cost per call rather
than the noise of a shared machine; `step only` feeds pre-classified calls.
Memory is what tracemalloc sees allocated for `--keys` breaker states after each took 100
calls (spread over 60 s), divided by the number of keys.

    python -m bench.breaker_kernel
    python -m bench.breaker_kernel --events 50000 --keys 200

Scenarios: `count` (Resilience4j defaults: 100-call count window), `time` (60 s window of 1 s
buckets), `count+cost` (a cost threshold: the window sums cost exactly) and `count+trips` (a
latency-p95 and an error-rate trip condition on 5-minute windows).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.events import ToolInvocation
from workers.kernels.breaker import (
    BreakerConfig,
    BreakerSnapshot,
    Call,
    TripCondition,
    TripMetric,
    WindowType,
    classify,
    initial_state,
    step,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)

SCENARIOS: dict[str, BreakerConfig] = {
    "count": BreakerConfig(),
    "time": BreakerConfig(sliding_window_type=WindowType.TIME, sliding_window_size=60),
    "count+cost": BreakerConfig(cost_threshold_usd=Decimal(1000)),
    "count+trips": BreakerConfig(
        trip_conditions=(
            TripCondition(TripMetric.LATENCY_P95, threshold=5000, consecutive_violations=3),
            TripCondition(TripMetric.ERROR_RATE, threshold=0.5, consecutive_violations=3),
        )
    ),
}


def invocations(count: int, spacing_ms: int = 1) -> list[ToolInvocation]:
    return [
        ToolInvocation(
            event_id=f"e{i}",
            ts=T0 + timedelta(milliseconds=i * spacing_ms),
            vendor="openai",
            tool="chat",
            status="success" if i % 10 else "error",
            error_type=None if i % 10 else "503",
            duration_ms=10.0 + i % 50,
            cost_usd=Decimal("0.0123"),
        )
        for i in range(count)
    ]


def best_rate(run: Callable[[], None], events: int, repeat: int) -> float:
    """Events per second of the fastest of `repeat` runs."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return events / best


def throughput(config: BreakerConfig, stream: list[ToolInvocation], repeat: int) -> float:
    def run() -> None:
        state = initial_state(config)
        for invocation in stream:
            state, _ = step(state, config, classify(invocation, config))

    return best_rate(run, len(stream), repeat)


def step_throughput(config: BreakerConfig, calls: list[Call], repeat: int) -> float:
    def run() -> None:
        state = initial_state(config)
        for call in calls:
            state, _ = step(state, config, call)

    return best_rate(run, len(calls), repeat)


def bytes_per_key(config: BreakerConfig, keys: int, calls: list[ToolInvocation]) -> float:
    """Allocated bytes per breaker state, each after all of `calls`."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    states: list[BreakerSnapshot] = []
    for _ in range(keys):
        state = initial_state(config)
        for invocation in calls:
            state, _ = step(state, config, classify(invocation, config))
        states.append(state)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # The list holding the states is the benchmark's, not the states'.
    return (after - before - states.__sizeof__()) / keys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    stream = invocations(args.events)
    per_key = invocations(100, spacing_ms=600)  # 100 calls over 60 s: every time bucket used
    print(
        f"{'scenario':<12} {'classify+step/s':>16} {'us/call':>8} {'step only/s':>13} {'B/key':>7}"
    )
    for name, config in SCENARIOS.items():
        rate = throughput(config, stream, args.repeat)
        calls = [classify(invocation, config) for invocation in stream]
        step_rate = step_throughput(config, calls, args.repeat)
        del calls
        memory = bytes_per_key(config, args.keys, per_key)
        print(f"{name:<12} {rate:>16,.0f} {1e6 / rate:>8.2f} {step_rate:>13,.0f} {memory:>7,.0f}")


if __name__ == "__main__":
    main()
