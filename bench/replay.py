"""Kernel-only throughput: `guardstream replay`'s code path over a generated file.

    python -m bench.replay [--events 1000000] [--keys 1000] [--policy configs]

Writes a JSONL file of ToolInvocations (a steady mix of successes, 503s, timeouts and 401s
over `--keys` vendor/tool keys, one clock tick per 1,000 events), then, in one run:
- raw: read + orjson.loads of every line (the floor any replay pays),
- validate: read + pydantic-core validation of every line (the ceiling of any replay that
  validates, as `replay` must),
- replay: read + decode + validate + de-duplicate + breaker engine (what `replay` runs), in one
  process and sharded over `--jobs` processes (`replay --jobs`),
and prints events/s of each and their ratio to raw, plus tracemalloc bytes per breaker key.
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

import orjson

from bench.jsonl import T0_MS, VENDORS, numbered, raw_rate, replay_rate, write_events
from schemas.events import ToolInvocation
from workers.breakers.engine import BreakerEngine
from workers.breakers.spec import BREAKERS
from workers.ingest.input_lines import decode_event
from workers.policies.breakers import BreakerPolicy, default_breaker_policy, load_breaker_policy
from workers.policies.budgets import default_budget_policy
from workers.policies.policy_set import PolicySet
from workers.replay.pipeline import PipelineReplay
from workers.replay.shards import replay_sharded
from workers.settings import Mode


def generate(path: Path, events: int, keys: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    names = [(VENDORS[k % len(VENDORS)], f"tool-{k}") for k in range(keys)]

    def fields(n: int) -> dict[str, object]:
        key = rng.randrange(keys)
        vendor, tool = names[key]
        roll = rng.random()
        if key % 20 == 0 and rng.random() < 0.6:
            roll = 0.9 + roll * 0.08  # one key in 20 is having a bad day: 503s, timeouts
        status, error = (
            ("success", None) if roll < 0.9
            else ("error", "503") if roll < 0.96
            else ("timeout", None) if roll < 0.98
            else ("error", "401")
        )  # fmt: skip
        document: dict[str, object] = {
            "vendor": vendor,
            "tool": tool,
            "status": status,
            "duration_ms": rng.randrange(20, 4000),
            "tokens_in": 300,
            "tokens_out": 120,
            "cost_usd": "0.0042",
            "team": "research",
        }
        if error:
            document["error_type"] = error
        return document

    write_events(path, events, fields)


def validate_rate(path: Path) -> float:
    validate = ToolInvocation.model_validate_json
    started = time.perf_counter()
    count = 0
    for _, line in numbered(path):
        if b'"clock"' not in line:
            validate(line)
        count += 1
    return count / (time.perf_counter() - started)


def sharded_rate(path: Path, policy: BreakerPolicy, jobs: int) -> tuple[float, int]:
    started = time.perf_counter()
    lines, counts = replay_sharded(
        path,
        policy,
        Mode.PRODUCTION,
        jobs=jobs,
        dedup_horizon_ms=3_600_000,
        dedup_max_ids=1_000_000,
    )
    elapsed = time.perf_counter() - started
    return (counts.events + counts.clock_ticks) / elapsed, len(lines)


def bytes_per_key(policy: BreakerPolicy, keys: int) -> float:
    """tracemalloc of an engine holding `keys` breakers that each saw a full window. The
    events are decoded before tracing starts: only what the engine keeps is counted."""
    events = [
        decode_event(
            orjson.dumps(
                {"event_id": f"m{k}-{i}", "ts": T0_MS + i, "vendor": "v", "tool": f"t{k}",
                 "status": "success", "duration_ms": 10}
            )
        )
        for k in range(keys) for i in range(120)
    ]  # fmt: skip
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engine = BreakerEngine(policy)
    for event in events:
        engine.apply(event)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(engine) == keys
    return (after - before) / keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--policy", type=Path, default=None, help="default: the built-in one")
    parser.add_argument("--jobs", type=int, default=2, help="processes of the sharded replay")
    args = parser.parse_args()
    policy = (
        load_breaker_policy(args.policy, Mode.PRODUCTION)
        if args.policy
        else default_breaker_policy(Mode.PRODUCTION)  # 100-call count windows
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        generate(path, args.events, args.keys)
        lines, raw = raw_rate(path, time.perf_counter)
        validated = validate_rate(path)
        pipeline = PipelineReplay.for_file(
            PolicySet(policy, default_budget_policy()), kernels=[BREAKERS]
        )
        rate, decisions = replay_rate(path, pipeline, time.perf_counter)
        sharded, sharded_decisions = sharded_rate(path, policy, args.jobs)
    assert sharded_decisions == decisions, (sharded_decisions, decisions)
    print(f"lines ({args.keys} keys)       {lines:>12,}   decisions {decisions:,}")
    print(f"raw read + orjson.loads      {raw:>12,.0f} lines/s")
    print(f"read + validate only         {validated:>12,.0f} lines/s  ({validated / raw:.2f}x raw)")
    print(f"replay, 1 process            {rate:>12,.0f} events/s ({rate / raw:.2f}x raw)")
    print(
        f"replay --jobs {args.jobs:<2}             {sharded:>12,.0f} events/s "
        f"({sharded / raw:.2f}x raw)"
    )
    print(
        f"memory per breaker key    {bytes_per_key(policy, 1000):>12,.0f} bytes (100-call window)"
    )


if __name__ == "__main__":
    main()
