"""The seeded traffic simulator (workers/simulate): wire bytes, chaos rates, outages, spikes."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.events import INPUT_EVENT_TYPES, ToolInvocation
from topics.catalog import TopicName
from workers.cli.main import cli
from workers.errors import ConfigError
from workers.simulate.scenario import (
    DEFAULT_VENDORS,
    SEED_CHAOS,
    Chaos,
    Outage,
    Scenario,
    SpendSpike,
)
from workers.simulate.traffic import SimRecord, TrafficGenerator

T0_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
CALL_OUTCOMES = frozenset({"success", "timeout", "api_error", "rate_limit"})
PRICE_PER_1K = {vendor.name: vendor.usd_per_1k_tokens for vendor in DEFAULT_VENDORS}


def _records(
    scenario: Scenario, n: int, *, seed: int = 7, elapsed_s: float = 0.0
) -> list[SimRecord]:
    generator = TrafficGenerator(scenario, seed=seed)
    return [generator.next_record(elapsed_s=elapsed_s, now_ms=T0_MS + i) for i in range(n)]


def _decodes(record: SimRecord) -> bool:
    try:
        INPUT_EVENT_TYPES[str(record.topic)].model_validate_json(record.value)
    except ValidationError:
        return False
    return True


def _doc(record: SimRecord) -> dict[str, Any]:
    document = orjson.loads(record.value)
    assert isinstance(document, dict)
    return document


# Everything switched on at once: chaos, an outage and a spike covering the run, duplicates.
BUSY = Scenario(
    outages=(Outage("google", 0.0, 1e9),),
    spikes=(SpendSpike("support", 0.0, 1e9, 7.0),),
    duplicate_share=0.05,
)


# --- wire validity ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def busy_records() -> list[SimRecord]:
    return _records(BUSY, 20_000)


def test_records_marked_valid_decode_with_their_topics_model(
    busy_records: list[SimRecord],
) -> None:
    valid = [record for record in busy_records if record.valid]
    assert len(valid) > 19_000
    undecodable = [record for record in valid if not _decodes(record)]
    assert undecodable == []


def test_records_marked_invalid_fail_validation(busy_records: list[SimRecord]) -> None:
    invalid = [record for record in busy_records if not record.valid]
    assert 100 < len(invalid) < 400  # about 1% of 20k
    assert {record.outcome for record in invalid} == {"corrupt"}
    assert [record for record in invalid if _decodes(record)] == []


def test_every_outcome_appears_on_the_topic_it_belongs_to(busy_records: list[SimRecord]) -> None:
    topics: dict[str, set[TopicName]] = {}
    for record in busy_records:
        topics.setdefault(record.outcome, set()).add(record.topic)
    assert topics == {
        "success": {TopicName.TOOL_INVOCATIONS},
        "timeout": {TopicName.TOOL_INVOCATIONS},
        "api_error": {TopicName.TOOL_INVOCATIONS},
        "rate_limit": {TopicName.TOOL_INVOCATIONS},
        "outage": {TopicName.TOOL_INVOCATIONS},
        "duplicate": {TopicName.TOOL_INVOCATIONS},
        "corrupt": {TopicName.TOOL_INVOCATIONS},
        "cost": {TopicName.COST_EVENTS},
        "latency": {TopicName.LATENCY_EVENTS},
    }


def test_keys_follow_the_catalog(busy_records: list[SimRecord]) -> None:
    for record in busy_records[:2_000]:
        if not record.valid:
            continue
        document = _doc(record)
        if record.topic is TopicName.COST_EVENTS:
            assert record.key == document["team"].encode()
        else:
            assert record.key == f"{document['vendor']}/{document['tool']}".encode()


def test_duplicates_repeat_an_earlier_invocation_byte_for_byte(
    busy_records: list[SimRecord],
) -> None:
    earlier: set[bytes] = set()
    duplicates = 0
    for record in busy_records:
        if record.outcome == "duplicate":
            duplicates += 1
            assert record.value in earlier
        elif record.topic is TopicName.TOOL_INVOCATIONS and record.valid:
            earlier.add(record.value)
    assert 500 < duplicates < 1_500  # about 5% of 20k


def test_event_time_is_the_given_clock_reading() -> None:
    generator = TrafficGenerator(Scenario(chaos=Chaos.none()), seed=1)
    for now_ms in (T0_MS, T0_MS + 1_234, T0_MS + 86_400_000):
        record = generator.next_record(elapsed_s=0.0, now_ms=now_ms)
        event = INPUT_EVENT_TYPES[str(record.topic)].model_validate_json(record.value)
        assert event.ts == datetime.fromtimestamp(now_ms / 1000, UTC)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), elapsed_s=st.floats(0, 1_000))
def test_valid_flag_matches_validation_for_any_seed(seed: int, elapsed_s: float) -> None:
    scenario = replace(BUSY, chaos=Chaos(data_corruption=0.2))
    for record in _records(scenario, 300, seed=seed, elapsed_s=elapsed_s):
        assert _decodes(record) is record.valid, record


# --- determinism --------------------------------------------------------------------------


def test_same_seed_same_records() -> None:
    first, second = _records(BUSY, 2_000, seed=42), _records(BUSY, 2_000, seed=42)
    assert first == second


def test_another_seed_other_records() -> None:
    assert _records(BUSY, 200, seed=1) != _records(BUSY, 200, seed=2)


# --- chaos --------------------------------------------------------------------------------


def test_chaos_rates_match_the_seeds() -> None:
    records = _records(Scenario(), 20_000, seed=11)
    outcomes = Counter(record.outcome for record in records)
    calls = sum(outcomes[outcome] for outcome in CALL_OUTCOMES)
    assert calls > 15_000
    assert outcomes["corrupt"] / len(records) == pytest.approx(0.01, abs=0.005)
    assert outcomes["timeout"] / calls == pytest.approx(0.10, abs=0.02)
    assert outcomes["api_error"] / calls == pytest.approx(0.05, abs=0.02)
    assert outcomes["rate_limit"] / calls == pytest.approx(0.15, abs=0.02)
    assert SEED_CHAOS == {
        "vendor_timeout": 0.1,
        "api_error": 0.05,
        "rate_limit": 0.15,
        "data_corruption": 0.01,
    }


def test_failures_carry_the_status_and_error_type_a_gateway_reports() -> None:
    expected = {
        "success": ({"success"}, {None}),
        "timeout": ({"timeout"}, {"timeout"}),
        "api_error": ({"error"}, {"500", "502", "503"}),
        "rate_limit": ({"rejected"}, {"rate_limit"}),
    }
    seen: dict[str, tuple[set[str], set[str | None]]] = {k: (set(), set()) for k in expected}
    for record in _records(Scenario(), 5_000, seed=5):
        if record.outcome in expected:
            event = ToolInvocation.model_validate_json(record.value)
            statuses, error_types = seen[record.outcome]
            statuses.add(str(event.status))
            error_types.add(event.error_type)
            if record.outcome != "success":
                assert (event.tokens_in, event.tokens_out, event.cost_usd) == (0, 0, Decimal(0))
    assert seen == expected


def test_no_chaos_means_no_failures() -> None:
    outcomes = Counter(record.outcome for record in _records(Scenario(chaos=Chaos.none()), 5_000))
    assert set(outcomes) == {"success", "cost", "latency"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vendor_timeout": -0.01}, "chaos vendor_timeout=-0.01: must be within [0, 1]"),
        ({"api_error": 1.5}, "chaos api_error=1.5: must be within [0, 1]"),
        ({"rate_limit": float("nan")}, "chaos rate_limit=nan: must be within [0, 1]"),
        ({"data_corruption": 2.0}, "chaos data_corruption=2.0: must be within [0, 1]"),
        (
            {"vendor_timeout": 0.5, "api_error": 0.3, "rate_limit": 0.3},
            "chaos failure probabilities sum to 1.100 > 1",
        ),
    ],
)
def test_out_of_range_chaos_is_a_config_error(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Chaos(**kwargs)
    assert str(raised.value) == message
    assert raised.value.exit_code == 2


def test_chaos_at_the_edges_is_allowed() -> None:
    assert Chaos(vendor_timeout=1.0, api_error=0.0, rate_limit=0.0, data_corruption=1.0)
    assert Chaos.none() == Chaos(0.0, 0.0, 0.0, 0.0)


# --- outages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "elapsed_s", "active"),
    [
        ("openai", 29.999, False),
        ("openai", 30.0, True),  # start is inclusive
        ("openai", 89.999, True),
        ("openai", 90.0, False),  # end is exclusive
        ("anthropic", 60.0, False),
    ],
)
def test_outage_window(vendor: str, elapsed_s: float, active: bool) -> None:
    assert Outage("openai", 30.0, 60.0).active(vendor, elapsed_s) is active


def test_during_an_outage_every_call_to_the_vendor_fails() -> None:
    scenario = Scenario(outages=(Outage.parse("openai:60:60"),))
    generator = TrafficGenerator(scenario, seed=3)
    by_phase: dict[str, Counter[str]] = {"before": Counter(), "during": Counter()}
    for i in range(6_000):
        phase = "before" if i < 3_000 else "during"
        elapsed_s = 10.0 if phase == "before" else 75.0
        record = generator.next_record(elapsed_s=elapsed_s, now_ms=T0_MS + i)
        if not record.valid:
            continue
        document = _doc(record)
        if document.get("vendor") != "openai":
            continue
        if record.topic is TopicName.TOOL_INVOCATIONS:
            by_phase[phase][record.outcome] += 1
            if phase == "during":
                assert document["status"] in ("timeout", "error")
                assert document["error_type"] in ("timeout", "503")
        elif record.topic is TopicName.LATENCY_EVENTS and phase == "during":
            assert document["latency_ms"] == 30_000.0
    assert set(by_phase["during"]) == {"outage"}
    assert by_phase["during"].total() > 300
    assert "outage" not in by_phase["before"]
    assert by_phase["before"]["success"] > 300


def test_an_outage_leaves_other_vendors_alone() -> None:
    records = _records(Scenario(outages=(Outage("openai", 0.0, 100.0),)), 3_000, elapsed_s=50.0)
    other = Counter(
        record.outcome
        for record in records
        if record.topic is TopicName.TOOL_INVOCATIONS
        and record.valid
        and _doc(record)["vendor"] != "openai"
    )
    assert "outage" not in other
    assert other["success"] > 1_000


# --- spend spikes -------------------------------------------------------------------------


def _expected_cost(document: dict[str, Any], factor: Decimal) -> Decimal:
    tokens = document["tokens_in"] + document["tokens_out"]
    raw = PRICE_PER_1K[document["vendor"]] * Decimal(tokens) / 1000 * factor
    return raw.quantize(Decimal("0.000001"))


def test_a_spike_multiplies_the_teams_cost_and_nothing_else() -> None:
    spike = SpendSpike.parse("research:100:60:20")
    plain = _records(Scenario(), 3_000, seed=9, elapsed_s=120.0)
    spiked = _records(Scenario(spikes=(spike,)), 3_000, seed=9, elapsed_s=120.0)
    multiplied = 0
    for before, after in zip(plain, spiked, strict=True):
        if before.outcome != "success":
            assert after == before
            continue
        doc_before, doc_after = _doc(before), _doc(after)
        assert Decimal(doc_before["cost_usd"]) == _expected_cost(doc_before, Decimal(1))
        if doc_before["team"] == "research":
            assert Decimal(doc_after["cost_usd"]) == _expected_cost(doc_before, Decimal(20))
            multiplied += 1
        else:
            assert after == before
        # Only the cost moves: same event, same tokens, same everything else.
        assert {**doc_after, "cost_usd": None} == {**doc_before, "cost_usd": None}
    assert multiplied > 200


def test_a_spike_outside_its_window_changes_nothing() -> None:
    spike = SpendSpike("research", 100.0, 60.0, 20.0)
    for elapsed_s in (99.9, 160.0):
        plain = _records(Scenario(), 500, seed=9, elapsed_s=elapsed_s)
        spiked = _records(Scenario(spikes=(spike,)), 500, seed=9, elapsed_s=elapsed_s)
        assert plain == spiked


# --- parsing ------------------------------------------------------------------------------


def test_parse_reads_the_documented_forms() -> None:
    assert Outage.parse("openai:30:60") == Outage("openai", 30.0, 60.0)
    assert Outage.parse("internal:0.5:1.25") == Outage("internal", 0.5, 1.25)
    assert SpendSpike.parse("research:60:30:20") == SpendSpike("research", 60.0, 30.0, 20.0)
    assert SpendSpike.parse("growth:0:1:1.5") == SpendSpike("growth", 0.0, 1.0, 1.5)


@pytest.mark.parametrize(
    "text", ["", "openai", "openai:60", "openai:60:60:1", "openai:soon:60", "openai:60:long"]
)
def test_bad_outage_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="expected VENDOR:START_S:DURATION_S") as raised:
        Outage.parse(text)
    assert repr(text) in str(raised.value)


@pytest.mark.parametrize(
    "text", ["", "research", "research:60:30", "research:60:30:20:1", "research:60:30:lots"]
)
def test_bad_spike_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="expected TEAM:START_S:DURATION_S:FACTOR") as raised:
        SpendSpike.parse(text)
    assert repr(text) in str(raised.value)


@pytest.mark.parametrize(
    "text",
    [
        "openai:60:-30",  # negative duration: the outage never happens
        "openai:nan:60",  # nan start: never active
        ":60:60",  # no vendor
    ],
)
def test_outage_with_impossible_values_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        Outage.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "research:60:30:-2",  # negative factor: negative costs (see the test below)
        "research:60:30:nan",  # cost_usd becomes "NaN"
        "research:60:-30:20",  # negative duration
        ":60:30:20",  # no team
    ],
)
def test_spike_with_impossible_values_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        SpendSpike.parse(text)


def test_a_negative_spike_factor_never_yields_a_valid_record_that_fails_validation() -> None:
    try:
        spike = SpendSpike.parse("research:0:60:-2")
    except ConfigError:
        return  # refusing the factor is a fix too
    for record in _records(Scenario(spikes=(spike,)), 500, elapsed_s=1.0):
        assert _decodes(record) is record.valid


def test_cli_reports_a_bad_outage_as_a_usage_problem() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--count", "1", "--outage", "openai:soon"])
    assert not isinstance(result.exception, ConfigError), "escaped as a traceback"
    assert result.exit_code == 2
