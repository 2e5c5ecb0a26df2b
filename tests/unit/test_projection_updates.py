"""State records -> Redis hash updates (workers.projection.updates): what a hash holds, and
the rule that keeps it from ever going backwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import encode
from schemas.state import Availability, BreakerState, BudgetState, DependencyState
from workers.projection.layout import RedisLayout, Surface
from workers.projection.updates import (
    UnreadableState,
    Update,
    coalesced,
    is_newer,
    update_of,
)

LAYOUT = RedisLayout.for_topic_prefix("guardstream.")
T0 = datetime(2026, 11, 1, tzinfo=UTC)
SOURCE = "guardstream.budget-state:2"
VERSION = "a" * 64


def breaker(state: str = "open") -> bytes:
    return encode(
        BreakerState(
            key="openai/chat",
            state=state,
            since=T0,
            retry_at=T0 + timedelta(seconds=60),
            fallback_action="use_cache",
            reason="failure rate 0.62 >= 0.5",
            policy_id="cb.vendor.default",
            policy_version=VERSION,
            updated_at=T0,
        )
    )


def budget(start: datetime, action: str = "halt", scope: dict[str, str] | None = None) -> bytes:
    return encode(
        BudgetState(
            budget_id="bud.team",
            scope={"team": "research"} if scope is None else scope,
            period="monthly",
            period_start=start,
            period_end=start + timedelta(days=30),
            spent_usd=Decimal("1000.5"),
            limit_usd=Decimal(1000),
            utilization=1.0005,
            projected_spend_usd=Decimal("1000.5"),
            action=action,
            decided_by="hard_limit",
            policy_version=VERSION,
            updated_at=start,
        )
    )


def test_a_breaker_record_becomes_its_key_s_hash_with_the_fields_a_gateway_decides_on() -> None:
    update = update_of(LAYOUT, Surface.BREAKER, "t:0", 7, b"openai/chat", breaker())
    assert update.hash_key == "guardstream:breaker:openai/chat"
    assert (update.source, update.offset, update.rank) == ("t:0", 7, 0)
    fields = update.fields
    assert fields is not None
    assert fields["state"] == "open"
    assert fields["retry_at"] == "2026-11-01T00:01:00Z"
    assert fields["fallback_action"] == "use_cache"
    assert fields["reason"] == "failure rate 0.62 >= 0.5"
    assert orjson.loads(fields["record"])["key"] == "openai/chat"
    assert update.indexes == ()


def test_a_budget_s_hash_is_its_ledger_s_and_ranks_by_its_period() -> None:
    update = update_of(LAYOUT, Surface.BUDGET, SOURCE, 3, b"bud.team/research@2026-11", budget(T0))
    assert update.hash_key == "guardstream:budget:bud.team/research"
    assert update.topic_key == "bud.team/research@2026-11"
    assert update.rank == int(T0.timestamp() * 1000)
    assert update.fields is not None
    assert update.fields["action"] == "halt"
    assert update.fields["scope"] == '{"team":"research"}'
    assert update.indexes == ("guardstream:budget-index:team=research",)


def test_a_budget_without_scope_is_indexed_as_applying_to_every_call() -> None:
    update = update_of(
        LAYOUT, Surface.BUDGET, SOURCE, 3, b"bud.global@2026-11", budget(T0, scope={})
    )
    assert update.indexes == ("guardstream:budget-index:*",)


def test_a_budget_is_found_through_its_exact_scope_values_and_through_star_when_it_has_none() -> (
    None
):
    def indexes(scope: dict[str, str]) -> tuple[str, ...]:
        record = budget(T0, scope=scope)
        return update_of(LAYOUT, Surface.BUDGET, SOURCE, 3, b"b@p", record).indexes

    index = LAYOUT.budget_index
    assert indexes({"team": "research", "vendor": "open*"}) == (index("team", "research"),)
    assert indexes({"vendor": "open*", "tool": "ch?t"}) == (index(None),)


def dependency(availability: Availability = Availability.UNAVAILABLE) -> bytes:
    return encode(
        DependencyState(
            node="dep.t001",
            subject="tool:t001",
            availability=availability,
            previous=Availability.AVAILABLE,
            cause=["dep.t001", "dep.planner", "dep.openai"],
            reason="dep.openai is down: dep.t001 -> dep.planner -> dep.openai",
            criticality="essential",
            trigger="vendor:openai down",
            breaker_key="openai",
            policy_version=VERSION,
            updated_at=T0,
        )
    )


def test_a_dependency_record_becomes_its_subject_s_hash_with_the_cause_as_a_json_list() -> None:
    update = update_of(LAYOUT, Surface.DEPENDENCY, "d:0", 4, b"tool:t001", dependency())
    assert update.hash_key == "guardstream:dependency:tool:t001"
    assert (update.topic_key, update.source, update.offset, update.rank) == (
        "tool:t001",
        "d:0",
        4,
        0,
    )
    assert update.fields is not None
    assert {name: update.fields[name] for name in ("node", "subject", "availability")} == {
        "node": "dep.t001",
        "subject": "tool:t001",
        "availability": "unavailable",
    }
    assert update.fields["reason"] == "dep.openai is down: dep.t001 -> dep.planner -> dep.openai"
    assert orjson.loads(update.fields["cause"]) == ["dep.t001", "dep.planner", "dep.openai"]
    assert update.fields["criticality"] == "essential"
    assert update.fields["policy_version"] == VERSION
    assert update.fields["updated_at"] == "2026-11-01T00:00:00Z"
    assert orjson.loads(update.fields["record"])["trigger"] == "vendor:openai down"
    assert update.indexes == ()


def test_a_dependency_back_to_available_keeps_an_empty_cause_and_no_criticality() -> None:
    record = orjson.loads(dependency(Availability.AVAILABLE))
    record.update(cause=[], criticality=None, reason="available")
    update = update_of(LAYOUT, Surface.DEPENDENCY, "d:0", 5, b"tool:t001", orjson.dumps(record))
    assert update.fields is not None
    assert (update.fields["availability"], update.fields["cause"]) == ("available", "[]")
    assert update.fields["criticality"] == ""


@pytest.mark.parametrize(
    ("surface", "key"), [(Surface.BREAKER, b"openai/chat"), (Surface.DEPENDENCY, b"vendor:openai")]
)
def test_a_tombstone_deletes(surface: Surface, key: bytes) -> None:
    update = update_of(LAYOUT, surface, "t:0", 9, key, None)
    assert update.hash_key == LAYOUT.state(surface, key.decode())
    assert update.fields is None


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"\xff", b"{}", "UTF-8"),
        (b"k", b"not json", "not JSON"),
        (b"k", b"[1]", "not a JSON object"),
    ],
)
def test_unreadable_records_say_why(key: bytes, value: bytes, reason: str) -> None:
    with pytest.raises(UnreadableState, match=reason):
        update_of(LAYOUT, Surface.BREAKER, "t:0", 1, key, value)


@pytest.mark.parametrize(
    "record",
    [
        b'{"scope": {}, "period_start": 5}',
        b'{"scope": {}, "period_start": "yesterday"}',
        b'{"scope": {}, "period_start": "2026-11-01T00:00:00"}',
        b'{"scope": [1], "period_start": "2026-11-01T00:00:00Z"}',
    ],
)
def test_a_budget_record_without_a_readable_period_or_scope_is_unreadable(record: bytes) -> None:
    with pytest.raises(UnreadableState):
        update_of(LAYOUT, Surface.BUDGET, SOURCE, 1, b"b@p", record)


def held(offset: int, rank: int = 0, source: str = "t:0", key: str = "k") -> Update:
    return Update("h", key, source, offset, rank, {"state": str(offset)})


def test_a_newer_offset_replaces_an_older_one_and_never_the_reverse() -> None:
    assert is_newer(held(5), held(4))
    assert not is_newer(held(4), held(5))
    assert not is_newer(held(5), held(5))  # a retry changes nothing


def test_a_newer_period_replaces_whatever_offset_the_older_one_had() -> None:
    assert is_newer(held(1, rank=2, source="t:1"), held(90, rank=1))
    assert not is_newer(held(90, rank=1), held(1, rank=2, source="t:1"))


def test_a_tombstone_removes_only_the_record_of_its_own_key() -> None:
    tombstone = Update("h", "k@old", "t:0", 50, 0, None)
    assert not is_newer(tombstone, held(10, rank=7, key="k@new"))
    assert is_newer(tombstone, held(10, key="k@old"))
    assert not is_newer(tombstone, None)


updates = st.builds(
    held,
    offset=st.integers(0, 30),
    rank=st.integers(0, 3),
    source=st.sampled_from(["t:0"]),
)


@given(st.lists(updates, min_size=1, max_size=30))
def test_coalescing_a_batch_keeps_what_applying_it_in_order_would(batch: list[Update]) -> None:
    applied: Update | None = None
    for update in batch:
        if is_newer(update, applied):
            applied = update
    assert coalesced(batch) == [applied]
