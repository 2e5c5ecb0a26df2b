"""Budget policy loading (workers/policies/budgets) and the kernel's BudgetConfig: the three
shapes, scope matching, versions, mode defaults, notes, and errors that name the file, the path
inside it and the bad value."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.policy import PolicyDocument, PolicyKind
from schemas.state import BudgetPeriod
from schemas.types import Severity
from tests.support.policy_files import ALPHA_BUDGETS as ALPHA
from tests.support.policy_files import CONFIGS, PolicyFiles, read_spec
from tests.support.policy_files import RESONTINEX_BUDGETS as RESONTINEX
from workers.errors import ConfigError
from workers.kernels.budget_config import (
    DEFAULT_CHECK_INTERVAL_MS,
    AnomalyConfig,
    BudgetConfig,
    RapidConsumptionConfig,
    RateLimits,
    Threshold,
    ThresholdAction,
    TripwireConfig,
)
from workers.policies.budget_shapes import Shape, detect
from workers.policies.budgets import (
    MODE_DEFAULTS,
    BudgetPolicy,
    default_budget_policy,
    load_budget_policy,
)
from workers.settings import Mode

DEV = MODE_DEFAULTS[Mode.DEVELOPMENT]
N, T, H, E = (
    ThresholdAction.NOTIFY,
    ThresholdAction.THROTTLE,
    ThresholdAction.HALT,
    ThresholdAction.ESCALATE,
)


def pct(value: int | str, action: ThresholdAction, *notify: str, **kw: Any) -> Threshold:
    return Threshold.of(Decimal(value), action, tuple(notify), kw.get("severity"))


FILES = PolicyFiles(load_budget_policy, "budgets.yaml")
write, load_error = FILES.write, FILES.error


def guard(**budgets: dict[str, Any]) -> dict[str, Any]:
    return {"budgets": budgets}


# --- the seeds ----------------------------------------------------------------------------


def test_alpha_seed_maps_every_field() -> None:
    policy = load_budget_policy(ALPHA.parent)  # a directory: finds budget_controls.yaml
    assert policy.name == "budget_controls"
    assert policy.source == str(ALPHA)
    assert list(policy.budgets) == [
        "bud.global.monthly",
        "bud.vendor.openai",
        "bud.dept.engineering",
    ]
    grace, defaults = DEV["grace_ms"], DEV["thresholds"]
    # A halt alert makes the budget hard; `notify` alone is a notify action.
    assert policy.budgets["bud.global.monthly"] == BudgetConfig(
        budget_id="bud.global.monthly",
        period=BudgetPeriod.MONTHLY,
        grace_ms=grace,
        limit_usd=Decimal(50000),
        opening_spend_usd=Decimal("12543.67"),
        hard=True,
        thresholds=(
            pct(50, N, "finance@company.com"),
            pct(80, N, "cto@company.com", "finance@company.com"),
            pct(95, T),
            pct(100, H),
        ),
        tags=("critical", "monitored"),
    )
    # No `scope:` in the seed's own example: `vendor: openai` says it.
    assert policy.budgets["bud.vendor.openai"] == BudgetConfig(
        budget_id="bud.vendor.openai",
        scope={"vendor": "openai"},
        period=BudgetPeriod.DAILY,
        grace_ms=grace,
        limit_usd=Decimal(1000),
        burst_allowance=Decimal("1.2"),
        thresholds=defaults,
        rate_limits=RateLimits(requests_per_minute=500, tokens_per_minute=90000),
        cost_per_unit={
            "gpt-4": Decimal("0.03"),
            "gpt-3.5-turbo": Decimal("0.002"),
            "embedding-ada-002": Decimal("0.0001"),
        },
    )
    assert policy.budgets["bud.dept.engineering"] == BudgetConfig(
        budget_id="bud.dept.engineering",
        scope={"team": "engineering"},
        period=BudgetPeriod.MONTHLY,
        grace_ms=grace,
        limit_usd=Decimal(15000),
        thresholds=defaults,
        approval_required_above_usd=Decimal(500),
    )
    assert policy.budgets["bud.global.monthly"].thresholds[-1].severity is Severity.PAGE
    notes = "\n".join(policy.notes)
    assert "cost_allocation: 3 chargeback tagging rule(s)" in notes
    assert "budgets.bud.dept.engineering.approved_tools: ['t001', 't002', 't003']" in notes
    assert "budgets.bud.dept.engineering.department: read as the event field `team`" in notes
    assert "budgets.bud.vendor.openai.alerts: none: the mode's default thresholds" in notes


def test_resontinex_seed_maps_every_field() -> None:
    policy = load_budget_policy(RESONTINEX)
    assert policy.name == "energy_governance"
    assert list(policy.budgets) == ["bud.global.daily", "bud.global.hourly"]
    thresholds = (
        pct(70, N, severity=Severity.INFO),
        pct(85, N, severity=Severity.WARNING),
        pct(95, N, severity=Severity.CRITICAL),
    )
    assert policy.budgets["bud.global.daily"] == BudgetConfig(
        budget_id="bud.global.daily",
        period=BudgetPeriod.DAILY,
        grace_ms=DEV["grace_ms"],
        limit_usd=Decimal(150),
        limit_tokens=100_000,
        hard=True,
        thresholds=thresholds,
        anomaly=AnomalyConfig(detection_window_ms=4 * 3_600_000, factor=2.0),
        rapid_consumption=RapidConsumptionConfig(
            fraction=0.10, window_ms=900_000, action=ThresholdAction.THROTTLE
        ),
        tripwire=TripwireConfig(
            target="bud.global.daily",
            breach_threshold_pct=Decimal(12),
            consecutive_breach_limit=3,
            recovery_threshold_pct=Decimal(8),
            downgrade_parameters={
                "ENTROPY_REDUCTION_TARGET": "0.50",
                "CONTINUITY_ENFORCEMENT": "basic_thread",
                "TRUST_SCORING_MODEL": "simple_alignment",
                "PRIMARY_MODEL_SELECTION": "single_model",
                "FUSION_MODE": "baseline_only",
            },
            consecutive_normal_operations=5,
            time_since_last_breach_ms=2 * 3_600_000,
            check_interval_ms=DEFAULT_CHECK_INTERVAL_MS,
        ),
        approval_required_above_usd=Decimal(10),
    )
    assert policy.budgets["bud.global.hourly"] == BudgetConfig(
        budget_id="bud.global.hourly",
        period=BudgetPeriod.HOURLY,
        grace_ms=DEV["grace_ms"],
        limit_usd=Decimal("22.50"),
        limit_tokens=15_000,
        hard=True,
        thresholds=thresholds,
    )
    notes = "\n".join(policy.notes)
    for ignored in (
        "cost_multipliers:",
        "energy_recovery:",
        "allocation_strategies:",
        "budget_limits.max_tokens_per_operation: a per-operation cap",
        "budget_limits.max_cost_per_operation_usd: a per-operation cap",
        "budget_limits.emergency_reserve_tokens: reserves",
        "monitoring.efficiency_monitoring:",
        "governance_rules.periodic_review:",
        "governance_rules.automatic_restrictions.consecutive_high_cost_operations:",
        "budget_tripwire.recovery_conditions.system_health_check_passed: no health-check",
        "monitoring.budget_utilization_alerts[0].message:",
        "budget_tripwire: on bud.global.daily, checked every 15 min",
    ):
        assert ignored in notes


def test_resontinex_variants(tmp_path: Path) -> None:
    spec = read_spec(RESONTINEX)
    spec["budget_tripwire"]["check_interval_minutes"] = 5
    spec["monitoring"]["cost_anomaly_detection"]["enabled"] = False
    del spec["budget_limits"]["daily_token_limit"], spec["budget_limits"]["daily_cost_limit_usd"]
    policy = load_budget_policy(write(tmp_path, spec, "energy_governance.yaml"))
    # Without a daily budget, the rules about "the budget" go to the hourly one.
    assert list(policy.budgets) == ["bud.global.hourly"]
    hourly = policy.budgets["bud.global.hourly"]
    assert hourly.tripwire is not None
    assert hourly.tripwire.check_interval_ms == 300_000
    assert hourly.anomaly is None
    assert "monitoring.cost_anomaly_detection.enabled: false: no anomaly detection" in policy.notes
    spec["budget_tripwire"]["enabled"] = False
    policy = load_budget_policy(write(tmp_path, spec, "energy_governance.yaml"))
    assert policy.budgets["bud.global.hourly"].tripwire is None


# --- guardstream's shape ------------------------------------------------------------------


def test_guardstream_file_loads() -> None:
    policy = load_budget_policy(CONFIGS)  # finds configs/budgets.yaml first
    assert policy.source == str(CONFIGS / "budgets.yaml")
    assert policy.notes == ()
    assert list(policy.budgets) == [
        "bud.global.monthly",
        "bud.vendor.openai",
        "bud.team.engineering",
        "bud.research.user.gpt",
        "bud.global.daily",
    ]
    # Same values as the seeds it is written from (file defaults: grace 1 h).
    alpha = load_budget_policy(ALPHA)
    for gid, aid in [
        ("bud.global.monthly", "bud.global.monthly"),
        ("bud.vendor.openai", "bud.vendor.openai"),
    ]:
        ours = dataclasses.replace(policy.budgets[gid], grace_ms=DEV["grace_ms"])
        if aid == "bud.vendor.openai":  # the seed lists no alerts: the mode's defaults apply
            ours = dataclasses.replace(ours, thresholds=DEV["thresholds"])
        assert ours == alpha.budgets[aid]
    daily = policy.budgets["bud.global.daily"]
    assert daily == dataclasses.replace(
        load_budget_policy(RESONTINEX).budgets["bud.global.daily"], grace_ms=3_600_000
    )
    research = policy.budgets["bud.research.user.gpt"]
    assert research.period is BudgetPeriod.ROLLING
    assert research.rolling_ms == 30 * 86_400_000
    assert research.thresholds == ()  # `thresholds: []` means none, not the mode's defaults
    assert research.split_by == ("user",)


def test_defaults_section_and_layering(tmp_path: Path) -> None:
    spec = {
        "defaults": {
            "tz": "Europe/Berlin",
            "week_start": "sunday",
            "hard": True,
            "burst_allowance": 1.5,
            "thresholds": [{"percent": 90, "action": "throttle"}],
        },
        "budgets": {
            "a": {"period": "weekly", "limit_tokens": 1000},
            "b": {"period": "weekly", "limit_usd": "10", "week_start": 2, "hard": False},
        },
    }
    policy = load_budget_policy(write(tmp_path, spec), Mode.PRODUCTION)
    a, b = policy.budgets["a"], policy.budgets["b"]
    assert (a.tz, a.week_start, a.hard, a.burst_allowance) == (
        "Europe/Berlin",
        6,
        True,
        Decimal("1.5"),
    )
    assert a.thresholds == (pct(90, T),)
    assert a.grace_ms == MODE_DEFAULTS[Mode.PRODUCTION]["grace_ms"]
    assert (b.week_start, b.hard, b.limit_usd) == (2, False, Decimal(10))


# --- matching -----------------------------------------------------------------------------


def test_matching_scopes_globs_and_missing_fields(tmp_path: Path) -> None:
    spec = guard(
        glob={
            "period": "daily",
            "limit_usd": 1,
            "scope": {"vendor": "open*", "model": "gpt-[34]*"},
        },
        team={"period": "daily", "limit_usd": 1, "scope": {"team": "search"}},
        everything={"period": "daily", "limit_usd": 1},
        pair={"period": "daily", "limit_usd": 1, "scope": {"team": "search", "user": "u?"}},
    )
    policy = load_budget_policy(write(tmp_path, spec))

    def ids(**fields: str | None) -> list[str]:
        return [b.budget_id for b in policy.matching(fields)]

    assert ids() == ["everything"]  # a global budget matches every event
    assert ids(vendor="openai", model="gpt-4o") == ["glob", "everything"]
    assert ids(vendor="openai", model="gpt-5") == ["everything"]
    assert ids(vendor="openai") == ["everything"]  # a missing field does not match ...
    assert ids(vendor="openai", model=None) == ["everything"]  # ... nor does None ...
    assert ids(team="") == ["everything"]  # ... nor an empty value
    assert ids(team="search", user="u1") == ["team", "everything", "pair"]
    assert ids(team="search", user="u10") == ["team", "everything"]
    assert ids(team="Search") == ["everything"]  # case-sensitive
    # Cached by the scope fields' values: fields no scope uses do not split the cache.
    first = policy.matching({"team": "search", "tool": "a"})
    assert policy.matching({"team": "search", "tool": "b"}) is first


def test_alpha_department_scope_matches_team() -> None:
    policy = load_budget_policy(ALPHA)
    assert [b.budget_id for b in policy.matching({"team": "engineering", "vendor": "openai"})] == [
        "bud.global.monthly",
        "bud.vendor.openai",
        "bud.dept.engineering",
    ]
    assert [b.budget_id for b in policy.matching({"department": "engineering"})] == [
        "bud.global.monthly"
    ]


def test_split_by_gives_each_value_its_own_state_key() -> None:
    research = load_budget_policy(CONFIGS).budgets["bud.research.user.gpt"]
    event = {"team": "research", "user": "ana", "vendor": "openai", "model": "gpt-4"}
    assert research.matches(event)
    assert research.state_key(event) == "bud.research.user.gpt/ana"
    assert not research.matches({**event, "user": None})  # no user: no per-user budget
    assert load_budget_policy(ALPHA).budgets["bud.vendor.openai"].state_key(event) == (
        "bud.vendor.openai"
    )


# --- versions, documents, defaults ---------------------------------------------------------


def test_version_ignores_order_and_formatting(tmp_path: Path) -> None:
    spec = read_spec(CONFIGS / "budgets.yaml")
    reordered = {
        "tripwires": spec["tripwires"],
        "budgets": {k: dict(reversed(v.items())) for k, v in reversed(spec["budgets"].items())},
        "defaults": spec["defaults"],
    }
    original = load_budget_policy(CONFIGS)
    again = load_budget_policy(write(tmp_path, reordered))
    assert again.version == original.version
    spec["budgets"]["bud.vendor.openai"]["limit_usd"] = 1001
    assert load_budget_policy(write(tmp_path, spec)).version != original.version


@pytest.mark.parametrize("path", [CONFIGS / "budgets.yaml", ALPHA, RESONTINEX])
def test_from_document_round_trip(path: Path) -> None:
    policy = load_budget_policy(path, Mode.STAGING)
    wire = policy.document.model_dump_json()
    again = BudgetPolicy.from_document(PolicyDocument.model_validate_json(wire), Mode.STAGING)
    assert again.version == policy.version
    assert again.budgets == policy.budgets
    assert again.notes == policy.notes


def test_from_document_rejects_another_kind() -> None:
    doc = PolicyDocument.from_spec(PolicyKind.BREAKERS, "b", {"budgets": {}}, source="x.yaml")
    with pytest.raises(
        ConfigError, match=re.escape("x.yaml: policy kind must be budgets, not 'breakers'")
    ):
        BudgetPolicy.from_document(doc)


def test_alpha_timestamps_travel_as_text() -> None:
    # `last_updated: 2024-01-15T00:00:00Z` is a YAML timestamp; the policy topic is JSON.
    assert load_budget_policy(ALPHA).document.spec["last_updated"] == "2024-01-15T00:00:00+00:00"


@pytest.mark.parametrize("mode", list(Mode))
def test_mode_defaults(mode: Mode, tmp_path: Path) -> None:
    defaults = MODE_DEFAULTS[mode]
    budget = load_budget_policy(
        write(tmp_path, guard(b={"period": "daily", "limit_usd": 5})), mode
    ).budgets["b"]
    assert budget.grace_ms == defaults["grace_ms"]
    assert (budget.tz, budget.week_start) == (defaults["tz"], defaults["week_start"])
    assert budget.thresholds == defaults["thresholds"]
    # Defaults never throttle or halt, so they are valid on a soft budget.
    assert all(t.action in (N, E) for t in defaults["thresholds"])


def test_grace_periods_grow_towards_production() -> None:
    graces = [
        MODE_DEFAULTS[m]["grace_ms"] for m in (Mode.DEVELOPMENT, Mode.STAGING, Mode.PRODUCTION)
    ]
    assert graces == sorted(graces)
    assert graces == [60_000, 900_000, 3_600_000]


def test_default_policy_has_no_budgets() -> None:
    policy = default_budget_policy(Mode.PRODUCTION)
    assert dict(policy.budgets) == {}
    assert policy.matching({"vendor": "openai"}) == ()
    assert policy.document.kind is PolicyKind.BUDGETS
    assert BudgetPolicy.from_document(policy.document).version == policy.version


def test_shape_detection() -> None:
    assert detect({"budgets": {}}) is Shape.GUARDSTREAM
    assert detect({"budgets": {}, "schema_version": "1.0.0"}) is Shape.ALPHA_SOLVER
    assert detect({"budget_limits": {}}) is Shape.RESONTINEX
    assert "keep one shape" in str(detect({"budgets": {}, "budget_limits": {}}))
    assert "has no `budgets`" in str(detect({"limits": {}}))


# --- malformed policies: file + path + value, all of a file's errors at once --------------

BASE = {"period": "daily", "limit_usd": 10}


@pytest.mark.parametrize(
    ("entry", "path", "expected"),
    [
        ({**BASE, "limit_usd": -5}, "budgets.b.limit_usd", "must be a positive amount"),
        ({"period": "daily"}, "budgets.b", "limit_usd or limit_tokens must be set, not None"),
        (
            {**BASE, "thresholds": [{"percent": 1500}]},
            "budgets.b.thresholds[0]",
            "percent must be <= 1000, not Decimal('1500')",
        ),
        (
            {**BASE, "thresholds": [{"percent": 80}, {"percent": 80.0}]},
            "budgets.b",
            "percent appears twice, not Decimal('80",
        ),
        ({**BASE, "scope": {"dept": "x"}}, "budgets.b.scope.dept", "unknown scope field"),
        ({**BASE, "period": "fortnightly"}, "budgets.b.period", "'fortnightly'"),
        ({**BASE, "tz": "Mars/Olympus"}, "budgets.b", "tz must be an IANA time zone"),
        ({**BASE, "limit_used": 3}, "budgets.b.limit_used", "unknown field, not 3"),
        ({**BASE, "thresholds": [{"percent": 100, "action": "halt"}]}, "budgets.b", "must be hard"),
        ({"period": "rolling", "limit_usd": 1}, "budgets.b", "rolling_ms must be an integer >= 1"),
        ({**BASE, "burst_allowance": 0.5}, "budgets.b", "burst_allowance must be >= 1"),
        ({**BASE, "week_start": "someday"}, "budgets.b.week_start", "weekday name"),
        ({**BASE, "split_by": ["user"]}, "budgets.b", "split_by must be a scope field"),
        ({**BASE, "rate_limits": {}}, "budgets.b.rate_limits", "or tokens_per_minute must be set"),
    ],
)
def test_malformed_budget(tmp_path: Path, entry: dict[str, Any], path: str, expected: str) -> None:
    assert expected in FILES.error_at(write(tmp_path, guard(b=entry)), path)


def test_all_errors_of_a_file_at_once(tmp_path: Path) -> None:
    spec = {
        "budgets": {
            "neg": {"period": "daily", "limit_usd": -1},
            "none": {"period": "daily"},
            "tz": {**BASE, "tz": "Nowhere/City"},
        },
        "tripwires": {
            "missing": {
                "breach_threshold_pct": 12,
                "consecutive_breach_limit": 3,
                "recovery_threshold_pct": 8,
                "downgrade_parameters": {},
            },
            "tz": {
                "breach_threshold_pct": 5,
                "consecutive_breach_limit": 3,
                "recovery_threshold_pct": 8,
                "downgrade_parameters": {},
            },
        },
    }
    text = FILES.errors(write(tmp_path, spec))
    assert "tripwires.missing: must be keyed by a budget in budgets, not 'missing'" in text
    assert "tripwires.tz: tripwire recovery_threshold_pct must be <= breach_threshold_pct" in text
    assert "budgets.neg.limit_usd:" in text
    assert "budgets.none: budget limit_usd or limit_tokens must be set" in text
    assert "budgets.tz: budget tz must be an IANA time zone" in text


def test_malformed_alpha_seed(tmp_path: Path) -> None:
    spec = read_spec(ALPHA)
    budgets = spec["budgets"]
    budgets["bud.global.monthly"]["alerts"].append({"threshold_percent": 95, "action": "notify"})
    budgets["bud.vendor.openai"]["limit_usd"] = -1
    budgets["bud.dept.engineering"]["scope"] = "project"
    budgets["bud.x"] = {"id": "bud.y", "scope": "global", "period": "daily", "limit_usd": 1}
    file = write(tmp_path, spec, "budget_controls.yaml")
    text = load_error(file)
    assert f"{file}: budgets.bud.global.monthly: budget thresholds percent appears twice" in text
    assert f"{file}: budgets.bud.vendor.openai.limit_usd: must be a positive amount" in text
    assert f"{file}: budgets.bud.dept.engineering.project: is required for scope 'project'" in text
    assert f"{file}: budgets.bud.x.id: must equal the budget's key 'bud.x', not 'bud.y'" in text


def test_malformed_resontinex_seed(tmp_path: Path) -> None:
    spec = read_spec(RESONTINEX)
    spec["budget_limits"]["daily_cost_limit_usd"] = "lots"
    spec["budget_tripwire"]["recovery_threshold_percentage"] = 20
    spec["monitoring"]["budget_utilization_alerts"][0]["alert_level"] = "loud"
    file = write(tmp_path, spec, "energy_governance.yaml")
    text = load_error(file)
    assert f"{file}: budget_limits.daily_cost_limit_usd: must be a positive amount" in text
    assert "'lots'" in text
    assert f"{file}: monitoring.budget_utilization_alerts[0].alert_level: Input should be" in text
    assert "not 'loud'" in text
    assert f"{file}: budget_tripwire: tripwire recovery_threshold_pct must be <=" in text


def test_resontinex_without_limits(tmp_path: Path) -> None:
    file = write(tmp_path, {"budget_limits": {"max_tokens_per_operation": 5}}, "e.yaml")
    assert (
        load_error(file) == f"{file}: budget_limits: must set a daily_* or hourly_* limit, not {{}}"
    )


# --- the kernel's config values -----------------------------------------------------------


def test_threshold_default_severities() -> None:
    assert [pct(50, a).severity for a in (N, T, E, H)] == [
        Severity.WARNING,
        Severity.WARNING,
        Severity.CRITICAL,
        Severity.PAGE,
    ]
    assert pct(50, H, severity=Severity.CRITICAL).severity is Severity.CRITICAL


def test_config_values_are_immutable_and_sorted() -> None:
    tripwire = TripwireConfig(
        target="b",
        breach_threshold_pct=Decimal(10),
        consecutive_breach_limit=1,
        recovery_threshold_pct=Decimal(5),
        downgrade_parameters={"MODE": "cheap"},
    )
    config = BudgetConfig(
        budget_id="b",
        scope={"vendor": "x"},
        period=BudgetPeriod.DAILY,
        grace_ms=0,
        limit_usd=Decimal(1),
        thresholds=(pct(90, N), pct(50, N)),
        tripwire=tripwire,
    )
    assert [t.percent for t in config.thresholds] == [50, 90]
    assert {config: 1}[dataclasses.replace(config)] == 1  # hashable despite its mappings
    with pytest.raises(TypeError):
        config.scope["team"] = "y"  # type: ignore[index]
    with pytest.raises(TypeError):
        tripwire.downgrade_parameters["MODE"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.limit_usd = Decimal(2)  # type: ignore[misc]
    with pytest.raises(
        ConfigError, match=re.escape("budget tripwire.target must be the budget's id, not 'other'")
    ):
        dataclasses.replace(config, tripwire=dataclasses.replace(tripwire, target="other"))


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: RateLimits(), "requests_per_minute or tokens_per_minute must be set, not None"),
        (lambda: RateLimits(requests_per_minute=0), "requests_per_minute must be an integer >= 1"),
        (lambda: AnomalyConfig(detection_window_ms=1, factor=1.0), "factor must be > 1"),
        (lambda: RapidConsumptionConfig(fraction=1.5), "fraction must be <= 1, not 1.5"),
        (
            lambda: RapidConsumptionConfig(action=H),
            "action must be notify|throttle|escalate, not 'halt'",
        ),
        (lambda: Threshold.of(Decimal(0), N), "percent must be > 0, not Decimal('0')"),
        (lambda: Threshold.of(Decimal(50), "halt"), "action must be one of"),  # type: ignore[arg-type]
    ],
)
def test_kernel_config_errors_name_field_and_value(build: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    assert expected in str(info.value)
