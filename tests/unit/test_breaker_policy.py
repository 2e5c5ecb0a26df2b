"""Breaker policy loading (workers/policies): the three shapes, routing, versions, mode
defaults, notes, and errors that name the file, the path inside it and the bad value."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.policy import PolicyDocument, PolicyKind
from schemas.types import Severity
from tests.support.policy_files import ALPHA_BREAKERS as ALPHA
from tests.support.policy_files import CONFIGS, PolicyFiles, read_spec
from tests.support.policy_files import RESONTINEX_BREAKERS as RESONTINEX
from workers.errors import ConfigError
from workers.kernels.breaker_config import (
    DEFAULT_EXCLUDE_ERRORS,
    BreakerConfig,
    TripCondition,
    TripMetric,
    WindowType,
)
from workers.policies import (
    MODE_DEFAULTS,
    BreakerPolicy,
    default_breaker_policy,
    load_breaker_policy,
)
from workers.settings import Mode

DEV = MODE_DEFAULTS[Mode.DEVELOPMENT]
FILES = PolicyFiles(load_breaker_policy, "breakers.yaml")
write, load_error = FILES.write, FILES.error


@pytest.fixture(autouse=True)
def _dirs(tmp_path: Path) -> None:
    """Subdirectories for tests that need several files of the same name."""
    for sub in ("a", "b", "c"):
        (tmp_path / sub).mkdir()


# --- alpha-solver seed --------------------------------------------------------------------


def test_alpha_seed_maps_every_field() -> None:
    policy = load_breaker_policy(ALPHA.parent)  # a directory: finds circuit_breakers.json
    assert policy.name == "circuit_breakers"
    assert policy.source == str(ALPHA)
    assert list(policy.breakers) == ["cb.vendor.default", "cb.tool.critical", "cb.vendor.expensive"]
    assert policy.default_breaker_id == "cb.vendor.default"
    assert policy.disabled == frozenset()
    minimum = DEV["minimum_number_of_calls"]
    assert policy.breakers["cb.vendor.default"] == BreakerConfig(
        policy_id="cb.vendor.default",
        failure_threshold=5,
        success_threshold=2,
        wait_in_open_ms=60_000,
        permitted_calls_in_half_open=3,
        sliding_window_type=WindowType.TIME,
        sliding_window_size=120,
        minimum_number_of_calls=minimum,
        error_types=frozenset({"timeout", "500", "503", "rate_limit"}),
        exclude_errors=frozenset({"400", "401", "403"}),
    )
    # half_open_requests 1 < success_threshold 5: widened, and the note says why.
    assert policy.breakers["cb.tool.critical"] == BreakerConfig(
        policy_id="cb.tool.critical",
        failure_threshold=3,
        success_threshold=5,
        wait_in_open_ms=30_000,
        permitted_calls_in_half_open=5,
        sliding_window_type=WindowType.TIME,
        sliding_window_size=60,
        minimum_number_of_calls=minimum,
        fallback_action="use_cache",
        alert_on_open=True,
    )
    assert any(
        n.startswith("breakers.cb.tool.critical.half_open_requests: 1") for n in policy.notes
    )
    # No half_open_requests: max(success_threshold, kernel default 10).
    assert policy.breakers["cb.vendor.expensive"] == BreakerConfig(
        policy_id="cb.vendor.expensive",
        failure_threshold=2,
        success_threshold=3,
        wait_in_open_ms=45_000,
        permitted_calls_in_half_open=10,
        sliding_window_type=WindowType.TIME,
        sliding_window_size=300,
        minimum_number_of_calls=minimum,
        cost_threshold_usd=Decimal("10"),
        exclude_errors=DEFAULT_EXCLUDE_ERRORS,
    )
    assert "states: the kernel's state machine (Resilience4j's) is used; ignored" in policy.notes
    assert any(n.startswith("global_config.default_timeout_ms:") for n in policy.notes)


def test_alpha_global_disable_disables_every_breaker(tmp_path: Path) -> None:
    spec = read_spec(ALPHA)
    spec["global_config"]["enabled"] = False
    policy = load_breaker_policy(write(tmp_path, spec, "circuit_breakers.json"))
    assert policy.disabled == frozenset(policy.breakers)
    assert not policy.enabled("cb.tool.critical")


def test_alpha_accepts_rules_and_default(tmp_path: Path) -> None:
    spec = read_spec(ALPHA)
    spec["rules"] = [{"tool": "sql", "breaker": "cb.tool.critical"}]
    spec["default"] = "cb.vendor.expensive"
    policy = load_breaker_policy(write(tmp_path, spec, "circuit_breakers.json"))
    assert policy.resolve_id("internal", "sql") == "cb.tool.critical"
    assert policy.resolve_id("openai", "chat") == "cb.vendor.expensive"


# --- RESONTINEX seed ----------------------------------------------------------------------


def test_resontinex_seed_maps_every_field() -> None:
    policy = load_breaker_policy(RESONTINEX)
    assert list(policy.breakers) == [
        "fusion_primary",
        "judge_fusion",
        "overlay_router",
        "energy_governance",
    ]
    assert policy.default_breaker_id == "fusion_primary"  # no cb.vendor.default: the first
    assert policy.breakers["fusion_primary"] == BreakerConfig(
        policy_id="fusion_primary",
        failure_threshold=5,
        wait_in_open_ms=300_000,
        permitted_calls_in_half_open=3,
        success_threshold=2,
        consecutive_success_threshold=3,
        sliding_window_type=WindowType.COUNT,
        sliding_window_size=100,
        minimum_number_of_calls=10,
        alert_severity=Severity.CRITICAL,
        trip_conditions=(
            TripCondition(
                TripMetric.LATENCY_P95, 5000, 3, 300_000, name="fusion_overlay_latency_p95"
            ),
            TripCondition(TripMetric.SUCCESS_RATE, 0.80, 5, 600_000, name="fusion_success_rate"),
        ),
    )
    judge = policy.breakers["judge_fusion"]
    assert judge.trip_conditions[1] == TripCondition(
        TripMetric.ERROR_RATE, 0.15, 3, 600_000, name="judge_evaluation_error_rate"
    )
    assert (policy.breakers["overlay_router"].trip_conditions[1].metric) is TripMetric.SUCCESS_RATE
    energy = policy.breakers["energy_governance"]
    # No sliding_window_size / minimum_throughput: the mode's defaults.
    assert energy.sliding_window_size == DEV["sliding_window_size"]
    assert energy.minimum_number_of_calls == DEV["minimum_number_of_calls"]
    assert energy.consecutive_success_threshold == 0
    assert energy.trip_conditions[0].metric is TripMetric.LATENCY_P95
    assert energy.trip_conditions[0].threshold == 2000


def test_resontinex_notes_for_what_is_not_evaluated() -> None:
    notes = load_breaker_policy(RESONTINEX).notes
    assert (
        "circuit_breakers.fusion_primary.trip_conditions[2]: memory_usage_mb is not derived "
        "from tool events; not evaluated"
    ) in notes
    for name in ("fusion_primary", "judge_fusion", "overlay_router"):
        assert any(
            n.startswith(f"circuit_breakers.{name}.fast_fail_threshold:") and "not evaluated" in n
            for n in notes
        )
    assert any("budget_allocation_latency_ms names no percentile" in n for n in notes)
    assert any(n.startswith("policies:") for n in notes)
    assert any(n.startswith("alerting.circuit_half_open:") for n in notes)


def test_resontinex_disabled_breaker_and_severity(tmp_path: Path) -> None:
    spec = read_spec(RESONTINEX)
    spec["circuit_breakers"]["judge_fusion"]["enabled"] = False
    spec["alerting"]["circuit_open"]["severity"] = "warning"
    policy = load_breaker_policy(write(tmp_path, spec, "circuit_breakers.yaml"))
    assert policy.disabled == frozenset({"judge_fusion"})
    assert policy.enabled("fusion_primary")
    assert {c.alert_severity for c in policy.breakers.values()} == {Severity.WARNING}


# --- guardstream's shape and routing ------------------------------------------------------


def test_guardstream_config_loads_and_routes_as_documented() -> None:
    policy = load_breaker_policy(CONFIGS)
    assert policy.source == str(CONFIGS / "breakers.yaml")
    assert set(policy.breakers) == {"cb.vendor.default", "cb.tool.critical", "cb.vendor.expensive"}
    assert policy.notes == ()
    routes = {
        ("internal", "sql"): "cb.tool.critical",
        ("google", "vector-search"): "cb.tool.critical",
        ("openai", "chat"): "cb.vendor.expensive",
        ("openai", "embeddings"): "cb.vendor.default",
        ("anthropic", "messages"): "cb.vendor.expensive",
        ("google", "generate"): "cb.vendor.default",
    }
    for (vendor, tool), breaker in routes.items():
        assert policy.resolve_id(vendor, tool) == breaker
        assert policy.resolve(vendor, tool) is policy.breakers[breaker]
    critical = policy.breakers["cb.tool.critical"]
    assert critical.slow_call_rate_threshold_pct == 80  # from `defaults:`
    assert critical.fallback_action == "use_cache"
    assert policy.breakers["cb.vendor.expensive"].wait_ms(3) == 180_000  # backoff 2x


def guard(rules: list[dict[str, str]], **top: Any) -> dict[str, Any]:
    breakers: dict[str, dict[str, Any]] = {"a": {}, "b": {}, "c": {}}
    return {"breakers": breakers, "rules": rules, **top}


def test_globs_and_first_match_wins(tmp_path: Path) -> None:
    spec = guard(
        [
            {"vendor": "open?i", "tool": "chat*", "breaker": "a"},
            {"vendor": "openai", "breaker": "b"},
            {"tool": "[sv]*", "breaker": "c"},
            {"vendor": "*", "tool": "*", "breaker": "a"},  # never reached for openai
        ],
        default="c",
    )
    policy = load_breaker_policy(write(tmp_path, spec))
    assert policy.resolve_id("openai", "chat-v2") == "a"
    assert policy.resolve_id("openai", "embeddings") == "b"
    assert policy.resolve_id("google", "search") == "c"
    assert policy.resolve_id("google", "generate") == "a"
    assert policy.resolve_id("OpenAI", "chat") == "a"  # case-sensitive: skips rules 1-2, hits 4


def test_no_rule_matches_uses_default_and_cache_is_bounded(tmp_path: Path) -> None:
    policy = load_breaker_policy(write(tmp_path, guard([{"vendor": "x", "breaker": "b"}])))
    assert policy.default_breaker_id == "a"  # no default, no cb.vendor.default: the first
    for i in range(5000):
        assert policy.resolve_id("v", f"tool-{i}") == "a"
    info = policy._resolve_id.cache_info()  # type: ignore[attr-defined]
    assert info.currsize <= info.maxsize


@pytest.mark.parametrize(
    ("key", "expected"),
    [(None, "openai/chat"), ("vendor/tool", "openai/chat"), ("vendor", "openai"), ("tool", "chat")],
)
def test_key_modes(tmp_path: Path, key: str | None, expected: str) -> None:
    spec = guard([]) if key is None else guard([], key=key)
    assert load_breaker_policy(write(tmp_path, spec)).key_for("openai", "chat") == expected


# --- versions and documents ---------------------------------------------------------------


def test_version_ignores_key_order_and_comments_but_not_values(tmp_path: Path) -> None:
    a = write(tmp_path / "a", "breakers:\n  x: {failure_threshold: 3, wait_in_open_ms: 5000}\n")
    b = write(
        tmp_path / "b",
        "# a comment\nbreakers:\n  x:\n    wait_in_open_ms: 5000  # why\n"
        "    failure_threshold: 3\n",
    )
    c = write(tmp_path / "c", "breakers:\n  x: {failure_threshold: 4, wait_in_open_ms: 5000}\n")
    versions = [load_breaker_policy(p).version for p in (a, b, c)]
    assert versions[0] == versions[1] != versions[2]


@pytest.mark.parametrize("path", [ALPHA, RESONTINEX, CONFIGS / "breakers.yaml"])
def test_from_document_round_trip(path: Path) -> None:
    policy = load_breaker_policy(path, Mode.STAGING)
    doc = policy.document
    assert doc.kind is PolicyKind.BREAKERS
    assert doc.version == policy.version
    wire = PolicyDocument.model_validate_json(doc.model_dump_json())
    again = BreakerPolicy.from_document(wire, Mode.STAGING)
    assert dict(again.breakers) == dict(policy.breakers)
    assert again.version == policy.version
    assert again.notes == policy.notes
    assert again.rules == policy.rules
    assert again.default_breaker_id == policy.default_breaker_id


def test_from_document_rejects_other_kinds() -> None:
    doc = PolicyDocument.from_spec(PolicyKind.BUDGETS, "budgets", {"breakers": {}}, source="b.yaml")
    with pytest.raises(ConfigError, match=r"b\.yaml: policy kind must be breakers"):
        BreakerPolicy.from_document(doc)


# --- mode defaults ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(Mode))
def test_mode_defaults_fill_what_the_file_omits(mode: Mode) -> None:
    config = default_breaker_policy(mode).resolve("openai", "chat")
    assert config.policy_id == "default"
    for name, value in MODE_DEFAULTS[mode].items():
        assert getattr(config, name) == value


def test_production_defaults_are_resilience4j_and_file_values_win(tmp_path: Path) -> None:
    assert dict(MODE_DEFAULTS[Mode.PRODUCTION]) == {
        "minimum_number_of_calls": 100,
        "wait_in_open_ms": 60_000,
        "sliding_window_size": 100,
    }
    spec = {
        "defaults": {"wait_in_open_ms": 7000},
        "breakers": {"x": {"minimum_number_of_calls": 3}, "y": {"wait_in_open_ms": 9000}},
    }
    policy = load_breaker_policy(write(tmp_path, spec), Mode.PRODUCTION)
    x, y = policy.breakers["x"], policy.breakers["y"]
    assert (x.minimum_number_of_calls, x.wait_in_open_ms, x.sliding_window_size) == (3, 7000, 100)
    assert (y.minimum_number_of_calls, y.wait_in_open_ms) == (100, 9000)


# --- malformed policies: file + path + value ----------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"breakers": {"cb.tool.critical": {"failure_threshold": -3}}},
            "breakers.cb.tool.critical.failure_threshold: must be an integer >= 0, not -3",
        ),
        (
            {"breakers": {"x": {"wait_in_open_ms": "60s"}}},
            "breakers.x.wait_in_open_ms: must be an integer >= 1, not '60s'",
        ),
        (
            {"breakers": {"x": {"failure_threshold": True}}},
            "breakers.x.failure_threshold: must be an integer >= 0, not True",
        ),
        (
            {"breakers": {"x": {"failure_rate_threshold_pct": 150}}},
            "breakers.x.failure_rate_threshold_pct: must be a number in (0, 100], not 150",
        ),
        (
            {"breakers": {"x": {"timeout_seconds": 60}}},
            "breakers.x.timeout_seconds: unknown field, not 60",
        ),
        (
            {"breakers": {"x": {}}, "rules": [{"vendor": "openai", "breaker": "nope"}]},
            "rules[0].breaker: must name a breaker in breakers (x), not 'nope'",
        ),
        (
            {"breakers": {"x": {}}, "default": "nope"},
            "default: must name a breaker in breakers, not 'nope'",
        ),
        (
            {"breakers": {"x": {"success_threshold": 5, "permitted_calls_in_half_open": 2}}},
            "breakers.x: breaker config success_threshold must be <= "
            "permitted_calls_in_half_open (2), not 5",
        ),
        (
            {"breakers": {"x": {"trip_conditions": [{"metric": "error_rate", "threshold": 2}]}}},
            "breakers.x.trip_conditions[0]: breaker config trip_conditions.threshold must be in "
            "[0, 1], not 2.0",
        ),
        (
            {"breakers": {"x": {"sliding_window_type": "hopping"}}},
            "breakers.x.sliding_window_type: Input should be 'count' or 'time', not 'hopping'",
        ),
        ({"breakers": {}}, "breakers: must define at least one breaker, not {}"),
        ({"rules": []}, "(top level): has no `breakers`"),
        ({"breakers": {"x": {}}, "key": "model"}, "key: Input should be"),
    ],
)
def test_guardstream_errors_name_file_path_and_value(
    tmp_path: Path, spec: dict[str, Any], expected: str
) -> None:
    path = write(tmp_path, spec)
    assert f"{path}: {expected}" in load_error(path)


def test_all_errors_of_a_file_are_reported_together(tmp_path: Path) -> None:
    spec = {
        "breakers": {
            "a": {"failure_threshold": -1, "typo_field": 1},
            "b": {"cost_threshold_usd": -5},
        }
    }
    lines = load_error(write(tmp_path, spec)).splitlines()
    assert len(lines) == 3
    assert all(line.startswith(str(tmp_path / "breakers.yaml") + ": breakers.") for line in lines)
    assert any("breakers.a.typo_field: unknown field, not 1" in line for line in lines)
    assert any("breakers.b.cost_threshold_usd: must be a positive amount" in line for line in lines)


def test_kernel_errors_of_several_breakers_are_collected(tmp_path: Path) -> None:
    spec = {
        "breakers": {
            "a": {"success_threshold": 5, "permitted_calls_in_half_open": 2},
            "b": {"max_wait_in_open_ms": 10, "wait_in_open_ms": 100},
        },
        "rules": [{"breaker": "zzz"}],
    }
    message = load_error(write(tmp_path, spec))
    assert len(message.splitlines()) == 3
    assert "breakers.b: breaker config max_wait_in_open_ms must be >= wait_in_open_ms" in message
    assert "rules[0].breaker: must name a breaker in breakers (a, b), not 'zzz'" in message


def test_seed_errors_name_seed_paths(tmp_path: Path) -> None:
    alpha = read_spec(ALPHA)
    alpha["breakers"]["cb.vendor.default"]["timeout_seconds"] = 0
    alpha["breakers"]["cb.tool.critical"]["id"] = "cb.other"
    path = write(tmp_path / "a", alpha, "circuit_breakers.json")
    message = load_error(path)
    assert (
        f"{path}: breakers.cb.vendor.default.timeout_seconds: must be an integer in [1, 3,600], "
        "not 0"
    ) in message
    assert "breakers.cb.tool.critical.id: must equal the breaker's key" in message

    res = read_spec(RESONTINEX)
    res["circuit_breakers"]["judge_fusion"]["trip_conditions"][1]["threshold"] = 1.5
    res["circuit_breakers"]["overlay_router"]["half_open_max_calls"] = 2
    del res["circuit_breakers"]["fusion_primary"]["trip_conditions"][0]["threshold_ms"]
    path = write(tmp_path / "b", res, "circuit_breakers.yaml")
    lines = load_error(path).splitlines()
    assert len(lines) == 3
    assert lines == [
        f"{path}: circuit_breakers.fusion_primary.trip_conditions[0].threshold_ms: is required "
        "for latency_p95 metric 'fusion_overlay_latency_p95'",
        f"{path}: circuit_breakers.judge_fusion.trip_conditions[1]: breaker config "
        "trip_conditions.threshold must be in [0, 1], not 1.5",
        f"{path}: circuit_breakers.overlay_router: breaker config success_threshold must be <= "
        "permitted_calls_in_half_open (2), not 3",
    ]


def test_seed_unknown_keys_are_notes_not_errors(tmp_path: Path) -> None:
    alpha = read_spec(ALPHA)
    alpha["breakers"]["cb.vendor.default"]["retry_jitter"] = 0.1
    policy = load_breaker_policy(write(tmp_path, alpha, "circuit_breakers.json"))
    assert any(n.startswith("breakers.cb.vendor.default.retry_jitter:") for n in policy.notes)


def test_shapes_are_not_mixed(tmp_path: Path) -> None:
    path = write(tmp_path, {"breakers": {"x": {}}, "circuit_breakers": {"y": {}}})
    assert "has both `breakers` and `circuit_breakers`" in load_error(path)


# --- files and directories ----------------------------------------------------------------


def test_duplicate_candidates_in_a_directory(tmp_path: Path) -> None:
    write(tmp_path, guard([]), "breakers.yaml")
    write(tmp_path, guard([]), "breakers.json")
    message = load_error(tmp_path)
    assert str(tmp_path) in message
    assert "breakers.json, breakers.yaml" in message


def test_breakers_file_wins_over_the_seed_name(tmp_path: Path) -> None:
    write(tmp_path, {"breakers": {"mine": {}}}, "breakers.yml")
    write(tmp_path, read_spec(ALPHA), "circuit_breakers.json")
    assert list(load_breaker_policy(tmp_path).breakers) == ["mine"]


def test_missing_directory_and_empty_directory(tmp_path: Path) -> None:
    assert f"{tmp_path / 'nope'}: no such file or directory" in load_error(tmp_path / "nope")
    assert "no policy file found (looked for breakers.yaml|yml|json" in load_error(tmp_path / "a")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "breakers:\n  x:\n    failure_threshold: [1, 2\n  y: {}\n")
    message = load_error(path)
    assert message.startswith(f"{path}: line 4")
    assert "invalid YAML" in message


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "breakers": {,}\n}\n', "circuit_breakers.json")
    assert load_error(path).startswith(f"{path}: line 2: invalid JSON")


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}: file is empty"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    assert load_error(path) == f"{path}: must be a mapping at the top, not list"


def test_yaml_that_is_not_json_data(tmp_path: Path) -> None:
    path = write(tmp_path, "breakers:\n  x: {}\nupdated: 2024-01-01\n")
    assert load_error(path) == f"{path}: updated: input was not a valid JSON value"


def test_a_typo_in_one_breaker_does_not_hide_another_breakers_error(tmp_path: Path) -> None:
    spec = {
        "breakers": {
            "a": {"wait_in_open": 60},
            "b": {"success_threshold": 5, "permitted_calls_in_half_open": 2},
        }
    }
    lines = load_error(write(tmp_path, spec)).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["breakers.a.wait_in_open", "breakers.b"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"breakers": {"": {}}}, "breakers.: id must be 1-"),
        ({"breakers": {"x": 5}}, "breakers.x: Input should be a valid dictionary, not 5"),
        ({"breakers": {"x": {"enabled": "no"}}}, "breakers.x.enabled: must be true or false"),
        (
            {"breakers": {"x": {"trip_conditions": [{"metric": "error_rate", "threshold": "x"}]}}},
            "breakers.x.trip_conditions[0].threshold: must be a number, not 'x'",
        ),
        (
            {"breakers": {"x": {"error_types": "timeout"}}},
            "breakers.x.error_types: must be a list of strings, not 'timeout'",
        ),
        ({"breakers": {"x": {"failure_threshold": None}}}, "failure_threshold: must be an integer"),
    ],
)
def test_more_type_errors(tmp_path: Path, spec: dict[str, Any], expected: str) -> None:
    assert expected in load_error(write(tmp_path, spec))


def test_disabled_breaker_in_guardstream_shape(tmp_path: Path) -> None:
    spec = {"defaults": {"enabled": False}, "breakers": {"x": {}, "y": {"enabled": True}}}
    policy = load_breaker_policy(write(tmp_path, spec))
    assert policy.disabled == frozenset({"x"})
