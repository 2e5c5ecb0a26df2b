"""SLOs end to end: the CLI worker on the real broker, measurements routed across partitions.

A vendor degrades: its availability SLO pages within minutes (event time), and the page
resolves after recovery with no further traffic, driven by clock ticks alone. An hourly SLA
contract over every vendor (events from every input partition) writes its audited report when
the hour closes; a window objective breached long enough sends a degradation command, and its
undo once it recovers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.types import rfc3339_ms
from tests.support.calls import call_document, outcome
from tests.support.cli_scenario import jsonl, read_topic, scenario_env
from tests.support.worker_process import run_cli, running_worker
from workers.metrics import SLO_DECISIONS

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

T0_MS = 1_794_960_000_000  # 2026-11-18T00:00:00Z, an hour boundary
MIN = 60_000
DECISIONS = f"{SLO_DECISIONS}_total"
VENDORS = ["openai", "anthropic", "mistral", "cohere"]
DEGRADED_FROM_MIN, DEGRADED_UNTIL_MIN, TRAFFIC_UNTIL_MIN = 20, 25, 30

POLICY = """
slos:
  slo.availability:
    sli: {kind: availability, excluded_error_types: ["401"]}
    target: 0.999
    period: 30d
    group_by: [vendor, tool]
objectives:
  fleet_availability:
    metric: availability
    window: 5m
    target: 0.995
    warning_at: 0.99
    critical_at: 0.95
sla_contracts:
  sla.fleet:
    tier: premium
    availability_percent: 99.9
    response_time_p99_ms: 1000
    period: {calendar: hourly, tz: UTC}
    selector: {vendor: "*"}
    penalties:
      - {breach_type: availability, threshold: 99.5, credit_percent: 10}
degradation_strategies:
  availability_critical:
    triggers:
      - {objective: fleet_availability, breach_duration: 2m}
    actions:
      - {type: emergency_fallback, parameter: FUSION_MODE, value: baseline_only}
"""


def calls() -> list[dict[str, Any]]:
    """Two calls a second per vendor for 30 minutes; openai fails 40 % of its calls from
    minute 20 to 25 (a 400x burn of a 99.9 % objective)."""
    events = []
    for second in range(TRAFFIC_UNTIL_MIN * 60):
        for n, vendor in enumerate(VENDORS):
            for k in range(2):
                degraded = (
                    vendor == "openai"
                    and DEGRADED_FROM_MIN * 60 <= second < DEGRADED_UNTIL_MIN * 60
                    and (second + k) % 5 < 2
                )
                ts = rfc3339_ms(T0_MS + second * 1000 + n * 10 + k * 500)
                events.append(
                    call_document(f"{vendor}-{second}-{k}", ts, vendor=vendor, **outcome(degraded))
                )
    return events


def ticks() -> list[dict[str, Any]]:
    """Clock ticks every 30 s of event time from the end of traffic to minute 75: the only
    thing that moves time once the calls stop."""
    return [
        {"type": "clock", "ts": rfc3339_ms(T0_MS + ms)}
        for ms in range(TRAFFIC_UNTIL_MIN * MIN, 75 * MIN + 1, 30_000)
    ]


def wait_for_audit(
    env: dict[str, str], event_type: str, timeout_s: float = 120
) -> list[dict[str, Any]]:
    """The audit topic once it holds a record of `event_type`."""
    deadline = time.monotonic() + timeout_s
    while True:
        audit = read_topic(env, "audit")
        if any(r["event_type"] == event_type for r in audit) or time.monotonic() > deadline:
            return audit
        time.sleep(1)


def test_a_vendor_degradation_pages_resolves_without_traffic_and_the_sla_period_closes(
    bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = scenario_env(
        bootstrap_servers, topic_prefix, tmp_path / "policies", {"slos.yaml": POLICY}
    )
    lines = jsonl([*calls(), *ticks()])
    with running_worker(env, tmp_path / "worker") as process:
        published = run_cli(["publish", "-"], env, stdin=lines, timeout=180)
        assert published.returncode == 0, published.stderr.decode()
        # page fired + resolved, objective warning/critical fired + resolved, degrade + undo,
        # the SLA report: at least 8 decisions.
        assert process.wait_for(DECISIONS, 8, timeout_s=120) >= 8, process.log_tail()
        # The SLA report closes the period at its last clock tick: it can come after the
        # eighth decision, so wait for it itself before stopping the worker.
        audit = wait_for_audit(env, "aud.slo.sla_report")

    alerts = [a for a in read_topic(env, "alerts") if a["kind"] == "slo_burn_rate"]
    pages = [a for a in alerts if a["labels"]["severity"] == "page"]
    assert [a["status"] for a in pages] == ["firing", "resolved"], alerts
    fired, resolved = pages
    assert fired["labels"]["slo"] == "slo.availability"
    assert (fired["labels"]["vendor"], fired["labels"]["tool"]) == ("openai", "chat")
    assert fired["labels"]["tier"] in ("page-1h", "page-6h")
    assert float(fired["labels"]["long_burn_rate"]) >= fired["threshold"]
    # Pages within minutes of the degradation (event time), only for the degraded vendor.
    started = _ms(fired["starts_at"])
    assert T0_MS + DEGRADED_FROM_MIN * MIN < started <= T0_MS + (DEGRADED_FROM_MIN + 6) * MIN
    assert {a["labels"]["vendor"] for a in alerts} == {"openai"}
    # Resolves after recovery with no further traffic (clock ticks only), about a short
    # window after the errors stop.
    ended = _ms(resolved["ends_at"])
    assert T0_MS + DEGRADED_UNTIL_MIN * MIN < ended <= T0_MS + 75 * MIN
    assert resolved["fingerprint"] == fired["fingerprint"]

    reports = [r for r in audit if r["event_type"] == "aud.slo.sla_report"]
    assert len(reports) == 1, [r["event_type"] for r in audit]
    report = reports[0]["payload"]
    assert (report["contract_id"], report["period"]) == ("sla.fleet", "2026-11-18T00")
    assert report["total"] == TRAFFIC_UNTIL_MIN * 60 * 2 * len(VENDORS)
    # 5 minutes of 40 % openai failures out of 30 minutes of four vendors: 98.33 %.
    assert report["availability_percent"] == pytest.approx(100 - 100 * 0.4 * 5 / 120, abs=0.01)
    assert report["credit_percent"] == 10

    control = read_topic(env, "control")
    assert [(c["kind"], c["target"]) for c in control] == [
        ("degrade", "global"),
        ("undo", "global"),
    ]
    assert control[0]["parameters"] == {"FUSION_MODE": "baseline_only"}
    assert control[1]["parameters"]["command_id"] == control[0]["command_id"]

    result = run_cli(["slos", "--json"], env, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    states = {state["key"]: state for state in orjson.loads(result.stdout)}
    openai = states["slo:slo.availability/openai/chat"]
    assert openai["kind"] == "burn_rate"
    assert openai["alerting"].get("page") is None  # resolved
    assert openai["error_budget_remaining"] < 0  # 40 % failures for 5 min over 30 min
    assert states["slo:slo.availability/cohere/chat"]["error_budget_remaining"] == 1.0
    assert states["objective:fleet_availability"]["level"] == "ok"


def _ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
