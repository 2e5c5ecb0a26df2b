"""Replay on several processes, sharded by breaker key, with the single-process output.

Breakers never look at each other, so a file can be replayed like the topics are consumed:
split by key, each shard running the ordinary `Replay` (decode, validate, de-duplicate, engine)
over its own keys' events and every clock tick. Each shard reads the whole file itself and
keeps the lines whose key hashes to it; nothing but the decisions crosses a process boundary.

The merge restores exactly what one process prints: decisions sorted by input line, and within
a clock tick's line by the line on which each breaker was first seen (the order in which one
engine holds its breakers, so the order it moves them in).

What differs from one process: an `event_id` repeated under *different* keys is de-duplicated
only within a shard. A retry never changes its vendor or tool, so this only matters for
corrupt input. And the breaker key cap (GUARDSTREAM_MAX_BREAKER_KEYS) is one process's: each
shard holds only its own keys, so once the file has more keys than the cap, which keys one
process would have refused or evicted cannot be reproduced by shards. `replay_sharded` then
refuses (ConfigError) and the file must be replayed with one process.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import orjson

from schemas.policy import PolicyDocument
from workers.breakers.spec import BREAKERS, BreakerCore
from workers.errors import ConfigError
from workers.kernels.key_cap import DEFAULT_MAX_BREAKER_KEYS, KeyCaps
from workers.policies.breakers import BreakerPolicy
from workers.policies.budgets import default_budget_policy
from workers.policies.policy_set import PolicySet
from workers.replay.pipeline import PipelineReplay
from workers.replay.run import MAX_REPORTED_ERRORS, Replay, ReplayCounts
from workers.settings import Mode

# The line a decision came from, the line its breaker was first seen on, its place in its shard.
_SortKey = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class ShardJob:
    path: str
    shard: int
    shards: int
    policy: PolicyDocument
    mode: Mode
    dedup_horizon_ms: int
    dedup_max_ids: int
    max_breaker_keys: int


@dataclass(slots=True)
class ShardResult:
    counts: ReplayCounts
    lines: list[tuple[_SortKey, bytes]] = field(default_factory=list)
    breaker_keys: int = 0
    """Breaker keys the shard's engine admitted (it never evicts or refuses below the cap)."""
    capped: bool = False
    """Whether the shard's own cap refused or evicted a key."""


def owner(line: bytes, policy: BreakerPolicy, shards: int) -> tuple[int | None, str | None]:
    """(shard, breaker key) of a line. The shard is None for a line every shard needs (a
    clock tick); lines without a key (cost events, invalid ones) go to shard 0, which
    reports them."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        return 0, None
    if not isinstance(document, dict):
        return 0, None
    if document.get("type") == "clock":
        return None, None
    vendor, tool = document.get("vendor"), document.get("tool")
    if not isinstance(vendor, str) or not isinstance(tool, str):
        return 0, None
    key = policy.key_for(vendor, tool)
    return zlib.crc32(key.encode()) % shards, key


def run_shard(job: ShardJob) -> ShardResult:
    """One shard's replay (runs in a worker process)."""
    policy = BreakerPolicy.from_document(job.policy, job.mode)
    pipeline = PipelineReplay.for_file(
        PolicySet(policy, default_budget_policy(job.mode)),
        KeyCaps(breakers=job.max_breaker_keys),
        kernels=[BREAKERS],
    )
    engine = cast(BreakerCore, pipeline.core(BREAKERS)).engine
    # One line at a time: each decision is told by the line that made it.
    replay = Replay(
        pipeline, dedup_horizon_ms=job.dedup_horizon_ms, dedup_max_ids=job.dedup_max_ids, batch=1
    )
    # Breaker key -> the line that created it: a clock tick moves breakers in that order.
    created_on: dict[str, int] = {}
    current: list[tuple[int, str | None]] = [(0, None)]

    def own_lines() -> Iterator[tuple[int, bytes]]:
        known = 0
        with open(job.path, "rb") as source:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                shard, key = owner(line, policy, job.shards)
                if shard is None or shard == job.shard:
                    # The previous line is fully processed: did it create a breaker?
                    if len(engine) > known:
                        known = len(engine)
                        previous_number, previous_key = current[0]
                        if previous_key is not None:
                            created_on.setdefault(previous_key, previous_number)
                    current[0] = (number, key)
                    yield number, line

    result = ShardResult(replay.counts)
    for seq, decision in enumerate(replay.run(own_lines())):
        number = current[0][0]
        # A breaker that decides on the line that created it is not in created_on yet.
        first = created_on.setdefault(decision.key, number)
        result.lines.append(((number, first, seq), orjson.dumps(decision.to_json())))
    if job.shard != 0:
        replay.counts.clock_ticks = 0  # every shard saw every tick; shard 0 reports them
    result.breaker_keys = engine.keys.admitted
    result.capped = bool(engine.keys.refused or engine.keys.evicted)
    return result


def replay_sharded(
    path: Path,
    policy: BreakerPolicy,
    mode: Mode,
    *,
    jobs: int,
    dedup_horizon_ms: int,
    dedup_max_ids: int,
    max_breaker_keys: int = DEFAULT_MAX_BREAKER_KEYS,
) -> tuple[list[bytes], ReplayCounts]:
    """Decision lines (JSON, in single-process order) and the summed counts. ConfigError when
    one process would have held more than `max_breaker_keys` breakers (see the module doc)."""
    shard_jobs = [
        ShardJob(
            str(path),
            shard,
            jobs,
            policy.document,
            mode,
            dedup_horizon_ms,
            dedup_max_ids,
            max_breaker_keys,
        )
        for shard in range(jobs)
    ]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(run_shard, shard_jobs))
    # Below the cap no shard evicts or refuses, so the shards hold every key they saw: one
    # process would have reached its cap exactly when their sum exceeds it.
    if any(r.capped for r in results) or sum(r.breaker_keys for r in results) > max_breaker_keys:
        raise ConfigError(
            f"the file has more breaker keys than the cap (GUARDSTREAM_MAX_BREAKER_KEYS="
            f"{max_breaker_keys}): replay it with --jobs 1 to get one worker's decisions"
        )
    merged = sorted((item for result in results for item in result.lines), key=lambda i: i[0])
    counts = ReplayCounts()
    for result in results:
        part = result.counts
        counts.events += part.events
        counts.clock_ticks += part.clock_ticks
        counts.duplicates += part.duplicates
        counts.invalid += part.invalid
        counts.decisions += part.decisions
        counts.errors.extend(part.errors)
    counts.errors = sorted(counts.errors, key=_line_of)[:MAX_REPORTED_ERRORS]
    return [line for _, line in merged], counts


def _line_of(message: str) -> int:
    head = message.split(":", 1)[0].removeprefix("line ")
    return int(head) if head.isdigit() else 0
