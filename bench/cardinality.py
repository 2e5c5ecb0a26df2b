"""Key cardinality: events whose keys are all new, through `guardstream replay --input`'s path.

    python -m bench.cardinality [--events 1000000] [--policy configs] [--scenario tools users]

Producers choose vendor, tool, user and team, so a producer (or a bug) can make every event a
new breaker, SLO tracker or split-budget ledger. Each scenario writes a JSONL file of
ToolInvocations one millisecond apart (a clock tick every 1,000 events), then replays it in
a fresh child process with the pipeline `replay --input` builds (`PipelineReplay.for_file`),
under the key caps of the environment (GUARDSTREAM_MODE's, or GUARDSTREAM_MAX_*_KEYS), and
reports:
- events/s of the replay loop (decode, validation and de-duplication included), per second
  of wall time and per second of the child's CPU time (steadier on a shared machine),
- peak RSS of the child (ru_maxrss) and its growth over the RSS before the first event,
- the keys each engine holds at the end (overflow states included), the event ids the
  de-duplicator holds, and the RSS growth per key and id held,
- the decisions, and how many were `cardinality_limit` alerts.
Then tracemalloc's bytes per key of each engine alone (`--per-key`: what a cap costs), and
of the de-duplicator per event id held (`--dedup-ids`).

Scenarios (each event has a key no earlier event had):
- tools: a new tool name per event (8 vendors): a breaker and the per-vendor/tool SLO trackers
  (`slo.availability`, `slo.latency` in configs/) per event;
- users: a new user of team research on openai/gpt-4 per event: a ledger of the split budget
  `bud.research.user.gpt` per event, and a new team on every other event (no budget splits
  by team in configs/: those count only in the global and vendor budgets).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from schemas.types import rfc3339_ms

T0_MS = 1_795_000_000_000
VENDORS = ["openai", "anthropic", "mistral", "cohere", "google", "azure", "bedrock", "groq"]
SCENARIOS = ("tools", "users")


@dataclass(frozen=True, slots=True)
class Result:
    """What one child replay measured."""

    events: int
    seconds: float
    cpu_seconds: float
    base_rss: int
    peak_rss: int
    held: dict[str, int]
    dedup_ids: int
    decisions: int
    cardinality_alerts: int


def generate(path: Path, events: int, scenario: str) -> None:
    """`events` ToolInvocations, each with a key never seen before (see the module doc)."""
    with path.open("wb") as out:
        for n in range(events):
            ts_ms = T0_MS + n  # 1,000 events per second of event time
            if n % 1000 == 999:
                out.write(orjson.dumps({"type": "clock", "ts": rfc3339_ms(ts_ms)}) + b"\n")
            document: dict[str, object] = {
                "event_id": f"e{n}",
                "ts": rfc3339_ms(ts_ms),
                "status": "error" if n % 50 == 0 else "success",
                "duration_ms": 20 + n % 3000,
                "tokens_in": 300,
                "tokens_out": 120,
                "cost_usd": "0.0042",
            }
            if document["status"] == "error":
                document["error_type"] = "503"
            if scenario == "tools":
                document |= {"vendor": VENDORS[n % len(VENDORS)], "tool": f"tool-{n}"}
                document |= {"team": "research", "user": "ana"}
            else:
                document |= {"vendor": "openai", "tool": "chat", "model": "gpt-4"}
                document |= {"team": "research" if n % 2 else f"team-{n}", "user": f"user-{n}"}
            out.write(orjson.dumps(document) + b"\n")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(path: Path, policy: Path | None) -> Result:
    """Replay `path` as `guardstream replay --input` does."""
    from workers.app import tune_garbage_collector
    from workers.policies.policy_set import load_policies
    from workers.replay.pipeline import PipelineReplay
    from workers.replay.run import Replay
    from workers.settings import Settings

    settings = Settings()
    tune_garbage_collector()
    pipeline = PipelineReplay.for_file(load_policies(policy, settings.mode), settings.key_caps)
    replay = Replay(
        pipeline,
        dedup_horizon_ms=int(settings.dedup_horizon_s * 1000),
        dedup_max_ids=settings.dedup_max_ids_per_partition,
    )
    base_rss = _rss_bytes()
    alerts = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    with path.open("rb") as source:
        for decision in replay.run(enumerate(source, start=1)):
            alert = getattr(decision, "alert", None)
            alerts += alert is not None and alert.kind == "cardinality_limit"
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    counts = replay.counts
    maps = pipeline.key_maps()
    return Result(
        events=counts.events + counts.clock_ticks,
        seconds=elapsed,
        cpu_seconds=cpu,
        base_rss=base_rss,
        peak_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        # The states each capped map holds, pinned ones (overflow states) included.
        held={keys.limit.kind.value: len(keys) for keys in maps},
        dedup_ids=replay.tracked_ids,
        decisions=counts.decisions,
        cardinality_alerts=alerts,
    )


def run_scenario(path: Path, policy: Path | None) -> Result | int:
    """The child's result, or its exit code when it failed (killed for memory, say)."""
    command = [sys.executable, "-m", "bench.cardinality", "--child", str(path)]
    if policy is not None:
        command += ["--policy", str(policy)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, _ = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code:
        return code
    return Result(**orjson.loads(output.splitlines()[-1]))


def report(scenario: str, result: Result | int) -> None:
    if isinstance(result, int):
        print(f"{scenario:<6} child failed (exit {result}: out of memory?)")
        return
    grown = max(result.peak_rss - result.base_rss, 0)
    keys = sum(result.held.values())
    held = ", ".join(f"{kind} {count:,}" for kind, count in result.held.items())
    print(
        f"{scenario:<6} {result.events:>10,} events {result.events / result.seconds:>9,.0f} "
        f"events/s ({result.events / result.cpu_seconds:,.0f} per CPU s)  "
        f"peak RSS {result.peak_rss / 2**20:>6,.0f} MiB "
        f"(+{grown / 2**20:,.0f})  held: {held}, dedup ids {result.dedup_ids:,}  "
        f"{grown / max(keys + result.dedup_ids, 1):,.0f} B per key or id held  "
        f"decisions {result.decisions:,} ({result.cardinality_alerts} cardinality_limit)"
    )


def bytes_per_key(policy: Path | None, keys: int) -> dict[str, float]:
    """tracemalloc of each engine alone (uncapped) fed `keys` events with new keys (tools for
    breakers and SLOs, users for budgets), per key it holds: its states, plus its share of
    the bounded route caches. The events are decoded before tracing starts."""
    from workers.breakers.engine import BreakerEngine
    from workers.budgets.engine import BudgetEngine
    from workers.ingest.input_lines import decode_event
    from workers.kernels.key_cap import CappedMap, KeyCaps, StateKind
    from workers.policies.policy_set import load_policies
    from workers.settings import Mode
    from workers.slos.engine import SloEngine

    unlimited = KeyCaps(breakers=10**9, budgets=10**9, slos=10**9)
    policies = load_policies(policy, Mode.DEVELOPMENT)
    per_key: dict[str, float] = {}
    for scenario, kind in (("tools", "breakers"), ("tools", "slos"), ("users", "budgets")):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "events.jsonl"
            generate(path, keys, scenario)
            events = [decode_event(line) for line in path.read_bytes().splitlines()]
        engine: BreakerEngine | BudgetEngine | SloEngine
        held: CappedMap[Any]
        if kind == "breakers":
            engine = BreakerEngine(policies.breakers, unlimited.whole(StateKind.BREAKERS))
            held = engine.keys
        elif kind == "budgets":
            engine = BudgetEngine(policies.budgets, unlimited.whole(StateKind.BUDGETS))
            held = engine.ledgers
        else:
            engine = SloEngine(policies.slos, unlimited.whole(StateKind.SLOS))
            held = engine.trackers
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for event in events:
            engine.apply(event)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        per_key[kind] = grown / max(len(held), 1)
    return per_key


def dedup_bytes_per_id(ids: int) -> tuple[int, float]:
    """tracemalloc of one partition's de-duplicator fed `ids` new ids (as `e<n>`, like the
    scenarios', 1 ms apart) under GUARDSTREAM_DEDUP_MAX_IDS_PER_PARTITION: (held, bytes per id
    held, the id strings and event times it keeps included)."""
    from workers.ingest.dedup import Deduplicator
    from workers.settings import Settings

    settings = Settings()
    dedup = Deduplicator(int(settings.dedup_horizon_s * 1000), settings.dedup_max_ids_per_partition)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(ids):
        dedup.first_time(f"e{n}", T0_MS + n)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return len(dedup), (after - before) / max(len(dedup), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--policy", type=Path, default=Path("configs"))
    parser.add_argument("--scenario", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--dedup-ids", type=int, default=1_000_000, help="0: skip")
    parser.add_argument("--per-key", type=int, default=20_000, help="keys traced; 0: skip")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(orjson.dumps(asdict(child(args.child, args.policy))).decode())
        return
    caps = {k: v for k, v in sorted(os.environ.items()) if k.startswith("GUARDSTREAM_MAX_")}
    mode = os.environ.get("GUARDSTREAM_MODE", "development")
    print(f"policy {args.policy}, mode {mode}, caps: {caps or 'the mode defaults'}")
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenario:
            path = Path(tmp) / f"{scenario}.jsonl"
            generate(path, args.events, scenario)
            report(scenario, run_scenario(path, args.policy))
            path.unlink()
    if args.per_key:
        sizes = bytes_per_key(args.policy, args.per_key)
        print(
            "bytes per key (tracemalloc, one engine fed "
            f"{args.per_key:,} new keys): "
            + ", ".join(f"{kind} {size:,.0f}" for kind, size in sizes.items())
        )
    if args.dedup_ids:
        held, per_id = dedup_bytes_per_id(args.dedup_ids)
        print(f"dedup  {args.dedup_ids:>10,} new ids: {held:,} held, {per_id:,.0f} B per id held")


if __name__ == "__main__":
    main()
