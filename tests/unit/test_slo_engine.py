"""SloEngine: routing and SLIs, alert lines, degradation, SLA reports, and the live path
(routed per-second rows through the wire format and the watermark reorder) deciding exactly
what replay decides."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.clock import ClockTick
from schemas.codec import encode
from schemas.events import LatencyEvent, ToolInvocation
from schemas.policy import PolicyDocument, PolicyKind
from schemas.stream import StreamEvent
from schemas.types import from_epoch_ms
from schemas.watermark import SourceWatermark
from tests.support.calls import call_document, outcome
from workers.decisions import AlertDecision, ControlDecision, Decision, RecordDecision
from workers.policies.slos import SloPolicy, from_document
from workers.slos.counting import SloCounting
from workers.slos.engine import SloEngine
from workers.slos.records import count_batch
from workers.slos.routing import SloRouter, targets_of

T0 = 1_794_960_000_000  # 2026-11-18T00:00:00Z
MIN = 60_000
VENDORS = ("openai", "anthropic", "mistral")

SPEC: dict[str, Any] = {
    "slos": {
        "slo.availability": {
            "sli": {"kind": "availability", "excluded_error_types": ["401"]},
            "target": 0.999,
            "period": "30d",
            "group_by": ["vendor", "tool"],
            "min_events": 5,
        },
        "slo.global.latency": {
            "sli": {"kind": "latency", "latency_threshold_ms": 500},
            "target": 0.99,
            "period": "7d",
            "group_by": [],
            "min_events": 5,
        },
    },
    "objectives": {
        "fleet.p95": {
            "metric": "latency_quantile",
            "quantile": 0.95,
            "window": "5m",
            "target": 400,
            "warning_at": 800,
            "critical_at": 2000,
            "min_events": 5,
        },
    },
    "sla_contracts": {
        "sla.fleet": {
            "tier": "premium",
            "availability_percent": 99.9,
            "response_time_p99_ms": 1000,
            "period": {"calendar": "hourly", "tz": "UTC"},
            "selector": {"vendor": "*"},
            "penalties": [{"breach_type": "availability", "threshold": 99.5, "credit_percent": 10}],
        }
    },
    "degradation_strategies": {
        "shed": {
            "triggers": [{"objective": "slo.availability", "breach_duration": "1m"}],
            "actions": [{"type": "fallback", "parameter": "FUSION_MODE", "value": "baseline"}],
        }
    },
}


def policy(spec: dict[str, Any] | None = None) -> SloPolicy:
    doc = PolicyDocument.from_spec(PolicyKind.SLOS, "slos", spec or SPEC, source="slos.yaml")
    return from_document(doc)


def call(n: int, ts_ms: int, vendor: str, *, ok: bool = True, **extra: Any) -> ToolInvocation:
    """A call at `ts_ms`; `extra` overrides its fields (status, error_type, duration_ms, ...)."""
    fields = {**outcome(not ok), **extra}
    return ToolInvocation(
        **call_document(f"{vendor}-{n}", from_epoch_ms(ts_ms), vendor=vendor, **fields)
    )


def outage(minutes: int = 30, bad_from: int = 10, bad_until: int = 15) -> list[StreamEvent]:
    """Two calls a second per vendor; openai fails half of them from bad_from to bad_until,
    then clock ticks every 30 s for an hour with no traffic."""
    events: list[StreamEvent] = []
    for second in range(minutes * 60):
        for v, vendor in enumerate(VENDORS):
            for k in range(2):
                bad = vendor == "openai" and bad_from * 60 <= second < bad_until * 60 and k == 0
                ts = T0 + second * 1000 + v * 10 + k * 400
                events.append(call(second * 2 + k, ts, vendor, ok=not bad))
    ticks = range(minutes * MIN, (minutes + 60) * MIN + 1, 30_000)
    return events + [ClockTick.at(T0 + ms) for ms in ticks]


def replay(events: list[StreamEvent], slo_policy: SloPolicy | None = None) -> list[Decision]:
    engine = SloEngine(slo_policy or policy())
    return [decision for event in events for decision in engine.apply(event)]


def live(
    events: list[StreamEvent], slo_policy: SloPolicy | None = None, batch: int = 50
) -> list[Decision]:
    """What the agents decide: each vendor's events in its own input partition, routed and
    summed per key and second per batch, through the wire format, reordered under the
    watermarks; a clock tick reaches every partition."""
    chosen = slo_policy or policy()
    router = SloRouter(targets_of(chosen))
    sources = [("tool-invocations", p) for p in range(len(VENDORS))]
    counting = SloCounting(chosen, sources)
    partitions: dict[int, list[StreamEvent]] = {p: [] for p in range(len(VENDORS))}
    decisions: list[Decision] = []

    def flush(partition: int) -> None:
        pending = partitions[partition]
        if not pending:
            return
        records, reached, _ = count_batch(
            router, pending, source_topic="tool-invocations", source_partition=partition
        )
        pending.clear()
        for record in records:
            decisions.extend(counting.apply(encode(record)))
        mark = SourceWatermark(
            source_topic="tool-invocations", source_partition=partition, ts_ms=reached
        )
        decisions.extend(counting.apply(encode(mark)))

    for event in events:
        if isinstance(event, ClockTick):
            for partition in partitions:
                partitions[partition].append(event)
                flush(partition)
            continue
        assert isinstance(event, ToolInvocation)
        partition = VENDORS.index(event.vendor)
        partitions[partition].append(event)
        if len(partitions[partition]) >= batch:
            flush(partition)
    for partition in partitions:
        flush(partition)
    return decisions


def essence(decisions: list[Decision]) -> list[tuple[Any, ...]]:
    """What must agree between replay and the live path (evidence ids may differ: the last
    event of a second depends on how partitions interleave)."""
    out = []
    for d in decisions:
        if isinstance(d, AlertDecision):
            out.append(("alert", d.key, d.ts_ms, d.alert.status.value, d.alert.fingerprint))
        elif isinstance(d, ControlDecision):
            out.append(("control", d.key, d.ts_ms, d.command.kind.value))
        elif isinstance(d, RecordDecision):
            facts = {k: v for k, v in d.facts.items() if k != "late_events"}
            out.append(("record", d.key, d.ts_ms, d.what, orjson.dumps(facts, default=str)))
    return sorted(out)


def test_a_degraded_vendor_pages_once_and_resolves_with_clock_ticks_alone() -> None:
    decisions = replay(outage())
    burn = [
        d for d in decisions if isinstance(d, AlertDecision) and d.alert.kind == "slo_burn_rate"
    ]
    pages = [d for d in burn if d.alert.labels["severity"] == "page"]
    assert [d.alert.status.value for d in pages] == ["firing", "resolved"]
    fired, resolved = pages
    line = fired.to_json()
    labels = line["labels"]
    assert labels["slo"] == "slo.availability"
    assert (labels["vendor"], labels["tool"]) == ("openai", "chat")
    assert labels["tier"] in ("page-1h", "page-6h")
    assert float(labels["long_burn_rate"]) >= line["threshold"]
    assert float(labels["short_burn_rate"]) >= line["threshold"]
    assert {"long_window", "short_window", "error_budget_remaining"} <= labels.keys()
    assert T0 + 10 * MIN < fired.ts_ms <= T0 + 16 * MIN
    # No traffic after minute 30: the page resolves on ticks alone, after the short window.
    assert T0 + 30 * MIN < resolved.ts_ms <= T0 + 90 * MIN
    assert resolved.event_id.startswith("clock-")
    assert {d.alert.labels["vendor"] for d in burn} == {"openai"}


def test_a_resolution_carries_the_figures_at_resolution_not_the_firing_ones() -> None:
    pages = [
        d
        for d in replay(outage())
        if isinstance(d, AlertDecision)
        and d.alert.kind == "slo_burn_rate"
        and d.alert.labels["severity"] == "page"
    ]
    fired, resolved = (d.alert for d in pages)
    # The outage kept spending the error budget after the page fired.
    left_at_firing = float(fired.labels["error_budget_remaining"])
    left_at_resolution = float(resolved.labels["error_budget_remaining"])
    assert left_at_resolution < left_at_firing
    assert f"{left_at_resolution:.1%} of the budget left" in resolved.summary
    assert resolved.value is not None
    assert resolved.value == pytest.approx(float(resolved.labels["long_burn_rate"]), rel=1e-4)
    assert resolved.value != fired.value


def test_a_breached_slo_degrades_after_its_duration_and_undoes_on_recovery() -> None:
    decisions = replay(outage())
    commands = [d for d in decisions if isinstance(d, ControlDecision)]
    assert [c.command.kind.value for c in commands] == ["degrade", "undo"]
    degrade, undo = commands
    page = next(
        d
        for d in decisions
        if isinstance(d, AlertDecision) and d.alert.labels.get("severity") == "page"
    )
    assert degrade.ts_ms == page.ts_ms + MIN  # breached for exactly the 1 minute duration
    assert degrade.command.parameters == {"FUSION_MODE": "baseline"}
    assert undo.command.parameters["command_id"] == degrade.command.command_id


def test_the_hourly_sla_contract_reports_at_period_close() -> None:
    decisions = replay(outage())
    reports = [d for d in decisions if isinstance(d, RecordDecision) and d.what == "sla_report"]
    assert len(reports) == 1
    facts = reports[0].facts
    assert facts["period"] == "2026-11-18T00"
    assert facts["total"] == 30 * 60 * 2 * len(VENDORS)
    # 5 minutes of half of openai's calls failing, out of 30 minutes of three vendors.
    assert abs(facts["availability_percent"] - (100 - 100 * 0.5 * 5 / 90)) < 1e-9
    assert facts["credit_percent"] == 10
    assert reports[0].ts_ms == T0 + 60 * MIN


def test_slis_rejected_and_excluded_calls_are_not_valid_events() -> None:
    engine = SloEngine(policy())
    events: list[StreamEvent] = [
        call(1, T0, "openai"),
        call(2, T0 + 10, "openai", ok=False),
        call(3, T0 + 20, "openai", status="error", error_type="401"),  # excluded
        call(4, T0 + 30, "openai", status="rejected", error_type=None),  # never reached it
        call(5, T0 + 40, "openai", status="timeout", error_type=None, duration_ms=30_000),
        ClockTick.at(T0 + 5_000),
    ]
    for event in events:
        engine.apply(event)
    states = {s.key: s for s in engine.states()}  # type: ignore[attr-defined]
    availability = states["slo:slo.availability/openai/chat"]
    assert (availability.good, availability.total) == (1, 3)
    latency = states["slo:slo.global.latency"]
    assert (latency.good, latency.total) == (1, 2)  # the success and the timeout


def test_latency_events_feed_latency_slis_of_their_kind_only() -> None:
    spec = {
        "slos": {
            "slo.ttfb": {
                "sli": {"kind": "latency", "latency_threshold_ms": 300, "latency_source": "ttfb"},
                "target": 0.99,
                "period": "7d",
                "group_by": ["vendor"],
            }
        }
    }
    engine = SloEngine(policy(spec))
    for n, (kind, ms) in enumerate([("ttfb", 100), ("ttfb", 900), ("total", 100)]):
        engine.apply(
            LatencyEvent(
                event_id=f"l{n}",
                ts=from_epoch_ms(T0 + n),
                vendor="openai",
                tool="chat",
                latency_ms=ms,
                kind=kind,
            )
        )
    engine.apply(call(9, T0 + 10, "openai"))  # a call's duration is not a ttfb
    engine.apply(ClockTick.at(T0 + 2000))
    (state,) = engine.states()
    assert (state.good, state.total) == (1, 2)  # type: ignore[attr-defined]


def test_the_live_path_decides_what_replay_decides() -> None:
    events = outage()
    assert essence(live(events)) == essence(replay(events))


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(min_value=1, max_value=400),
    bad_from=st.integers(min_value=1, max_value=12),
    length=st.integers(min_value=1, max_value=8),
)
def test_decisions_do_not_depend_on_batching(batch: int, bad_from: int, length: int) -> None:
    events = outage(minutes=16, bad_from=bad_from, bad_until=bad_from + length)
    assert essence(live(events, batch=batch)) == essence(replay(events))


def test_replay_twice_gives_identical_lines() -> None:
    events = outage()
    first = [orjson.dumps(d.to_json()) for d in replay(events)]
    assert first == [orjson.dumps(d.to_json()) for d in replay(events)]
