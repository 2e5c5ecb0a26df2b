"""Generated replay input as JSON lines, shared by the replay benchmarks (`bench.replay`,
`bench.replay_slos`): writing it, reading it back numbered, and timing the floor any replay
of it pays and the replay itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from schemas.types import rfc3339_ms
from workers.replay.pipeline import PipelineReplay
from workers.replay.run import Replay

T0_MS = 1_795_000_000_000
VENDORS = ["openai", "anthropic", "mistral", "cohere", "google", "azure", "bedrock", "groq"]

Clock = Callable[[], float]
"""`time.perf_counter` (wall time) or `time.process_time` (CPU time, on a shared machine)."""


def write_events(path: Path, events: int, fields: Callable[[int], dict[str, object]]) -> None:
    """`events` ToolInvocations, the n-th `event_id` "e<n>" with `fields(n)`, 2 ms of event
    time apart (500 events a second), and a clock tick before every 1,000th."""
    with path.open("wb") as out:
        for n in range(events):
            ts_ms = T0_MS + n * 2
            if n % 1000 == 999:
                out.write(orjson.dumps({"type": "clock", "ts": rfc3339_ms(ts_ms)}) + b"\n")
            document = {"event_id": f"e{n}", "ts": rfc3339_ms(ts_ms), **fields(n)}
            out.write(orjson.dumps(document) + b"\n")


def numbered(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as source:
        yield from enumerate(source, start=1)


def raw_rate(path: Path, clock: Clock) -> tuple[int, float]:
    """Lines, and lines/s of read + orjson.loads: the floor any replay of the file pays."""
    loads = orjson.loads
    started = clock()
    count = 0
    for _, line in numbered(path):
        loads(line)
        count += 1
    return count, count / (clock() - started)


def replay_rate(path: Path, pipeline: PipelineReplay, clock: Clock) -> tuple[float, int]:
    """Events/s of `guardstream replay`'s loop running `pipeline` over the file, and how many
    decisions it made."""
    replay = Replay(pipeline, dedup_horizon_ms=3_600_000, dedup_max_ids=1_000_000)
    started = clock()
    decisions = sum(1 for _ in replay.run(numbered(path)))
    elapsed = clock() - started
    return (replay.counts.events + replay.counts.clock_ticks) / elapsed, decisions
