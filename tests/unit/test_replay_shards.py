"""Sharded replay prints exactly what one process prints."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.policy import PolicyDocument, PolicyKind
from schemas.types import rfc3339_ms
from tests.support.pipelines import breakers_only
from workers.policies.breakers import BreakerPolicy
from workers.replay.run import Replay
from workers.replay.shards import replay_sharded
from workers.settings import Mode

T0 = 1_795_000_000_000
SPEC: dict[str, Any] = {
    "breakers": {
        "flaky": {
            "failure_threshold": 3,
            "wait_in_open_ms": 500,
            "permitted_calls_in_half_open": 2,
            "success_threshold": 1,
            "sliding_window_type": "time",
            "sliding_window_size": 10,
        }
    },
    "default": "flaky",
}


def chaotic_file(path: Path, seed: int) -> Path:
    """Many keys failing in bursts, clock ticks that move several breakers at once, plus
    duplicates, invalid lines and cost events."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    for n in range(3000):
        ts = T0 + n * 7
        if n % 97 == 0:
            lines.append(orjson.dumps({"type": "clock", "ts": rfc3339_ms(ts)}))
        vendor = f"v{rng.randrange(25)}"
        failing = rng.random() < (0.7 if (n // 400) % 2 else 0.1)
        document = {
            "event_id": f"e{n}",
            "ts": rfc3339_ms(ts),
            "vendor": vendor,
            "tool": rng.choice(["chat", "embed"]),
            "status": "error" if failing else "success",
            "error_type": "503" if failing else None,
            "duration_ms": rng.randrange(1, 500),
        }
        lines.append(orjson.dumps({k: v for k, v in document.items() if v is not None}))
        if rng.random() < 0.02:  # a producer retry: the same record again
            lines.append(lines[-1])
        if n % 500 == 3:
            lines.append(b"{broken")
        if n % 700 == 5:
            lines.append(
                orjson.dumps({"event_id": f"c{n}", "ts": ts, "cost_usd": "1", "source": "x"})
            )
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def single_process(path: Path, policy: BreakerPolicy) -> tuple[list[bytes], Any]:
    replay = Replay(breakers_only(policy), dedup_horizon_ms=60_000, dedup_max_ids=10_000)
    with path.open("rb") as source:
        numbered = ((n, line) for n, line in enumerate(source, start=1) if line.strip())
        lines = [orjson.dumps(decision.to_json()) for decision in replay.run(numbered)]
    return lines, replay.counts


@pytest.mark.parametrize(("seed", "jobs"), [(1, 2), (2, 3), (3, 4)])
def test_sharded_output_equals_single_process_output(tmp_path: Path, seed: int, jobs: int) -> None:
    policy = BreakerPolicy.from_document(PolicyDocument.from_spec(PolicyKind.BREAKERS, "t", SPEC))
    path = chaotic_file(tmp_path / "events.jsonl", seed)
    expected, expected_counts = single_process(path, policy)
    assert len(expected) > 100  # the file really makes many decisions, ticks move several
    lines, counts = replay_sharded(
        path, policy, Mode.DEVELOPMENT, jobs=jobs, dedup_horizon_ms=60_000, dedup_max_ids=10_000
    )
    assert lines == expected
    summary = (counts.events, counts.clock_ticks, counts.duplicates, counts.invalid)
    assert summary == (
        expected_counts.events,
        expected_counts.clock_ticks,
        expected_counts.duplicates,
        expected_counts.invalid,
    )
    assert counts.errors == expected_counts.errors
