"""`shell.snapshot`: a core dumped and loaded anywhere in a stream goes on deciding exactly as
the core that never stopped, and the reader takes nothing but guardstream's own state."""

from __future__ import annotations

import pickle
import zlib
from functools import cache
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.types import rfc3339_ms
from tests.support.policy_files import CONFIGS
from workers.policies.policy_set import PolicySet, load_policies
from workers.replay.pipeline import PipelineReplay
from workers.replay.run import Replay
from workers.settings import Mode
from workers.shell.snapshot import SnapshotCodec, SnapshotError
from workers.simulate.scenario import Scenario
from workers.simulate.traffic import TrafficGenerator

T0_MS = 1_795_000_000_000
EVENTS = 3000
TICK_EVERY = 250


@cache
def policies() -> PolicySet:
    return load_policies(CONFIGS, Mode.PRODUCTION)


@cache
def trace() -> tuple[bytes, ...]:
    """Simulated fleet traffic (calls, costs, latencies, duplicates, corrupt records) with a
    clock tick every `TICK_EVERY` events, as `replay --input` reads it."""
    generator = TrafficGenerator(Scenario(), seed=11)
    lines: list[bytes] = []
    for n in range(EVENTS):
        now_ms = T0_MS + n * 40
        lines.append(generator.next_record(elapsed_s=n * 0.04, now_ms=now_ms).value)
        if n % TICK_EVERY == TICK_EVERY - 1:
            lines.append(orjson.dumps({"type": "clock", "ts": rfc3339_ms(now_ms)}))
    return tuple(lines)


def decisions(snapshot_at: int | None) -> list[str]:
    """Every decision of the trace, the cores dumped and loaded after line `snapshot_at`."""
    pipeline = PipelineReplay.for_file(policies())
    replay = Replay(pipeline, dedup_horizon_ms=600_000, dedup_max_ids=100_000)
    lines = list(enumerate(trace(), 1))
    split = len(lines) if snapshot_at is None else snapshot_at
    out = [decision.to_json() for decision in replay.run(lines[:split])]
    codec = SnapshotCodec(policies())
    for kernel in pipeline.kernels:
        for partition, core in list(kernel.cores.items()):
            kernel.cores[partition] = codec.load(codec.dump(core))
    out += [decision.to_json() for decision in replay.run(lines[split:])]
    return [orjson.dumps(line, option=orjson.OPT_SORT_KEYS).decode() for line in out]


@cache
def uninterrupted() -> tuple[str, ...]:
    return tuple(decisions(None))


def test_the_trace_decides_something_in_every_kernel() -> None:
    kernels = {orjson.loads(line)["kernel"] for line in uninterrupted()}
    assert kernels == {"breaker", "budget", "slo"}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=EVENTS + EVENTS // TICK_EVERY))
def test_a_snapshot_anywhere_changes_no_decision(snapshot_at: int) -> None:
    assert decisions(snapshot_at) == list(uninterrupted())


def test_policies_are_referenced_not_copied() -> None:
    pipeline = PipelineReplay.for_file(policies())
    replay = Replay(pipeline, dedup_horizon_ms=600_000, dedup_max_ids=100_000)
    list(replay.run(enumerate(trace()[:500], 1)))
    codec = SnapshotCodec(policies())
    budget = next(kernel for kernel in pipeline.kernels if kernel.spec.kernel == "budget")
    loaded = codec.load(codec.dump(budget.cores[0]))
    assert loaded.engine.policy is policies().budgets


def test_a_snapshot_names_nothing_but_guardstreams_state() -> None:
    codec = SnapshotCodec(policies())
    for forbidden in (pickle.dumps(print), pickle.dumps(getattr)):
        with pytest.raises(SnapshotError, match="may not name builtins"):
            codec.load(zlib.compress(forbidden))
    with pytest.raises(SnapshotError, match="unreadable"):
        codec.load(b"not a snapshot")


def test_enum_members_and_zones_are_written_by_value() -> None:
    codec = SnapshotCodec(policies())
    state = {"mode": Mode.PRODUCTION, "modes": [Mode.DEVELOPMENT], "zone": ZoneInfo("UTC")}
    assert codec.load(codec.dump(state)) == state
