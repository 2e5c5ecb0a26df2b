"""Exact replay from the audit trail: a production-mode worker (exactly once, forensic audit)
runs a mixed breaker / budget / SLO workload on the real broker; the exported trail verifies,
and `replay --source audit --verify` decides every recorded decision again, with no mismatch.
Under a stricter policy the same replay reports the extra decisions (what-if)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.types import rfc3339_ms
from tests.support.calls import call_document, outcome
from tests.support.cli_scenario import (
    availability_slo_text,
    export_when_settled,
    jsonl,
    scenario_env,
    team_budget_text,
    write_policy_dir,
)
from tests.support.worker_process import run_cli, running_worker
from topics.catalog import INPUT_TOPICS, TopicCatalog, TopicName
from workers.metrics import BUDGET_DECISIONS, SLO_DECISIONS

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

T0_MS = 1_794_960_000_000  # 2026-11-18T00:00:00Z
MIN = 60_000
VENDORS = ["openai", "anthropic", "mistral", "cohere"]
EMAIL, MRN, SSN = "jane.doe@example.com", "MRN: 884213", "123-45-6789"
PHONE, MOBILE = "(415) 555-2671", 4155552671  # a phone number in text, and one as a JSON number
CLASSIFIED = (EMAIL, MRN, SSN, "884213", PHONE, str(MOBILE))

BUDGETS = team_budget_text("research", limit_usd=20, notify_at_pct=(50, 100))
SLOS = availability_slo_text(0.99)
STRICTER_BUDGETS = team_budget_text("research", limit_usd=5, notify_at_pct=(50, 100))


def workload() -> list[dict[str, Any]]:
    """Ten minutes of two calls a second per vendor, research spending $0.01 a call; openai
    fails every call from minute 4 to 6 (its breaker opens, its SLO pages), then recovers."""
    events: list[dict[str, Any]] = []
    for second in range(10 * 60):
        for n, vendor in enumerate(VENDORS):
            for k in range(2):
                failing = vendor == "openai" and 4 * 60 <= second < 6 * 60
                events.append(
                    call_document(
                        f"{vendor}-{second}-{k}",
                        rfc3339_ms(T0_MS + second * 1000 + n * 10 + k * 500),
                        vendor=vendor,
                        duration_ms=100,
                        cost_usd="0.01",
                        team="research" if k == 0 else "search",
                        **outcome(failing),
                    )
                )
    # Classified data in the input: a user's e-mail, a note with a medical record number, an
    # SSN and a phone number, and a phone number sent as a JSON number. None of it may reach
    # any topic guardstream writes unmasked.
    for event in events[::500]:
        event["user"] = EMAIL
        event["attributes"] = {"note": f"{MRN} follow-up, ssn {SSN}, call {PHONE}"}
        event["mobile"] = MOBILE
    events += [
        {"type": "clock", "ts": rfc3339_ms(T0_MS + ms)} for ms in range(10 * MIN, 30 * MIN, MIN)
    ]
    return events


async def every_output_value(bootstrap: str, catalog: TopicCatalog) -> dict[TopicName, bytes]:
    """Every committed key and value of every topic guardstream writes (not the inputs),
    joined per topic."""
    outputs = [name for name in TopicName if name not in INPUT_TOPICS]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(catalog.name(name), p)
            for name in outputs
            for p in range(catalog.spec(name).partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        by_topic = {catalog.name(name): name for name in outputs}
        joined: dict[TopicName, list[bytes]] = {}
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                joined.setdefault(by_topic[tp.topic], []).extend(
                    (r.key or b"") + b"\n" + (r.value or b"") for r in records
                )
        return {name: b"\n".join(values) for name, values in joined.items()}
    finally:
        await consumer.stop()


def test_a_forensic_trail_replays_to_the_recorded_decisions_and_what_if_shows_differences(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    env = scenario_env(
        bootstrap_servers,
        topic_prefix,
        policies,
        {"budgets.yaml": BUDGETS, "slos.yaml": SLOS},
        GUARDSTREAM_MODE="production",  # exactly once, forensic audit level
    )
    lines = jsonl(workload())
    with running_worker(env, tmp_path / "worker") as process:
        published = run_cli(["publish", "-"], env, stdin=lines, timeout=180)
        assert published.returncode == 0, published.stderr.decode()
        assert process.wait_for(f"{BUDGET_DECISIONS}_total", 2, timeout_s=120) >= 2
        assert process.wait_for(f"{SLO_DECISIONS}_total", 2, timeout_s=120) >= 2
        # Exactly once: outputs become visible when the worker commits its transaction.
        trail = export_when_settled(env, tmp_path / "trail.jsonl")
    verified = run_cli(["audit", "verify", "--input", str(trail)], env, timeout=120)
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    records = [orjson.loads(line) for line in trail.read_bytes().splitlines()]
    chains = {record["chain"].rsplit("-p", 1)[0] for record in records}
    assert {"input", "breakers", "budgets", "slos"} <= chains
    for raw in CLASSIFIED:
        assert raw.encode() not in trail.read_bytes()
    outputs = asyncio.run(every_output_value(bootstrap_servers, TopicCatalog(prefix=topic_prefix)))
    assert outputs.keys() >= {TopicName.AUDIT, TopicName.ALERTS, TopicName.BUDGET_STATE}
    for topic, values in outputs.items():
        for raw in CLASSIFIED:
            assert raw.encode() not in values, f"{raw!r} unmasked in {topic}"
    sensitive = [r for r in records if r["event_type"] == "aud.data.sensitive"]
    assert sensitive
    assert {"classification", "handling_method", "jurisdiction", "user"} <= sensitive[0][
        "payload"
    ].keys()
    assert {f["type"] for r in sensitive for f in r["payload"]["findings"]} >= {
        "email",
        "medical_record",
        "ssn",
        "phone",
    }

    replay = ["replay", "--source", "audit", "--input", str(trail), "--json"]
    result = run_cli([*replay, "--policy", str(policies), "--verify"], env, timeout=180)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    summary = orjson.loads(result.stdout)
    # Every call, and each clock tick once per input partition it was published to.
    calls = sum(1 for doc in workload() if "event_id" in doc)
    assert summary["events"] > calls
    assert summary["mismatches"] == 0
    # The built-in breaker opens, half-opens and closes; two budget alerts; a page and more.
    assert summary["recorded"] == summary["replayed"] >= 6

    # The worker recorded its policies (aud.policy.changed, every kind at its first start):
    # without --policy the replay runs under them and decides the same.
    changed = {r["payload"]["kind"]: r["payload"] for r in records if r["chain"] == "policy"}
    assert set(changed) == {
        "breakers",
        "budgets",
        "slos",
        "classification",
        "audit",
        "dependencies",
        "vendors",
    }
    assert changed["budgets"]["previous_version"] is None
    assert changed["budgets"]["changes"] == ["added budgets.bud.team.research"]
    assert changed["slos"]["source"] == str(policies / "slos.yaml")
    without_policy = {k: v for k, v in env.items() if k != "GUARDSTREAM_POLICY_DIR"}
    recorded = run_cli([*replay, "--verify"], without_policy, timeout=180)
    assert recorded.returncode == 0, recorded.stdout.decode() + recorded.stderr.decode()
    assert orjson.loads(recorded.stdout)["mismatches"] == 0
    assert orjson.loads(recorded.stdout)["recorded"] == summary["recorded"]

    stricter = write_policy_dir(
        tmp_path / "stricter", {"budgets.yaml": STRICTER_BUDGETS, "slos.yaml": SLOS}
    )
    what_if = run_cli([*replay, "--policy", str(stricter)], env, timeout=180)
    assert what_if.returncode == 0, what_if.stderr.decode()
    diff = orjson.loads(what_if.stdout)
    assert diff["mismatches"] > 0
    extra_alerts = [p for p in diff["extra"] if p[0] == "budget" and p[1] == "alert"]
    assert extra_alerts  # a $5 limit is crossed earlier: different alerts
    failed = run_cli([*replay, "--policy", str(stricter), "--verify"], env, timeout=180)
    assert failed.returncode == 7
