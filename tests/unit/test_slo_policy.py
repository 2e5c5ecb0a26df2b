"""SLO policy loading (workers/policies/slos): guardstream's shape, the RESONTINEX and
alpha-solver seeds, OpenSLO v1, versions, documents, mode defaults, unsupported entries, and
errors that name the file, the path inside it and the bad value."""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from schemas.policy import PolicyDocument, PolicyKind
from schemas.state import BudgetPeriod
from tests.support.policy_files import ALPHA_SLAS as ALPHA
from tests.support.policy_files import CONFIGS, PolicyFiles, read_spec
from tests.support.policy_files import RESONTINEX_SLOS as RESONTINEX
from workers.errors import ConfigError
from workers.kernels.budget_periods import PeriodSpec
from workers.kernels.slo_config import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    BudgetingMethod,
    BurnRateTier,
    LatencySource,
    Notify,
    Sli,
    SliKind,
    SloConfig,
)
from workers.kernels.slo_targets_config import (
    BreachType,
    DegradationAction,
    DegradationStrategy,
    DegradationTrigger,
    ObjectiveMetric,
    SlaContract,
    SlaPenalty,
    WindowObjective,
)
from workers.policies.policy_set import default_policies, load_policies
from workers.policies.slo_shapes import Shape, detect
from workers.policies.slos import (
    MODE_DEFAULTS,
    SloPolicy,
    default_slo_policy,
    from_document,
    load_slo_policy,
)
from workers.settings import Mode

DEV_MIN = MODE_DEFAULTS[Mode.DEVELOPMENT]["min_events"]
UNITS = {"s": 1000, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS}


FILES = PolicyFiles(load_slo_policy, "slos.yaml")
write, load_error = FILES.write, FILES.error


def factors(slo: SloConfig) -> list[tuple[str, float, int, int]]:
    return [(t.name, t.factor, t.long_window_ms, t.short_window_ms) for t in slo.effective_tiers]


def objective(oid: str, metric: ObjectiveMetric, window: str, *levels: float, **kw: Any) -> Any:
    target, warning, critical = levels
    return WindowObjective(
        objective_id=oid,
        metric=metric,
        window_ms=int(window[:-1]) * UNITS[window[-1]],
        target=target,
        warning_at=warning,
        critical_at=critical,
        min_events=kw.pop("min_events", DEV_MIN),
        **kw,
    )


# --- the seeds ----------------------------------------------------------------------------


AVAIL, ERR, LAT, TPUT, AMEAN, AQ = (
    ObjectiveMetric.AVAILABILITY,
    ObjectiveMetric.ERROR_RATE,
    ObjectiveMetric.LATENCY_QUANTILE,
    ObjectiveMetric.THROUGHPUT,
    ObjectiveMetric.ATTRIBUTE_MEAN,
    ObjectiveMetric.ATTRIBUTE_QUANTILE,
)
RES_OBJECTIVES: dict[str, tuple[ObjectiveMetric, str, tuple[float, ...], bool, dict[str, Any]]] = {
    "fusion_availability": (AVAIL, "60m", (0.995, 0.990, 0.985), True, {}),
    "overlay_application_availability": (AVAIL, "60m", (0.998, 0.995, 0.990), True, {}),
    "fusion_latency_p95": (LAT, "60m", (2000, 3000, 5000), False, {"quantile": 0.95}),
    "fusion_latency_p99": (LAT, "60m", (4000, 6000, 10000), False, {"quantile": 0.99}),
    "overlay_routing_latency_p95": (LAT, "60m", (500, 800, 1500), False, {"quantile": 0.95}),
    "fusion_throughput_minimum": (TPUT, "15m", (100, 80, 50), True, {}),
    "fusion_quality_score": (
        AMEAN,
        "60m",
        (0.85, 0.80, 0.75),
        True,
        {"attribute": "fusion_quality_score"},
    ),
    "specificity_improvement_rate": (
        AMEAN,
        "60m",
        (0.12, 0.08, 0.05),
        True,
        {"attribute": "specificity_improvement_rate"},
    ),
    "operationality_improvement_rate": (
        AMEAN,
        "60m",
        (0.10, 0.06, 0.03),
        True,
        {"attribute": "operationality_improvement_rate"},
    ),
    "fusion_error_rate": (ERR, "60m", (0.01, 0.02, 0.05), False, {}),
    "token_efficiency": (AMEAN, "60m", (0.88, 0.80, 0.70), True, {"attribute": "token_efficiency"}),
    "memory_utilization_p95": (
        AQ,
        "60m",
        (512, 768, 1024),
        False,
        {"quantile": 0.95, "attribute": "memory_mb"},
    ),
}


def test_resontinex_seed_maps_every_objective() -> None:
    policy = load_slo_policy(RESONTINEX.parent)  # a directory: finds slo.yaml
    assert policy.name == "slo"
    assert policy.source == str(RESONTINEX)
    assert policy.slos == ()
    assert policy.contracts == ()
    by_id = {o.objective_id: o for o in policy.objectives}
    assert list(by_id) == list(RES_OBJECTIVES)  # the seed's order, trip rate left out
    for oid, (metric, window, levels, higher, extra) in RES_OBJECTIVES.items():
        got = by_id[oid]
        assert got == objective(
            oid,
            metric,
            window,
            *levels,
            higher_is_better=higher,
            description=got.description,
            **extra,
        ), oid
    assert by_id["fusion_availability"].description == "Overall fusion system availability"
    # Past a threshold: below it when higher is better, above it otherwise.
    assert by_id["fusion_availability"].is_past(0.989, 0.990)
    assert by_id["fusion_latency_p95"].is_past(3001, 3000)


def test_resontinex_strategies_and_unsupported() -> None:
    policy = load_slo_policy(RESONTINEX)
    assert policy.strategies == (
        DegradationStrategy(
            strategy_id="performance_degraded",
            triggers=(
                DegradationTrigger(objective_id="fusion_latency_p95", breach_duration_ms=300_000),
                DegradationTrigger(
                    objective_id="fusion_throughput_minimum", breach_duration_ms=180_000
                ),
            ),
            actions=(
                DegradationAction(
                    type="reduce_overlay_complexity",
                    parameter="ENTROPY_REDUCTION_TARGET",
                    value="0.60",
                ),
                DegradationAction(
                    type="enable_caching", parameter="AGGRESSIVE_CACHING", value="true"
                ),
            ),
        ),
        DegradationStrategy(
            strategy_id="quality_degraded",
            triggers=(
                DegradationTrigger(objective_id="fusion_quality_score", breach_duration_ms=600_000),
                DegradationTrigger(
                    objective_id="specificity_improvement_rate", breach_duration_ms=900_000
                ),
            ),
            actions=(
                DegradationAction(
                    type="fallback_to_enhanced_baseline",
                    parameter="FUSION_MODE",
                    value="enhanced_baseline",
                ),
                DegradationAction(
                    type="increase_validation_strictness", parameter="TRUST_FLOOR", value="0.70"
                ),
            ),
        ),
        DegradationStrategy(
            strategy_id="availability_critical",
            triggers=(
                DegradationTrigger(objective_id="fusion_availability", breach_duration_ms=120_000),
            ),
            actions=(
                DegradationAction(
                    type="emergency_fallback", parameter="FUSION_MODE", value="baseline_only"
                ),
                DegradationAction(
                    type="disable_non_essential_features", parameter="MINIMAL_MODE", value="true"
                ),
            ),
        ),
    )
    assert len(policy.unsupported) == 1
    assert policy.unsupported[0].startswith(
        "service_level_objectives.circuit_breaker_trip_rate: counts circuit-breaker trips"
    )
    assert "breaker-state" in policy.unsupported[0]
    notes = "\n".join(policy.notes)
    for key in ("check_interval_seconds", "alert_window_minutes", "escalation_policy"):
        assert f"monitoring_config.{key}:" in notes
    assert "the seed names no selector" in notes


def test_alpha_seed_maps_contracts_and_targets() -> None:
    policy = load_slo_policy(ALPHA)
    monthly_utc = PeriodSpec(BudgetPeriod.MONTHLY, tz="UTC")
    assert policy.contracts == (
        SlaContract(
            contract_id="sla.standard",
            tier="standard",
            availability_percent=99.5,
            response_time_p50_ms=500,
            response_time_p99_ms=2000,
            period=monthly_utc,
            selector={"attributes.sla_tier": "standard"},
        ),
        SlaContract(
            contract_id="sla.premium",
            tier="premium",
            availability_percent=99.9,
            response_time_p50_ms=200,
            response_time_p99_ms=1000,
            period=monthly_utc,
            penalties=(
                SlaPenalty(breach_type=BreachType.AVAILABILITY, threshold=99.5, credit_percent=10),
                SlaPenalty(breach_type=BreachType.AVAILABILITY, threshold=99.0, credit_percent=25),
                SlaPenalty(breach_type=BreachType.RESPONSE_TIME, threshold=2000, credit_percent=5),
            ),
            selector={"attributes.sla_tier": "premium"},
        ),
        SlaContract(
            contract_id="sla.enterprise",
            tier="enterprise",
            availability_percent=99.95,
            response_time_p50_ms=100,
            response_time_p99_ms=500,
            period=monthly_utc,  # the seed names no period: monthly (noted)
            selector={"attributes.sla_tier": "enterprise"},
        ),
    )
    assert policy.objectives == (
        objective("perf.llm.latency.p50", LAT, "5m", 300, 300, 600, quantile=0.5, **LOWER),
        objective("perf.llm.latency.p99", LAT, "5m", 1500, 1500, 3000, quantile=0.99, **LOWER),
        # 100 .. 10000 requests per second = 6000 .. 600000 calls per minute.
        objective("perf.orchestration.throughput.min", TPUT, "5m", 6000, 6000, 3000, **HIGHER),
        objective(
            "perf.orchestration.throughput.max", TPUT, "5m", 600_000, 600_000, 1_200_000, **LOWER
        ),
    )
    unsupported = "\n".join(policy.unsupported)
    for key in ("autoscale_enabled", "scale_up_threshold", "scale_down_threshold"):
        assert (
            f"performance_targets.perf.orchestration.throughput.{key}: autoscaling" in unsupported
        )
    assert "contracts.sla.premium.support_hours: '24x7': support hours" in unsupported
    assert "contracts.sla.enterprise.escalation_time_minutes: 15:" in unsupported
    assert "contracts.sla.enterprise.dedicated_support: True:" in unsupported
    notes = "\n".join(policy.notes)
    assert "contracts.sla.enterprise.measurement_period: none: monthly in UTC" in notes
    assert "performance_targets.perf.orchestration.throughput.measurement_window: none: 5m" in notes


LOWER = {"higher_is_better": False}
HIGHER = {"higher_is_better": True}


def test_alpha_variants(tmp_path: Path) -> None:
    spec = read_spec(ALPHA)
    spec["contracts"]["sla.standard"]["tz"] = "Europe/Berlin"
    spec["contracts"]["sla.standard"]["measurement_period"] = "quarterly"
    spec["performance_targets"]["perf.llm.latency"]["critical_p99_ms"] = 2500
    spec["performance_targets"]["perf.orchestration.throughput"].pop("target_max")
    policy = load_slo_policy(write(tmp_path, spec, "sla_contracts.yaml"))
    assert policy.contracts[0].period == PeriodSpec(BudgetPeriod.QUARTERLY, tz="Europe/Berlin")
    by_id = {o.objective_id: o for o in policy.objectives}
    assert by_id["perf.llm.latency.p99"].critical_at == 2500
    assert by_id["perf.llm.latency.p50"].critical_at == 600
    assert "perf.orchestration.throughput.max" not in by_id


# --- guardstream's shape ------------------------------------------------------------------

WORKBOOK_30D = [
    ("page-1h", 14.4, HOUR_MS, 5 * MINUTE_MS),
    ("page-6h", 6.0, 6 * HOUR_MS, 30 * MINUTE_MS),
    ("ticket-1d", 3.0, DAY_MS, 2 * HOUR_MS),
    ("ticket-3d", 1.0, 3 * DAY_MS, 6 * HOUR_MS),
]
WORKBOOK_28D = [
    ("page-1h", 13.44, HOUR_MS, 5 * MINUTE_MS),
    ("page-6h", 5.6, 6 * HOUR_MS, 30 * MINUTE_MS),
    ("ticket-1d", 2.8, DAY_MS, 2 * HOUR_MS),
    ("ticket-3d", 0.9333, 3 * DAY_MS, 6 * HOUR_MS),
]


def test_guardstream_file_loads() -> None:
    policy = load_slo_policy(CONFIGS)  # finds configs/slos.yaml
    assert policy.source == str(CONFIGS / "slos.yaml")
    assert policy.notes == ()
    assert policy.unsupported == ()
    slos = {s.slo_id: s for s in policy.slos}
    assert list(slos) == [
        "slo.availability",
        "slo.latency",
        "slo.premium.availability",
        "slo.openai.ttfb",
    ]
    assert slos["slo.availability"] == SloConfig(
        slo_id="slo.availability",
        description="Calls that did not fail, per vendor and tool",
        sli=Sli(kind=SliKind.AVAILABILITY, excluded_error_types=frozenset({"400", "401", "403"})),
        target=0.995,
        period_ms=30 * DAY_MS,
        group_by=("vendor", "tool"),
        min_events=DEV_MIN,
    )
    latency = slos["slo.latency"]
    assert latency.sli == Sli(kind=SliKind.LATENCY, latency_threshold_ms=2000)
    assert latency.tiers == ()  # none listed: the Workbook's, scaled to the period
    assert factors(latency) == WORKBOOK_30D
    premium = slos["slo.premium.availability"]
    assert premium.period_ms is None
    assert premium.calendar == PeriodSpec(BudgetPeriod.MONTHLY, tz="UTC")
    assert premium.group_by == ()
    assert premium.selector == {"attributes.sla_tier": "premium"}
    assert premium.sla_tier == "premium"
    assert factors(premium) == WORKBOOK_30D  # a calendar month counts as 30 days
    ttfb = slos["slo.openai.ttfb"]
    assert ttfb.period_ms == 28 * DAY_MS
    assert ttfb.sli.latency_source is LatencySource.TTFB
    assert (ttfb.budgeting, ttfb.timeslice_ms, ttfb.timeslice_target) == (
        BudgetingMethod.TIMESLICES,
        MINUTE_MS,
        0.95,
    )
    assert (ttfb.min_events, ttfb.no_data_ms) == (10, HOUR_MS)
    assert ttfb.tiers == (
        BurnRateTier(
            name="page-1h",
            notify=Notify.PAGE,
            factor=13.44,
            long_window_ms=HOUR_MS,
            short_window_ms=5 * MINUTE_MS,
        ),
        BurnRateTier(
            name="page-6h",
            notify=Notify.PAGE,
            factor=5.6,
            long_window_ms=6 * HOUR_MS,
            short_window_ms=30 * MINUTE_MS,
        ),
    )


def test_guardstream_file_states_the_seeds_values() -> None:
    ours = load_slo_policy(CONFIGS)
    res, alpha = load_slo_policy(RESONTINEX), load_slo_policy(ALPHA)
    assert ours.objectives == res.objectives + alpha.objectives
    assert ours.contracts == alpha.contracts
    assert ours.strategies == res.strategies


@pytest.mark.parametrize(("period", "expected"), [("30d", WORKBOOK_30D), ("28d", WORKBOOK_28D)])
def test_default_tiers_are_the_workbooks(tmp_path: Path, period: str, expected: list[Any]) -> None:
    spec = {"slos": {"s": {"sli": {"kind": "availability"}, "target": 0.999, "period": period}}}
    (slo,) = load_slo_policy(write(tmp_path, spec)).slos
    assert factors(slo) == expected


def test_defaults_section_and_layering(tmp_path: Path) -> None:
    spec = {
        "defaults": {
            "period": {"calendar": "weekly", "tz": "Europe/Berlin", "week_start": "sunday"},
            "min_events": 50,
            "no_data": "30m",
            "group_by": ["vendor"],
        },
        "slos": {
            "a": {"sli": {"kind": "availability"}, "target": 0.99},
            "b": {"sli": {"kind": "availability"}, "target": 0.99, "period": "7d", "group_by": []},
        },
    }
    a, b = load_slo_policy(write(tmp_path, spec), Mode.PRODUCTION).slos
    assert a.calendar == PeriodSpec(BudgetPeriod.WEEKLY, tz="Europe/Berlin", week_start=6)
    assert (a.period_ms, a.min_events, a.no_data_ms, a.group_by) == (
        None,
        50,
        30 * MINUTE_MS,
        ("vendor",),
    )
    assert (b.period_ms, b.calendar, b.group_by) == (7 * DAY_MS, None, ())


@pytest.mark.parametrize("mode", list(Mode))
def test_mode_defaults(mode: Mode, tmp_path: Path) -> None:
    spec = {
        "slos": {"s": {"sli": {"kind": "availability"}, "target": 0.99}},
        "objectives": {
            "o": {
                "metric": "error_rate",
                "window": "5m",
                "target": 0,
                "warning_at": 0.1,
                "critical_at": 0.2,
            },
        },
        "sla_contracts": {"c": {"tier": "standard", "availability_percent": 99}},
    }
    policy = load_slo_policy(write(tmp_path, spec), mode)
    defaults = MODE_DEFAULTS[mode]
    assert policy.slos[0].min_events == defaults["min_events"]
    assert policy.slos[0].period_ms == defaults["period_ms"]
    assert policy.objectives[0].min_events == defaults["min_events"]
    assert policy.objectives[0].higher_is_better is False  # implied by error_rate
    assert policy.contracts[0].period == PeriodSpec(BudgetPeriod.MONTHLY, tz=defaults["tz"])
    assert policy.contracts[0].selector == {"attributes.sla_tier": "standard"}


# --- OpenSLO ------------------------------------------------------------------------------

OPENSLO_ONE = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: openai-availability
  displayName: OpenAI availability
spec:
  description: Calls to OpenAI that did not fail
  service: llm-gateway
  indicator:
    metadata: {name: openai-good-calls}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource: {type: guardstream, spec: {sli: availability}}
        total:
          metricSource:
            type: guardstream
            spec:
              selector: {vendor: openai}
              group_by: [tool]
              excluded_error_types: ["400", "401"]
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: Good
      target: 0.999
  alertPolicies: [fast-burn]
"""

OPENSLO_TWO = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: anthropic-latency}
spec:
  indicator:
    metadata: {name: anthropic-fast}
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: guardstream
            spec: {sli: latency, latency_threshold_ms: 1500, latency_source: total}
        total:
          metricSource: {type: guardstream, spec: {selector: {vendor: anthropic}}}
  timeWindow:
    - duration: 1M
      calendar: {startTime: "2022-01-01 00:00:00", timeZone: Europe/Berlin}
  budgetingMethod: Timeslices
  objectives:
    - {name: strict, target: 0.99, timeSliceTarget: 0.95, timeSliceWindow: 1m}
    - {displayName: Relaxed Goal, target: 0.95, timeSliceTarget: 0.9, timeSliceWindow: 5m}
"""


def test_openslo_document_loads(tmp_path: Path) -> None:
    policy = load_slo_policy(write(tmp_path, OPENSLO_ONE, "slo.yaml"))
    (slo,) = policy.slos
    assert slo == SloConfig(
        slo_id="openai-availability",
        description="Calls to OpenAI that did not fail",
        sli=Sli(kind=SliKind.AVAILABILITY, excluded_error_types=frozenset({"400", "401"})),
        target=0.999,
        period_ms=28 * DAY_MS,
        selector=MappingProxyType({"vendor": "openai"}),
        group_by=("tool",),
        min_events=DEV_MIN,
    )
    assert factors(slo) == WORKBOOK_28D
    assert policy.unsupported == (
        "spec.alertPolicies: 1 alert policy(ies): guardstream alerts with its multiwindow "
        "burn-rate tiers (the SRE Workbook's by default); not evaluated",
    )
    assert "spec.service: 'llm-gateway' is a label" in "\n".join(policy.notes)


def test_openslo_multi_document_file(tmp_path: Path) -> None:
    file = write(tmp_path, OPENSLO_ONE + "---\n" + OPENSLO_TWO, "slos.yaml")
    policy = load_slo_policy(file)
    assert [s.slo_id for s in policy.slos] == [
        "openai-availability",
        "anthropic-latency.strict",
        "anthropic-latency.relaxed-goal",
    ]
    strict, relaxed = policy.slos[1:]
    assert strict.sli == Sli(
        kind=SliKind.LATENCY, latency_threshold_ms=1500, latency_source=LatencySource.TOTAL
    )
    assert strict.calendar == PeriodSpec(BudgetPeriod.MONTHLY, tz="Europe/Berlin")
    assert strict.period_ms is None
    assert (strict.budgeting, strict.timeslice_ms, strict.timeslice_target, strict.target) == (
        BudgetingMethod.TIMESLICES,
        MINUTE_MS,
        0.95,
        0.99,
    )
    assert (relaxed.timeslice_ms, relaxed.timeslice_target, relaxed.target) == (
        5 * MINUTE_MS,
        0.9,
        0.95,
    )
    assert relaxed.description == "Relaxed Goal"
    assert "openslo_documents[1].spec.timeWindow[0].calendar.startTime" in "\n".join(policy.notes)
    docs: Any = policy.document.spec["openslo_documents"]
    assert docs[1]["metadata"]["name"] == "anthropic-latency"


@pytest.mark.parametrize(
    ("edit", "path", "expected"),
    [
        (
            lambda d: d["spec"].update(indicatorRef="x", indicator=None),
            "spec.indicatorRef",
            "is not supported: write the SLI inline as spec.indicator, not 'x'",
        ),
        (
            lambda d: d["spec"]["indicator"]["spec"].update(
                ratioMetric=None, thresholdMetric={"metricSource": {}}
            ),
            "spec.indicator.spec.ratioMetric",
            "is required (thresholdMetric is not supported)",
        ),
        (
            lambda d: d["spec"]["indicator"]["spec"]["ratioMetric"]["total"]["metricSource"].update(
                type="prometheus"
            ),
            "spec.indicator.spec.ratioMetric.total.metricSource.type",
            "must be guardstream",
        ),
        (
            lambda d: d["spec"]["indicator"]["spec"]["ratioMetric"]["good"]["metricSource"][
                "spec"
            ].update(query="up"),
            "spec.indicator.spec.ratioMetric.good.metricSource.spec.query",
            "unknown field, not 'up'",
        ),
        (
            lambda d: d["spec"].update(budgetingMethod="RatioTimeslices"),
            "spec.budgetingMethod",
            "RatioTimeslices is not supported",
        ),
        (
            lambda d: d["spec"].update(objectives=[{"displayName": "G", "targetPercent": 99.9}]),
            "spec.objectives[0].targetPercent",
            "write target as a fraction",
        ),
        (
            lambda d: d["spec"]["objectives"][0].update(target=99.9),
            "spec.objectives[0].target",
            "must be a fraction strictly between 0 and 1 (write 99.9 % as 0.999), not 99.9",
        ),
        (
            lambda d: d["spec"]["timeWindow"][0].update(duration="1M"),
            "spec.timeWindow[0].duration",
            "a rolling window is in m, h, d or w",
        ),
        (lambda d: d.update(apiVersion="openslo/v2alpha"), "apiVersion", "must be openslo/v1"),
        (lambda d: d.update(kind="SLI"), "kind", "must be SLO"),
    ],
)
def test_openslo_errors(tmp_path: Path, edit: Any, path: str, expected: str) -> None:
    doc = yaml.safe_load(OPENSLO_ONE)
    edit(doc)
    assert expected in FILES.error_at(write(tmp_path, doc, "slo.yaml"), path)


# --- versions, documents, defaults, policy sets --------------------------------------------


def test_version_ignores_order_and_formatting(tmp_path: Path) -> None:
    spec = read_spec(CONFIGS / "slos.yaml")
    reordered = {k: spec[k] for k in reversed(list(spec))}
    reordered["slos"] = {
        k: dict(reversed(v.items())) for k, v in reversed(list(spec["slos"].items()))
    }
    original = load_slo_policy(CONFIGS)
    again = load_slo_policy(write(tmp_path, yaml.safe_dump(reordered, default_flow_style=True)))
    assert again.version == original.version == original.document.version
    assert sorted(again.slos, key=lambda s: s.slo_id) == sorted(
        original.slos, key=lambda s: s.slo_id
    )
    spec["slos"]["slo.latency"]["target"] = 0.996
    assert load_slo_policy(write(tmp_path, spec)).version != original.version


@pytest.mark.parametrize("path", [CONFIGS / "slos.yaml", RESONTINEX, ALPHA, None])
def test_from_document_round_trip(path: Path | None, tmp_path: Path) -> None:
    if path is None:
        path = write(tmp_path, OPENSLO_ONE + "---\n" + OPENSLO_TWO, "slos.yaml")
    policy = load_slo_policy(path, Mode.STAGING)
    wire = policy.document.model_dump_json()
    doc = PolicyDocument.model_validate_json(wire)
    assert from_document(doc, Mode.STAGING) == policy
    assert SloPolicy.from_document(doc, Mode.STAGING) == policy


def test_from_document_rejects_another_kind() -> None:
    doc = PolicyDocument.from_spec(PolicyKind.BUDGETS, "b", {"slos": {}}, source="x.yaml")
    with pytest.raises(
        ConfigError, match=re.escape("x.yaml: policy kind must be slos, not 'budgets'")
    ):
        from_document(doc)


def test_default_policy_is_empty() -> None:
    policy = default_slo_policy(Mode.PRODUCTION)
    assert (policy.slos, policy.objectives, policy.contracts, policy.strategies) == ((),) * 4
    assert policy.unsupported == ()
    assert policy.document.kind is PolicyKind.SLOS
    assert from_document(policy.document).version == policy.version


def test_policy_set_loads_slos(tmp_path: Path) -> None:
    policies = load_policies(CONFIGS, Mode.DEVELOPMENT)  # budgets.yaml, breakers.yaml, slos.yaml
    assert policies.slos == load_slo_policy(CONFIGS / "slos.yaml")
    assert policies.budgets.source == str(CONFIGS / "budgets.yaml")
    single = load_policies(ALPHA, Mode.DEVELOPMENT)  # one file: the kind its name says
    assert single.slos.source == str(ALPHA)
    assert dict(single.budgets.budgets) == {}
    only = tmp_path / "only"
    only.mkdir()
    write(only, OPENSLO_ONE, "slo.yaml")
    from_dir = load_policies(only, Mode.DEVELOPMENT)
    assert [s.slo_id for s in from_dir.slos.slos] == ["openai-availability"]
    assert dict(from_dir.budgets.budgets) == {}
    assert default_policies(Mode.DEVELOPMENT).slos.slos == ()
    assert load_policies(RESONTINEX.parent, Mode.DEVELOPMENT).slos.source == str(RESONTINEX)


def test_shape_detection() -> None:
    assert detect({"slos": {}}) is Shape.GUARDSTREAM
    assert detect({"degradation_strategies": {}}) is Shape.GUARDSTREAM
    assert detect({"service_level_objectives": {}, "degradation_strategies": {}}) is (
        Shape.RESONTINEX
    )
    assert detect({"contracts": {}}) is Shape.ALPHA_SOLVER
    assert detect({"apiVersion": "openslo/v1"}) is Shape.OPENSLO
    assert "keep one shape" in str(detect({"slos": {}, "contracts": {}}))
    assert "has no `slos`" in str(detect({"budgets": {}}))


# --- malformed policies: file + path + value, all of a file's errors at once --------------

AVAILABILITY = {"sli": {"kind": "availability"}, "target": 0.99}


@pytest.mark.parametrize(
    ("entry", "path", "expected"),
    [
        (
            {**AVAILABILITY, "target": 99.9},
            "slos.s.target",
            "must be a fraction strictly between 0 and 1 (write 99.9 % as 0.999), not 99.9",
        ),
        ({**AVAILABILITY, "traget": 0.9}, "slos.s.traget", "unknown field, not 0.9"),
        ({**AVAILABILITY, "period": "30 days"}, "slos.s.period", "must be a duration"),
        ({**AVAILABILITY, "period": 2592000000}, "slos.s.period", "must be a rolling duration"),
        (
            {**AVAILABILITY, "period": {"calendar": "fortnightly"}},
            "slos.s.period.calendar",
            "must be one of hourly|daily|weekly|monthly|quarterly|annual, not 'fortnightly'",
        ),
        (
            {**AVAILABILITY, "period": {"calendar": "monthly", "tz": "Mars/Olympus"}},
            "slos.s.period.calendar",
            "'Mars/Olympus' is not a known IANA time zone",
        ),
        (
            {"sli": {"kind": "latency"}, "target": 0.99},
            "slos.s.sli",
            "sli latency_threshold_ms is required for latency",
        ),
        ({"sli": {"kind": "throughput"}, "target": 0.99}, "slos.s.sli.kind", "'throughput'"),
        ({**AVAILABILITY, "selector": {"dept": "x"}}, "slos.s", "selector fields are vendor"),
        ({**AVAILABILITY, "timeslice_target": 95}, "slos.s.timeslice_target", "fraction"),
        (
            {
                **AVAILABILITY,
                "period": "1d",
                "tiers": [
                    {
                        "name": "t",
                        "notify": "page",
                        "factor": 2,
                        "long_window": "3d",
                        "short_window": "1h",
                    }
                ],
            },
            "slos.s",
            "tier t long_window_ms must fit in the period",
        ),
        (
            {
                **AVAILABILITY,
                "tiers": [
                    {
                        "name": "t",
                        "notify": "page",
                        "factor": 2,
                        "long_window": "5m",
                        "short_window": "1h",
                    }
                ],
            },
            "slos.s.tiers[0]",
            "short_window_ms must be shorter than long_window_ms",
        ),
    ],
)
def test_malformed_slo(tmp_path: Path, entry: dict[str, Any], path: str, expected: str) -> None:
    assert expected in FILES.error_at(write(tmp_path, {"slos": {"s": entry}}), path)


OBJ = {
    "metric": "availability",
    "window": "5m",
    "target": 0.99,
    "warning_at": 0.98,
    "critical_at": 0.97,
}


@pytest.mark.parametrize(
    ("section", "entry", "path", "expected"),
    [
        ("objectives", {**OBJ, "target": 99}, "objectives.o.target", "must be a fraction 0-1"),
        (
            "objectives",
            {**OBJ, "critical_at": 0.985},
            "objectives.o",
            "critical_at must be <= warning_at, not 0.985",
        ),
        (
            "objectives",
            {**OBJ, "metric": "throughput"},
            "objectives.o.higher_is_better",
            "is required for metric throughput",
        ),
        (
            "objectives",
            {**OBJ, "metric": "latency_quantile", "warning_at": 1, "critical_at": 2},
            "objectives.o",
            "quantile must be a fraction",
        ),
        ("objectives", {**OBJ, "window": 300}, "objectives.o.window", "must be a duration"),
        (
            "sla_contracts",
            {
                "tier": "gold",
                "availability_percent": 0.999,
                "penalties": [{"breach_type": "uptime", "threshold": 99, "credit_percent": 5}],
            },
            "sla_contracts.o.penalties[0].breach_type",
            "'uptime'",
        ),
        (
            "sla_contracts",
            {"tier": "gold", "availability_percent": 199},
            "sla_contracts.o.availability_percent",
            "must be a number in (0, 100], not 199",
        ),
    ],
)
def test_malformed_entries(
    tmp_path: Path, section: str, entry: dict[str, Any], path: str, expected: str
) -> None:
    assert expected in FILES.error_at(write(tmp_path, {section: {"o": entry}}), path)


def test_all_errors_of_a_file_at_once(tmp_path: Path) -> None:
    spec = {
        "slos": {
            "pct": {**AVAILABILITY, "target": 99.5},
            "typo": {**AVAILABILITY, "group_bye": ["vendor"]},
        },
        "objectives": {"o": {**OBJ, "window": "5 minutes"}, "pct": OBJ},
        "degradation_strategies": {
            "d": {
                "triggers": [
                    {"objective": "nowhere", "breach_duration": "5m"},
                    {"objective": "o", "breach_duration": "soon"},
                ],
                "actions": [{"type": "t", "parameter": "P", "value": 1}],
            },
            "e": {
                "triggers": [{"objective": "pct", "breach_duration": "1m"}],
                "actions": [{"type": "t", "parameter": "P", "value": True}],
            },
        },
    }
    text = FILES.errors(write(tmp_path, spec))
    assert "slos.pct.target: must be a fraction strictly between 0 and 1" in text
    assert "slos.typo.group_bye: unknown field, not ['vendor']" in text
    assert "objectives.o.window: must be a duration" in text
    assert "degradation_strategies.d.triggers[1].breach_duration: must be a duration" in text


def test_trigger_must_name_a_measured_objective(tmp_path: Path) -> None:
    spec: dict[str, Any] = {
        "objectives": {"o": OBJ},
        "degradation_strategies": {
            "d": {
                "triggers": [{"objective": "nowhere", "breach_duration": "5m"}],
                "actions": [{"type": "t", "parameter": "P", "value": 0.5}],
            }
        },
    }
    file = write(tmp_path, spec)
    assert load_error(file) == (
        f"{file}: degradation_strategies.d.triggers[0].objective: must name an SLO or "
        "objective of this file, not 'nowhere'"
    )
    spec["degradation_strategies"]["d"]["triggers"][0]["objective"] = "o"
    (strategy,) = load_slo_policy(write(tmp_path, spec)).strategies
    assert strategy.actions[0].value == "0.5"


def test_malformed_resontinex_seed(tmp_path: Path) -> None:
    spec = read_spec(RESONTINEX)
    slos = spec["service_level_objectives"]
    slos["fusion_error_rate"]["critical_threshold"] = 0.015  # better than the alert level
    slos["fusion_latency_p95"]["measurement_window_minutes"] = "hourly"
    slos["fusion_quality_score"]["target_ms"] = 3
    strategies = spec["degradation_strategies"]
    strategies["performance_degraded"]["trigger_conditions"][0]["slo"] = "fusion_latency_p50"
    strategies["availability_critical"]["trigger_conditions"].append(
        {"slo": "circuit_breaker_trip_rate", "threshold_breach_duration_minutes": 1}
    )
    text = FILES.errors(write(tmp_path, spec, "slo.yaml"))
    assert (
        "service_level_objectives.fusion_error_rate: objective 'fusion_error_rate' critical_at "
        "must be >= warning_at, not 0.015" in text
    )
    assert "service_level_objectives.fusion_latency_p95.measurement_window_minutes: must be" in text
    assert "'hourly'" in text
    assert "service_level_objectives.fusion_quality_score: must have exactly one of target" in text
    assert (
        "degradation_strategies.performance_degraded.trigger_conditions[0].slo: must name an SLO "
        "or objective of this file, not 'fusion_latency_p50'" in text
    )
    assert (
        "degradation_strategies.availability_critical.trigger_conditions[1].slo: names an "
        "objective guardstream cannot measure, not 'circuit_breaker_trip_rate'" in text
    )


def test_resontinex_unknown_metric_is_unsupported(tmp_path: Path) -> None:
    spec = read_spec(RESONTINEX)
    spec["service_level_objectives"]["cache_hit_ratio"] = {
        "target": 0.9,
        "alert_threshold": 0.8,
        "critical_threshold": 0.7,
        "measurement_window_minutes": 10,
    }
    policy = load_slo_policy(write(tmp_path, spec, "slo.yaml"))
    assert "cache_hit_ratio" not in {o.objective_id for o in policy.objectives}
    assert any(
        u.startswith("service_level_objectives.cache_hit_ratio: target on an id")
        for u in policy.unsupported
    )


def test_malformed_alpha_seed(tmp_path: Path) -> None:
    spec = read_spec(ALPHA)
    contracts = spec["contracts"]
    contracts["sla.standard"]["id"] = "sla.basic"
    contracts["sla.premium"]["penalties"][2].pop("threshold_p99_ms")
    contracts["sla.enterprise"]["measurement_period"] = "fortnightly"
    spec["performance_targets"]["perf.llm.latency"]["measurement_window"] = "five minutes"
    file = write(tmp_path, spec, "sla_contracts.yaml")
    text = load_error(file)
    assert f"{file}: contracts.sla.standard.id: must equal the contract's key" in text
    assert f"{file}: contracts.sla.premium.penalties[2].threshold_p99_ms: is required" in text
    assert f"{file}: contracts.sla.enterprise.measurement_period: must be one of" in text
    assert f"{file}: performance_targets.perf.llm.latency.measurement_window: must be a" in text


def test_ids_are_one_namespace(tmp_path: Path) -> None:
    spec = {"slos": {"x": AVAILABILITY}, "objectives": {"x": OBJ}}
    file = write(tmp_path, spec)
    assert load_error(file) == (
        f"{file}: objectives: ids must be unique across SLOs and objectives, not 'x'"
    )
    twice = write(tmp_path, OPENSLO_ONE + "---\n" + OPENSLO_ONE, "slo.yaml")
    assert load_error(twice) == (
        f"{twice}: metadata.name: ids must be unique across SLOs and objectives, "
        "not 'openai-availability'"
    )


def test_resontinex_percent_availability_is_refused(tmp_path: Path) -> None:
    spec = read_spec(RESONTINEX)
    spec["service_level_objectives"]["fusion_availability"].update(
        target=99.5, alert_threshold=99.0, critical_threshold=98.5
    )
    file = write(tmp_path, spec, "slo.yaml")
    assert load_error(file) == (
        f"{file}: service_level_objectives.fusion_availability: availability thresholds must "
        "be fractions 0-1, not [99.5, 99.0, 98.5]"
    )


def test_strategy_needs_triggers_and_actions(tmp_path: Path) -> None:
    spec = {
        "objectives": {"o": OBJ},
        "degradation_strategies": {
            "d": {"triggers": [], "actions": [{"type": "t", "parameter": "P", "value": "v"}]},
            "e": {"triggers": [{"objective": "o", "breach_duration": "1m"}], "actions": []},
        },
    }
    file = write(tmp_path, spec)
    assert load_error(file).splitlines() == [
        f"{file}: degradation_strategies.d: degradation strategy 'd' trigger_conditions must "
        "list at least one, not []",
        f"{file}: degradation_strategies.e: degradation strategy 'e' actions must list at "
        "least one, not []",
    ]
