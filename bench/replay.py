"""Kernel-only throughput: `guardstream replay`'s code path over a generated file.

    python -m bench.replay [--events 1000000] [--keys 1000] [--policy configs]

Writes a JSONL file of ToolInvocations (a steady mix of successes, 503s, timeouts and 401s
over `--keys` vendor/tool keys, one clock tick per 1,000 events), then, in one run:
- raw: read + orjson.loads of every line (the floor any replay pays),
- replay: read + decode + validate + de-duplicate + breaker engine (what `replay` runs),
and prints events/s of both and their ratio, plus tracemalloc bytes per breaker key.
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import orjson

from schemas.types import rfc3339_ms
from workers.breakers.engine import BreakerEngine
from workers.policies.breakers import BreakerPolicy, default_breaker_policy, load_breaker_policy
from workers.replay.run import Replay
from workers.settings import Mode

T0_MS = 1_795_000_000_000
VENDORS = ["openai", "anthropic", "mistral", "cohere", "google", "azure", "bedrock", "groq"]


def generate(path: Path, events: int, keys: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    names = [(VENDORS[k % len(VENDORS)], f"tool-{k}") for k in range(keys)]
    with path.open("wb") as out:
        for n in range(events):
            ts_ms = T0_MS + n * 2  # 500 events/s of event time
            if n % 1000 == 999:
                out.write(orjson.dumps({"type": "clock", "ts": rfc3339_ms(ts_ms)}) + b"\n")
            vendor, tool = names[rng.randrange(keys)]
            roll = rng.random()
            status, error = (
                ("success", None) if roll < 0.9
                else ("error", "503") if roll < 0.96
                else ("timeout", None) if roll < 0.98
                else ("error", "401")
            )  # fmt: skip
            document = {
                "event_id": f"e{n}",
                "ts": rfc3339_ms(ts_ms),
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
            out.write(orjson.dumps(document) + b"\n")


def numbered(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as source:
        yield from enumerate(source, start=1)


def raw_rate(path: Path) -> tuple[int, float]:
    loads = orjson.loads
    started = time.perf_counter()
    count = 0
    for _, line in numbered(path):
        loads(line)
        count += 1
    return count, count / (time.perf_counter() - started)


def replay_rate(path: Path, policy: BreakerPolicy) -> tuple[Replay, float, int]:
    engine = BreakerEngine(policy)
    replay = Replay([engine], dedup_horizon_ms=3_600_000, dedup_max_ids=1_000_000)
    started = time.perf_counter()
    decisions = sum(1 for _ in replay.run(numbered(path)))
    elapsed = time.perf_counter() - started
    counts = replay.counts
    return replay, (counts.events + counts.clock_ticks) / elapsed, decisions


def bytes_per_key(policy: BreakerPolicy, keys: int) -> float:
    """tracemalloc over an engine holding `keys` breakers that each saw a full window."""
    events = [
        orjson.dumps(
            {"event_id": f"m{k}-{i}", "ts": T0_MS + i, "vendor": "v", "tool": f"t{k}",
             "status": "success", "duration_ms": 10}
        )
        for k in range(keys) for i in range(120)
    ]  # fmt: skip
    gc.collect()
    tracemalloc.start()
    engine = BreakerEngine(policy)
    replay = Replay([engine], dedup_horizon_ms=1, dedup_max_ids=1)  # no dedup memory
    before = tracemalloc.get_traced_memory()[0]
    for _ in replay.run(enumerate(events, start=1)):
        pass
    del replay
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
    args = parser.parse_args()
    policy = (
        load_breaker_policy(args.policy, Mode.PRODUCTION)
        if args.policy
        else default_breaker_policy(Mode.PRODUCTION)  # 100-call count windows
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        generate(path, args.events, args.keys)
        lines, raw = raw_rate(path)
        replay, rate, decisions = replay_rate(path, policy)
    print(f"lines                     {lines:>12,}")
    print(f"raw read+orjson.loads     {raw:>12,.0f} lines/s")
    print(f"replay (decode+validate+  {rate:>12,.0f} events/s  ({rate / raw:.2f}x raw)")
    print(f"        dedup+breakers)   {decisions:>12,} decisions, {replay.counts.invalid} invalid")
    print(
        f"memory per breaker key    {bytes_per_key(policy, 1000):>12,.0f} bytes (100-call window)"
    )


if __name__ == "__main__":
    main()
