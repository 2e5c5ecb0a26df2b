"""Replay from the audit trail: `guardstream replay --source audit --verify`'s code path.

    python -m bench.replay_audit [--events 200000] [--policy DIR]

Builds a forensic trail the way a worker writes it: ToolInvocations (24 vendor/tool keys over
4 partitions, a vendor failing 60 % of calls for a spell in every 20,000 events, a clock tick
per partition every 2,000 events) ingested in batches of 500 by `IngestStage`, each batch's
input records sealed into its `input-p<N>` chain (`input_entries`, masked as the sink does)
and its decisions (`PipelineReplay`, the agents' code) into their chains. Policies: the
mode's built-in breaker, or those under `--policy` (e.g. `configs`: breakers, budgets, SLOs).

In one run it prints events/s of (CPU time of this process: the machine's cores are shared):
- raw: read + orjson.loads of every trail line (the floor any replay of the file pays),
- read: + `read_trail` (every recorded input decoded and validated again),
- verify: + `verify_trail` (the whole `replay --source audit --verify` after reading),
and the recorded / replayed decisions and mismatches (0: the replay decided the same).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from schemas.codec import encode
from schemas.events import ToolInvocation
from schemas.types import Severity, rfc3339_ms
from topics.catalog import TopicCatalog, TopicName
from workers.app import tune_garbage_collector
from workers.audit.chain import AuditChain
from workers.audit.inputs import input_chain_id, input_entries
from workers.audit.recorded_input import read_trail
from workers.audit.sealing import seal_masked
from workers.batching.records import RawBatch, StoredRecord
from workers.ingest.stage import IngestStage
from workers.masking.masker import default_masker
from workers.policies.policy_set import PolicySet, load_policies
from workers.replay.pipeline import PipelineReplay
from workers.replay.trail import verify_trail
from workers.settings import AuditLevel, Mode

T0_MS = 1_795_000_000_000
VENDORS = ["openai", "anthropic", "mistral", "cohere", "google", "azure"]
TOOLS = ["chat", "embed", "search", "rerank"]
PARTITIONS = 4
BATCH = 500
TICK_EVERY = 2000


def calls(events: int, seed: int = 3) -> Iterator[tuple[int, bytes]]:
    """(partition, JSON) of each input record, clock ticks to every partition included."""
    rng = random.Random(seed)
    for n in range(events):
        ts_ms = T0_MS + n * 5
        vendor, tool = rng.choice(VENDORS), rng.choice(TOOLS)
        spell = VENDORS[(n // 20_000) % len(VENDORS)] == vendor and n % 20_000 < 4_000
        failing = rng.random() < (0.6 if spell else 0.01)
        document = {
            "event_id": f"e{n}",
            "ts": rfc3339_ms(ts_ms),
            "vendor": vendor,
            "tool": tool,
            "status": "error" if failing else "success",
            "error_type": "503" if failing else None,
            "duration_ms": rng.randrange(80, 1500),
            "tokens_in": 300,
            "tokens_out": 120,
            "cost_usd": "0.004",
            "team": rng.choice(["research", "search", "support"]),
        }
        yield hash((vendor, tool)) % PARTITIONS, orjson.dumps(document)
        if n % TICK_EVERY == TICK_EVERY - 1:
            tick = orjson.dumps({"type": "clock", "ts": rfc3339_ms(ts_ms)})
            for partition in range(PARTITIONS):
                yield partition, tick


def write_trail(path: Path, events: int, policies: PolicySet, catalog: TopicCatalog) -> int:
    """The forensic trail of `events` calls; returns how many decision records it holds."""
    topic = catalog.name(TopicName.TOOL_INVOCATIONS)
    stage = IngestStage({topic: ToolInvocation}, dedup_horizon_ms=600_000, dedup_max_ids=100_000)
    pipeline = PipelineReplay(policies, catalog)
    masker = default_masker()
    chains: dict[str, AuditChain] = {}
    pending: dict[int, list[StoredRecord]] = {p: [] for p in range(PARTITIONS)}
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    decisions = 0

    def seal(chain_id: str, event_type: str, **fields: object) -> list[bytes]:
        chain = chains.setdefault(chain_id, AuditChain(chain_id))
        return [encode(r) for r in seal_masked(chain, masker, event_type, **fields)]  # type: ignore[arg-type]

    with path.open("wb") as out:

        def flush(partition: int) -> None:
            nonlocal decisions
            batch = RawBatch(topic, partition, pending[partition])
            pending[partition] = []
            result = stage.process(batch)
            lines: list[bytes] = []
            for entry in input_entries(AuditLevel.FORENSIC, result):
                lines += seal(input_chain_id(partition), entry.event_type, **entry.sealing())
            events = [item.event for item in result.accepted]
            for decision in pipeline.batch(topic, partition, events):
                line = decision.to_json()
                if decision.kernel == "breaker" and line["type"] != "transition":
                    continue  # breaker alerts are not audited (their transition is)
                decisions += 1
                lines += seal(
                    f"{decision.kernel}s-p{partition}",
                    f"aud.{decision.kernel}.decision",
                    ts_ms=decision.ts_ms,
                    severity=Severity.INFO,
                    policy_version=decision.policy_version,
                    payload=line,
                )
            out.write(b"\n".join(lines) + b"\n")

        for partition, value in calls(events):
            offset = offsets[partition]
            offsets[partition] += 1
            pending[partition].append(StoredRecord(topic, partition, offset, T0_MS, None, value))
            if len(pending[partition]) == BATCH:
                flush(partition)
        for partition in range(PARTITIONS):
            if pending[partition]:
                flush(partition)
    return decisions


def measure(path: Path, policies: PolicySet, catalog: TopicCatalog) -> None:
    started = time.process_time()
    with path.open("rb") as lines:
        records = [orjson.loads(line) for line in lines]
    raw_s = time.process_time() - started
    trail = read_trail(records)
    read_s = time.process_time() - started
    result = verify_trail(trail, PipelineReplay(policies, catalog))
    verify_s = time.process_time() - started
    events = result.events
    print(f"trail: {len(records):,} records, {events:,} input events")
    for label, seconds in (("raw", raw_s), ("read", read_s), ("verify", verify_s)):
        print(f"  {label:7s} {events / seconds:>10,.0f} events/s  ({seconds:.2f} s CPU)")
    print(
        f"  decisions: {result.recorded:,} recorded, {result.replayed:,} replayed, "
        f"{result.mismatches:,} mismatch(es)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--policy", type=Path, default=None)
    args = parser.parse_args()
    tune_garbage_collector()  # as `guardstream replay` does
    policies = load_policies(args.policy, Mode.PRODUCTION)
    catalog = TopicCatalog()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "trail.jsonl"
        written = write_trail(path, args.events, policies, catalog)
        print(f"policies: {args.policy or 'built-in'}; {written:,} decision records written")
        measure(path, policies, catalog)


if __name__ == "__main__":
    main()
