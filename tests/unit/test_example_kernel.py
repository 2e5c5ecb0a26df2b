"""The README's "How to add a kernel" example (`examples/first_failure.py`) runs beside the
built-in kernels through the replay driver, the way the worker's shell would run it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from examples.first_failure import FIRST_FAILURE, KERNEL, FirstFailureCore
from schemas.types import rfc3339_ms
from workers.kernel_set import KERNELS
from workers.policies.policy_set import default_policies
from workers.replay.pipeline import PipelineReplay
from workers.replay.run import Replay
from workers.settings import Mode
from workers.shell.spec import KernelSpec

DAY_MS = 86_400_000
T0 = 1_795_000_000_000 - 1_795_000_000_000 % DAY_MS  # midnight UTC


def call(n: int, vendor: str, at_ms: int, status: str = "error") -> bytes:
    document: dict[str, Any] = {
        "event_id": f"e{n}",
        "ts": rfc3339_ms(at_ms),
        "vendor": vendor,
        "tool": "chat",
        "status": status,
        "duration_ms": 10,
    }
    return orjson.dumps(document)


def replay(
    lines: list[bytes], kernels: Sequence[KernelSpec[Any]] = (*KERNELS, FIRST_FAILURE)
) -> tuple[list[dict[str, Any]], PipelineReplay]:
    pipeline = PipelineReplay.for_file(default_policies(Mode.DEVELOPMENT), kernels=kernels)
    driver = Replay(pipeline, dedup_horizon_ms=60_000, dedup_max_ids=1000)
    return [d.to_json() for d in driver.run(enumerate(lines, start=1))], pipeline


def test_the_first_failure_of_each_vendor_and_day_is_recorded_once() -> None:
    lines = [
        call(1, "openai", T0 + 1_000, status="success"),  # a success records nothing
        call(2, "openai", T0 + 2_000),  # openai's first failure of day 0
        call(3, "openai", T0 + 3_000),  # again that day: nothing
        call(4, "anthropic", T0 + 4_000, status="timeout"),  # anthropic's first
        call(5, "openai", T0 + DAY_MS + 1),  # the next day: recorded again
    ]
    decisions, pipeline = replay(lines)
    mine = [(d["key"], d["event_id"], d["status"]) for d in decisions if d["kernel"] == KERNEL]
    assert mine == [
        ("openai", "e2", "error"),
        ("anthropic", "e4", "timeout"),
        ("openai", "e5", "error"),
    ]
    core = pipeline.core(FIRST_FAILURE)
    assert isinstance(core, FirstFailureCore)
    assert [(s.vendor, s.day) for s in core.states()] == [
        ("anthropic", T0 // DAY_MS),
        ("openai", T0 // DAY_MS + 1),
    ]


def test_it_runs_beside_the_built_in_kernels_without_changing_their_decisions() -> None:
    lines = [call(n, "openai", T0 + n * 100) for n in range(1, 40)]
    with_toy, _ = replay(lines)
    alone, _ = replay(lines, KERNELS)
    assert any(d["kernel"] == "breaker" for d in alone)  # the failures trip the breaker
    assert [d for d in with_toy if d["kernel"] != KERNEL] == alone
