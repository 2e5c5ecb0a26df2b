"""Circuit breakers end to end: the CLI worker on the real broker, driven like production.

A burst of 503s for one vendor opens its breaker (state topic, exactly one alert, an audit
record) while another vendor stays closed; with no further traffic a clock tick moves it to
half-open after the wait; successful trial calls close it and resolve the alert.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from schemas.types import epoch_ms, rfc3339_ms
from tests.support.calls import call_document, outcome
from tests.support.cli_scenario import fast_breaker_text, jsonl, read_topic, scenario_env
from tests.support.worker_process import WorkerProcess, run_cli, running_worker
from workers.metrics import BREAKER_ALERTS, BREAKER_TRANSITIONS

TRANSITIONS = f"{BREAKER_TRANSITIONS}_total"
ALERTS = f"{BREAKER_ALERTS}_total"

T = TypeVar("T")

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

T0_MS = 1_795_000_000_000  # event time of the first call (2026-11-18)
WAIT_MS = 2000

POLICY = fast_breaker_text(WAIT_MS)


def call(n: int, vendor: str, *, ok: bool, ts_ms: int) -> dict[str, Any]:
    return call_document(f"{vendor}-{n}", rfc3339_ms(ts_ms), vendor=vendor, **outcome(not ok))


def breaker_env(
    bootstrap: str, prefix: str, tmp_path: Path, *, clock_interval_s: str, **extra: str
) -> dict[str, str]:
    """CLI environment running POLICY (plus `extra` variables), with the topics created."""
    return scenario_env(
        bootstrap,
        prefix,
        tmp_path / "policies",
        {"breakers.yaml": POLICY},
        clock_interval_s=clock_interval_s,
        **extra,
    )


@pytest.fixture(params=["development", "production"])
def worker(
    request: pytest.FixtureRequest, bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> Iterator[tuple[dict[str, str], WorkerProcess]]:
    """A worker in development (at least once) or production mode (exactly once: every
    output goes through Kafka transactions, and readers see only committed records)."""
    # No wall-clock ticks: the test's own clock events are the only way time passes.
    env = breaker_env(bootstrap_servers, topic_prefix, tmp_path, clock_interval_s="0")
    env["GUARDSTREAM_MODE"] = request.param
    with running_worker(env, tmp_path / "worker") as process:
        yield env, process


def publish(env: dict[str, str], documents: list[dict[str, Any]]) -> None:
    result = run_cli(["publish", "-", "--json"], env, stdin=jsonl(documents))
    assert result.returncode == 0, result.stderr.decode()


def eventually(read: Callable[[], T], ok: Callable[[T], bool], timeout_s: float = 30) -> T:
    """`read()` until `ok` holds: in production mode outputs become visible when the worker
    commits the transaction of the batch that made them (GUARDSTREAM_COMMIT_INTERVAL_S)."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = read()
    return value


def state_of(env: dict[str, str], key: str, state: str) -> dict[str, Any]:
    states = eventually(lambda: breakers(env), lambda s: s.get(key, {}).get("state") == state)
    assert states[key]["state"] == state, states
    return states


def breaker_audit(env: dict[str, str]) -> list[dict[str, Any]]:
    """The breakers' audit records (production mode's forensic level also records the input,
    in the input-p<N> chains)."""
    return [r for r in read_topic(env, "audit") if r["chain"].startswith("breakers-")]


def breakers(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    result = run_cli(["breakers", "--json"], env, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return {state["key"]: state for state in orjson.loads(result.stdout)}


def test_a_503_burst_opens_one_breaker_and_recovery_resolves_its_alert(
    worker: tuple[dict[str, str], WorkerProcess],
) -> None:
    env, process = worker
    healthy = [call(n, "anthropic", ok=True, ts_ms=T0_MS + n) for n in range(10)]
    failing = [call(n, "openai", ok=False, ts_ms=T0_MS + 100 + n) for n in range(8)]
    publish(env, healthy + failing)

    assert process.wait_for(TRANSITIONS, 1) == 1, process.log_tail()
    states = state_of(env, "openai/chat", "open")
    assert set(states) == {"openai/chat"}  # anthropic never left CLOSED
    opened = states["openai/chat"]
    assert opened["state"] == "open"
    assert opened["fallback_action"] == "use_cache"
    assert opened["consecutive_failures"] == 5
    opened_at_ms = T0_MS + 104  # the fifth consecutive failure
    assert epoch_ms(datetime.fromisoformat(opened["retry_at"])) == opened_at_ms + WAIT_MS

    # The three failures after the fifth arrive while OPEN: counted, no second alert.
    assert process.wait_for(ALERTS, 1) == 1
    [firing] = eventually(lambda: read_topic(env, "alerts"), bool)
    assert (firing["status"], firing["kind"], firing["severity"]) == (
        "firing",
        "breaker_open",
        "critical",
    )
    assert firing["labels"]["vendor"] == "openai"
    [opened_audit] = eventually(lambda: breaker_audit(env), bool)
    assert opened_audit["event_type"] == "aud.breaker.transition"
    assert (opened_audit["payload"]["from"], opened_audit["payload"]["to"]) == ("closed", "open")
    assert opened_audit["payload"]["event_id"] == "openai-4"
    assert opened_audit["payload"]["evidence"]["consecutive_failures"] == 5

    # No traffic, only time: a tick strictly after retry_at moves it to HALF_OPEN.
    publish(env, [{"type": "clock", "ts": rfc3339_ms(opened_at_ms + WAIT_MS + 1)}])
    assert process.wait_for(TRANSITIONS, 2) == 2, process.log_tail()
    state_of(env, "openai/chat", "half_open")

    recovered_ms = opened_at_ms + WAIT_MS + 10
    publish(env, [call(100 + n, "openai", ok=True, ts_ms=recovered_ms + n) for n in range(2)])
    assert process.wait_for(TRANSITIONS, 3) == 3, process.log_tail()
    state_of(env, "openai/chat", "closed")

    assert process.wait_for(ALERTS, 2) == 2
    alerts = eventually(lambda: read_topic(env, "alerts"), lambda a: len(a) >= 2)
    assert [alert["status"] for alert in alerts] == ["firing", "resolved"]
    assert alerts[0]["fingerprint"] == alerts[1]["fingerprint"]
    audit = eventually(lambda: breaker_audit(env), lambda a: len(a) >= 3)
    assert [(r["payload"]["from"], r["payload"]["to"]) for r in audit] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert [r["seq"] for r in audit] == [0, 1, 2]  # one chain, linked
    assert [r["prev_hash"] for r in audit[1:]] == [r["hash"] for r in audit[:-1]]


def same_partition_vendor(vendor: str, partitions: int = 4) -> str:
    """Another vendor whose `<vendor>/chat` key lands in the same input partition."""
    every = list(range(partitions))
    target = DefaultPartitioner()(f"{vendor}/chat".encode(), every, every)
    for n in range(1000):
        candidate = f"vendor{n}"
        if DefaultPartitioner()(f"{candidate}/chat".encode(), every, every) == target:
            return candidate
    raise AssertionError("no vendor found")


def test_a_restarted_worker_continues_the_partitions_audit_chain(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = breaker_env(bootstrap_servers, topic_prefix, tmp_path, clock_interval_s="0")
    with running_worker(env, tmp_path / "first") as process:
        publish(env, [call(n, "openai", ok=False, ts_ms=T0_MS + n) for n in range(5)])
        assert process.wait_for(TRANSITIONS, 1) == 1, process.log_tail()
    neighbour = same_partition_vendor("openai")
    with running_worker(env, tmp_path / "second") as process:
        publish(env, [call(n, neighbour, ok=False, ts_ms=T0_MS + 10 + n) for n in range(5)])
        assert process.wait_for(TRANSITIONS, 1) == 1, process.log_tail()
    audit = eventually(lambda: breaker_audit(env), lambda a: len(a) >= 2)
    assert [r["payload"]["key"] for r in audit] == ["openai/chat", f"{neighbour}/chat"]
    assert len({r["chain"] for r in audit}) == 1
    assert [r["seq"] for r in audit] == [0, 1]  # continued, not a second seq 0 (a fork)
    assert audit[1]["prev_hash"] == audit[0]["hash"]


def test_the_workers_own_clock_moves_an_open_breaker_without_traffic(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = breaker_env(bootstrap_servers, topic_prefix, tmp_path, clock_interval_s="0.5")
    with running_worker(env, tmp_path / "worker") as process:
        now_ms = time.time_ns() // 1_000_000
        publish(env, [call(n, "openai", ok=False, ts_ms=now_ms + n) for n in range(5)])
        # It opens; WAIT_MS later a wall-clock tick published by the worker itself makes it
        # half-open (on a loaded machine both may be done by the first scrape).
        assert process.wait_for(TRANSITIONS, 2, timeout_s=30) == 2, process.log_tail()
    state_of(env, "openai/chat", "half_open")
    [_, half_open] = eventually(lambda: breaker_audit(env), lambda a: len(a) >= 2)
    assert half_open["payload"]["event_id"].startswith("clock-")


def test_an_operator_forces_a_breaker_open_and_resets_it(
    worker: tuple[dict[str, str], WorkerProcess],
) -> None:
    env, process = worker
    args = ["breakers", "override", "openai", "chat", "force_open", "--reason", "INC-42"]
    sent = run_cli([*args, "--actor", "oncall"], env)
    assert sent.returncode == 0, sent.stderr.decode()
    assert process.wait_for(TRANSITIONS, 1) == 1, process.log_tail()
    state_of(env, "openai/chat", "forced_open")
    assert run_cli(["breakers", "override", "openai", "chat", "reset"], env).returncode == 0
    assert process.wait_for(TRANSITIONS, 2) == 2, process.log_tail()
    state_of(env, "openai/chat", "closed")
    forced, reset = eventually(lambda: breaker_audit(env), lambda a: len(a) >= 2)
    assert (forced["payload"]["to"], forced["payload"]["actor"]) == ("forced_open", "oncall")
    assert forced["payload"]["override_reason"] == "INC-42"
    assert forced["payload"]["reason"] == "override:force_open"
    assert reset["payload"]["to"] == "closed"
    assert read_topic(env, "alerts") == []  # an operator's decision is not an incident
