"""Policy files are bounded (DESIGN §10; issue 11 §3): size, YAML aliases, nesting, finite
numbers, money, window sizes and bucket counts, the seeds' own schema bounds. Each refusal
happens when the policy loads, names the file, the path inside it and the rule, and quotes at
most ~200 characters of a value. Every case here loaded (or crashed, or ran for a minute)
before.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.policy import PolicyDocument, PolicyKind
from tests.support.policy_files import (
    ALPHA_BREAKERS,
    ALPHA_BUDGETS,
    CONFIGS,
    config_error,
    write_policy,
)
from workers.errors import ConfigError
from workers.kernels.checks import MAX_PREVIEW_CHARS
from workers.kernels.policy_limits import MAX_WINDOW_SLOTS
from workers.policies.breakers import BreakerPolicy
from workers.policies.files import MAX_POLICY_DEPTH, MAX_POLICY_FILE_BYTES, MAX_POLICY_VALUES
from workers.policies.policy_set import load_policies
from workers.settings import Mode

TEN_YEARS_S = 10 * 365 * 86_400


def load_error(path: Path) -> str:
    return config_error(load_policies, path)


def write(tmp_path: Path, name: str, content: Any) -> Path:
    return write_policy(tmp_path / name, content)


def assert_refused(path: Path, spec: Any, where: str, rule: str) -> None:
    """`spec` written to `path` does not load: the error is at `where` and states `rule`."""
    message = load_error(write_policy(path, spec))
    assert message.startswith(f"{path}: {where}"), message
    assert rule in message


def alias_bomb(levels: int, width: int = 10) -> str:
    """A breaker policy whose extra section expands to width ** levels values via aliases."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join([*lines, "breakers:", "  b: {}", ""])


# --- the file itself -------------------------------------------------------------------------


def test_a_yaml_alias_bomb_of_a_million_values_is_refused_with_a_short_message(
    tmp_path: Path,
) -> None:
    """Was 42-63 s and an 8 MB error message."""
    message = load_error(write(tmp_path, "breakers.yaml", alias_bomb(6)))
    assert message == (
        f"{tmp_path / 'breakers.yaml'}: more than {MAX_POLICY_VALUES:,} values once its aliases "
        "are expanded (the limit for a policy file)"
    )


def test_a_billion_value_alias_bomb_is_refused_without_being_expanded(tmp_path: Path) -> None:
    """Was a segfault inside the policy hash's orjson.dumps at 4.2 GB. The refusal costs as
    little as the file: its node graph is measured, never expanded."""
    path = write(tmp_path, "breakers.yaml", alias_bomb(9))
    tracemalloc.start()
    try:
        message = load_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "values once its aliases are expanded" in message
    assert peak < 4 * 2**20


def test_merge_keys_that_double_at_every_level_are_refused(tmp_path: Path) -> None:
    lines = ["m0: &m0 {x: 1}"]
    for i in range(1, 11):  # each level merges four copies of the one before: 4**10 entries
        merged = ", ".join([f"*m{i - 1}"] * 4)
        lines.append(f"m{i}: &m{i} {{<<: [{merged}], y{i}: 1}}")
    path = write(tmp_path, "breakers.yaml", "\n".join([*lines, "breakers: {b: {}}", ""]))
    assert "values once its aliases are expanded" in load_error(path)


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "breakers.yaml", "loop: &loop [1, *loop]\nbreakers: {b: {}}\n")
    assert load_error(path) == (
        f"{path}: line 1, column 7: an alias refers to a value that contains it"
    )


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    padding = "#" * 100 + "\n"
    text = "breakers: {b: {}}\n" + padding * (MAX_POLICY_FILE_BYTES // len(padding) + 1)
    path = write(tmp_path, "breakers.yaml", text)
    assert load_error(path) == f"{path}: larger than 1 MiB, the limit for a policy file"


@pytest.mark.parametrize("name", ["breakers.yaml", "breakers.json"])
def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path, name: str) -> None:
    nested = "[" * 5000 + "]" * 5000
    path = write(tmp_path, name, f'{{"breakers": {{"b": {{}}}}, "deep": {nested}}}')
    assert f"nested more than {MAX_POLICY_DEPTH} levels deep" in load_error(path)


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("breakers.json", '{"breakers": {"b": {"slow_call_duration_ms": NaN}}}', "breakers.b"),
        ("breakers.json", '{"breakers": {"b": {"backoff_multiplier": 1e400}}}', "breakers.b"),
        ("breakers.yaml", "breakers:\n  b:\n    backoff_multiplier: .inf\n", "breakers.b"),
        ("slos.yaml", "slos: {}\nnotes: [1, .nan]\n", "notes[1]"),
    ],
)
def test_numbers_must_be_finite(tmp_path: Path, name: str, text: str, where: str) -> None:
    message = load_error(write(tmp_path, name, text))
    assert message.startswith(f"{tmp_path / name}: {where}")
    assert "must be a finite number" in message


def test_an_integer_of_thousands_of_digits_is_a_config_error(tmp_path: Path) -> None:
    text = f"breakers:\n  b:\n    failure_threshold: {'7' * 5000}\n"
    path = write(tmp_path, "breakers.yaml", text)
    message = load_error(path)
    assert message.startswith(f"{path}: invalid YAML: Exceeds the limit")
    assert len(message) < len(str(path)) + 2 * MAX_PREVIEW_CHARS


@pytest.mark.parametrize("size", [4000, 100_000])
def test_error_messages_quote_at_most_200_characters_of_a_value(tmp_path: Path, size: int) -> None:
    long = "x" * size
    spec = {"breakers": {"b": {"fallback_action": long, f"typo{long[:120]}": 1}}}
    lines = load_error(write(tmp_path, "breakers.yaml", spec)).splitlines()
    # 4000 characters: both errors of the entry; 100,000: longer than any policy string may be.
    assert len(lines) == (2 if size == 4000 else 1)
    for line in lines:
        assert line.startswith(f"{tmp_path / 'breakers.yaml'}: breakers.b")
        assert len(line) < len(str(tmp_path / "breakers.yaml")) + 3 * MAX_PREVIEW_CHARS


# --- money -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "rule"),
    [
        # YAML reads 1e400 as a string; it loaded and raised ValueError at the first event.
        ("1e400", "must be a positive amount <= 1,000,000,000 USD"),
        (2e9, "must be a positive amount <= 1,000,000,000 USD"),
        # Loaded, then "has more than 9 decimal places" at the first event.
        (
            "0.0000000001",
            "must be a positive amount <= 1,000,000,000 USD (number or decimal "
            "string, at most 9 decimal places)",
        ),
        ("1" * 100, "must be a positive amount"),
    ],
)
def test_budget_limits_are_refused_beyond_the_money_cap(
    tmp_path: Path, limit: Any, rule: str
) -> None:
    spec = {"budgets": {"b": {"period": "daily", "limit_usd": limit}}}
    message = load_error(write(tmp_path, "budgets.yaml", spec))
    assert message.startswith(f"{tmp_path / 'budgets.yaml'}: budgets.b.limit_usd: {rule}")


def test_other_amounts_are_capped_too(tmp_path: Path) -> None:
    spec = {
        "budgets": {
            "b": {
                "period": "daily",
                "limit_usd": 10,
                "opening_spend_usd": "1e12",
                "approval_required_above_usd": "0.0000000001",
                "cost_per_unit": {"gpt-4": 2e9},
            }
        }
    }
    message = load_error(write(tmp_path, "budgets.yaml", spec))
    for field in ("opening_spend_usd", "approval_required_above_usd", "cost_per_unit.gpt-4"):
        assert f"budgets.b.{field}: must be" in message


# --- the seeds' own schema bounds ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("failure_threshold", 101, "must be an integer in [1, 100]"),
        ("success_threshold", 0, "must be an integer in [1, 100]"),
        ("timeout_seconds", 3601, "must be an integer in [1, 3,600]"),
        ("half_open_requests", 11, "must be an integer in [1, 10]"),
        ("monitoring_window_seconds", 5, "must be an integer in [10, 3,600]"),
        (
            "fallback_action",
            "explode",
            "must be one of use_cache|use_default|return_error|use_fallback_vendor",
        ),
    ],
)
def test_alpha_solver_breakers_keep_their_schema_bounds(
    tmp_path: Path, field: str, value: Any, rule: str
) -> None:
    spec = json.loads(ALPHA_BREAKERS.read_text())
    spec["breakers"]["cb.vendor.default"][field] = value
    path = write(tmp_path, "circuit_breakers.json", spec)
    assert f"{path}: breakers.cb.vendor.default.{field}: {rule}" in load_error(path)


@pytest.mark.parametrize(
    ("change", "where", "rule"),
    [
        ({"limit_usd": 2_000_000}, "limit_usd", "must be a positive amount <= 1,000,000 USD"),
        (
            {"alerts": [{"threshold_percent": 150}]},
            "alerts[0].threshold_percent",
            "must be an integer in [1, 100]",
        ),
        (
            {"alerts": [{"threshold_percent": 50.5}]},
            "alerts[0].threshold_percent",
            "must be an integer in [1, 100]",
        ),
    ],
)
def test_alpha_solver_budgets_keep_their_schema_bounds(
    tmp_path: Path, change: dict[str, Any], where: str, rule: str
) -> None:
    spec = yaml.safe_load(ALPHA_BUDGETS.read_text())
    budget_id = next(iter(spec["budgets"]))
    spec["budgets"][budget_id].update(change)
    path = write(tmp_path, "budget_controls.yaml", spec)
    assert f"{path}: budgets.{budget_id}.{where}: {rule}" in load_error(path)


def test_the_fallback_action_enum_holds_for_guardstreams_shape_too(tmp_path: Path) -> None:
    spec = {"breakers": {"b": {"fallback_action": "retry_forever"}}}
    path = write(tmp_path, "breakers.yaml", spec)
    assert f"{path}: breakers.b.fallback_action: must be one of use_cache|" in load_error(path)


# --- windows, bucket counts and counts: memory per key ---------------------------------------


@pytest.mark.parametrize(
    ("breaker", "rule"),
    [
        # Ten years in 1-s buckets was 2.5 GB per breaker key.
        (
            {"sliding_window_type": "time", "sliding_window_size": TEN_YEARS_S},
            "sliding_window_size must be at most 86,400 seconds for a time window",
        ),
        (
            {"sliding_window_type": "time", "sliding_window_size": 7200},
            f"must be at most {MAX_WINDOW_SLOTS:,} buckets of time_bucket_s (1 s): use "
            "time_bucket_s >= 2 for this window",
        ),
        (
            {"sliding_window_size": 10**9},
            f"sliding_window_size must be at most {MAX_WINDOW_SLOTS:,} calls for a count window",
        ),
        ({"permitted_calls_in_half_open": 10**6}, "must be at most 3,600"),
        ({"wait_in_open_ms": 10**15}, "wait_in_open_ms must be at most 86,400,000"),
        ({"failure_threshold": 101}, "failure_threshold must be at most 100"),
        (
            {"trip_conditions": [{"metric": "error_rate", "threshold": 0.5, "window_ms": 10**12}]},
            "trip_conditions.window_ms must be at most 86,400,000",
        ),
        (
            {"trip_conditions": [{"metric": "error_rate", "threshold": 0.5}] * 9},
            "trip_conditions may list at most 8",
        ),
    ],
)
def test_breaker_windows_and_counts_are_capped(
    tmp_path: Path, breaker: dict[str, Any], rule: str
) -> None:
    assert_refused(tmp_path / "breakers.yaml", {"breakers": {"b": breaker}}, "breakers.b", rule)


def test_a_published_document_is_held_to_the_same_caps() -> None:
    """The kernel's config value checks the caps, so a document from the policies topic (or
    written by hand) is refused as the file would be."""
    spec = {"breakers": {"b": {"sliding_window_type": "time", "sliding_window_size": TEN_YEARS_S}}}
    document = PolicyDocument.from_spec(PolicyKind.BREAKERS, "breakers", spec, source="topic")
    with pytest.raises(ConfigError, match="at most 86,400 seconds for a time window"):
        BreakerPolicy.from_document(document)


BUDGET = {"period": "daily", "limit_usd": 100}


@pytest.mark.parametrize(
    ("extra", "where", "rule"),
    [
        # A window that is not 60 whole slices loaded, then failed at the first event.
        ({"rate_limits": {"requests_per_minute": 10, "window_ms": 1000}}, ".rate_limits", "60"),
        (
            {"rate_limits": {"requests_per_minute": 10, "window_ms": 10 * 86_400_000}},
            ".rate_limits",
            "window_ms must be at most 86,400,000",
        ),
        ({"rapid_consumption": {"window_ms": 1000}}, ".rapid_consumption", "window_ms must be"),
        (
            {"rapid_consumption": {"window_ms": 3650 * 86_400_000}},
            ".rapid_consumption",
            "window_ms must be at most 86,400,000",
        ),
        (
            {"anomaly": {"detection_window_ms": 3_600_000, "baseline_windows": 10**9}},
            ".anomaly",
            "baseline_windows must be at most 1,000",
        ),
        (
            {"anomaly": {"detection_window_ms": 3650 * 86_400_000}},
            ".anomaly",
            "detection_window_ms must be at most 2,678,400,000",
        ),
        (
            {"period": "rolling", "rolling_ms": 3650 * 86_400_000},
            "",
            "rolling_ms must be at most 31,622,400,000",
        ),
        ({"grace_ms": 3650 * 86_400_000}, "", "grace_ms must be at most 2,678,400,000"),
        (
            {"thresholds": [{"percent": p} for p in range(1, 70)]},
            "",
            "thresholds may list at most 64",
        ),
    ],
)
def test_budget_windows_and_counts_are_capped(
    tmp_path: Path, extra: dict[str, Any], where: str, rule: str
) -> None:
    spec = {"budgets": {"b": {**BUDGET, **extra}}}
    assert_refused(tmp_path / "budgets.yaml", spec, f"budgets.b{where}: ", rule)


def test_a_tripwire_checks_at_most_every_second(tmp_path: Path) -> None:
    tripwire = {
        "breach_threshold_pct": 50,
        "consecutive_breach_limit": 3,
        "recovery_threshold_pct": 10,
        "downgrade_parameters": {"MODE": "cheap"},
        "check_interval_ms": 1,
    }
    spec = {"budgets": {"b": BUDGET}, "tripwires": {"b": tripwire}}
    path = write(tmp_path, "budgets.yaml", spec)
    assert f"{path}: tripwires.b: tripwire check_interval_ms must be an integer >= 1000" in (
        load_error(path)
    )


SLO = {"sli": {"kind": "availability"}, "target": 0.99}


def tier(name: str, short_window: str = "5m") -> dict[str, Any]:
    return {
        "name": name,
        "notify": "page",
        "factor": 2,
        "long_window": "1h",
        "short_window": short_window,
    }


@pytest.mark.parametrize(
    ("extra", "rule"),
    [
        ({"period": "3650d"}, "period_ms must be at most 31,622,400,000"),
        (
            # Loaded, then "SLO window must be a whole number of 60-ms units" at the first event.
            {"tiers": [tier("t", short_window="10s")]},
            "short_window_ms must be a multiple of 60 ms",
        ),
        (
            {"tiers": [tier(f"t{i}") for i in range(17)]},
            "tiers may list at most 16",
        ),
        ({"budgeting": "timeslices", "timeslice": "30d"}, "timeslice_ms must be at most"),
        ({"no_data": "3650d"}, "no_data_ms must be at most"),
    ],
)
def test_slo_periods_windows_and_tiers_are_capped(
    tmp_path: Path, extra: dict[str, Any], rule: str
) -> None:
    assert_refused(tmp_path / "slos.yaml", {"slos": {"s": {**SLO, **extra}}}, "slos.s", rule)


def test_an_objective_window_is_capped(tmp_path: Path) -> None:
    objective = {
        "metric": "availability",
        "window": "400d",
        "target": 0.99,
        "warning_at": 0.98,
        "critical_at": 0.97,
    }
    path = write(tmp_path, "slos.yaml", {"objectives": {"o": objective}})
    assert "objectives.o: objective 'o' window_ms must be at most 2,678,400,000" in (
        load_error(path)
    )


def test_every_shipped_policy_and_seed_is_within_the_caps() -> None:
    for path in (CONFIGS, *sorted((CONFIGS / "seeds").iterdir())):
        for mode in Mode:
            load_policies(path, mode)
