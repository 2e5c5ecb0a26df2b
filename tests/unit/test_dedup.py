"""Event-id de-duplication within an event-time horizon (workers/ingest/dedup.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.ingest.dedup import Deduplicator

HORIZON_MS = 1_000

# --- table tests --------------------------------------------------------------------------

# (steps as (event_id, ts_ms, expected verdict), watermark after the last step)
CASES = {
    "a repeat inside the horizon is a duplicate": (
        [("a", 0, True), ("a", 500, False), ("a", 1_000, False)],
        0,
    ),
    "distinct ids are all first-time": (
        [("a", 0, True), ("b", 0, True), ("c", 10, True)],
        10,
    ),
    "a repeat exactly horizon_ms after the first copy is still a duplicate": (
        [("a", 0, True), ("b", HORIZON_MS, True), ("a", HORIZON_MS, False)],
        HORIZON_MS,
    ),
    "once the watermark passes first copy + horizon, the id is accepted again": (
        [("a", 0, True), ("b", HORIZON_MS + 1, True), ("a", HORIZON_MS + 1, True)],
        HORIZON_MS + 1,
    ),
    "a repeat of the re-accepted id is a duplicate again": (
        [("a", 0, True), ("b", 5_000, True), ("a", 5_000, True), ("a", 5_001, False)],
        5_000,
    ),
    "out-of-order events do not move the watermark back": (
        [("a", 5_000, True), ("b", 4_200, True), ("c", 4_100, True), ("b", 4_900, False)],
        5_000,
    ),
    "a late event older than the horizon is still remembered once accepted": (
        [("a", 5_000, True), ("old", 100, True), ("old", 100, False)],
        5_000,
    ),
    "a duplicate never moves the watermark": (
        [("a", 0, True), ("a", 900_000, False), ("b", 10, True), ("a", 20, False)],
        10,
    ),
}


@pytest.mark.parametrize(("steps", "watermark_ms"), CASES.values(), ids=CASES.keys())
def test_verdicts(steps: list[tuple[str, int, bool]], watermark_ms: int) -> None:
    dedup = Deduplicator(horizon_ms=HORIZON_MS, max_ids=100)
    verdicts = [dedup.first_time(event_id, ts_ms) for event_id, ts_ms, _ in steps]
    assert verdicts == [expected for _, _, expected in steps]
    assert dedup.watermark_ms == watermark_ms
    assert dedup.forgotten_early == 0


def test_starts_empty_without_a_watermark() -> None:
    dedup = Deduplicator(horizon_ms=HORIZON_MS, max_ids=10)
    assert dedup.watermark_ms is None
    assert len(dedup) == 0
    assert dedup.forgotten_early == 0


def test_expiry_frees_memory_when_the_watermark_advances() -> None:
    dedup = Deduplicator(horizon_ms=HORIZON_MS, max_ids=100)
    for i in range(10):
        dedup.first_time(f"early-{i}", i)  # ts 0..9
    assert len(dedup) == 10
    # watermark 1_005: cutoff 5, so ids at ts 0..4 expire and 5..9 stay, plus the new one.
    dedup.first_time("later", 1_005)
    assert len(dedup) == 6
    assert dedup.first_time("early-4", 1_005) is True
    assert dedup.first_time("early-5", 1_005) is False
    assert dedup.forgotten_early == 0  # expiry is not "early"


def test_cap_evicts_the_oldest_seen_and_counts_it() -> None:
    dedup = Deduplicator(horizon_ms=HORIZON_MS, max_ids=3)
    for event_id in ("a", "b", "c"):
        assert dedup.first_time(event_id, 0)
    assert (len(dedup), dedup.forgotten_early) == (3, 0)
    assert dedup.first_time("d", 1) is True  # pushes "a" out although its horizon has not run
    assert (len(dedup), dedup.forgotten_early) == (3, 1)
    assert dedup.first_time("b", 2) is False  # still held
    assert dedup.first_time("a", 3) is True  # forgotten early: a repeat gets through
    assert (len(dedup), dedup.forgotten_early) == (3, 2)  # and pushed "b" out in turn
    assert dedup.first_time("b", 4) is True


def test_cap_of_one_holds_only_the_latest_id() -> None:
    dedup = Deduplicator(horizon_ms=HORIZON_MS, max_ids=1)
    assert dedup.first_time("a", 0) is True
    assert dedup.first_time("a", 0) is False
    assert dedup.first_time("b", 0) is True
    assert dedup.first_time("a", 0) is True
    assert (len(dedup), dedup.forgotten_early) == (1, 2)


def test_cap_eviction_of_an_already_expired_id_is_not_counted_as_early() -> None:
    dedup = Deduplicator(horizon_ms=10, max_ids=2)
    dedup.first_time("a", 100)  # watermark 100
    dedup.first_time("late", 0)  # out of order: 90 ms past its horizon already
    dedup.first_time("b", 105)  # cap pushes "a" (inside its horizon): early, count 1
    assert dedup.forgotten_early == 1
    dedup.first_time("c", 50)  # no watermark move; cap pushes "late", long expired
    assert dedup.forgotten_early == 1


@pytest.mark.parametrize(
    ("horizon_ms", "max_ids", "message"),
    [
        (0, 10, "horizon_ms must be > 0, got 0"),
        (-5, 10, "horizon_ms must be > 0, got -5"),
        (1_000, 0, "max_ids must be > 0, got 0"),
        (1_000, -1, "max_ids must be > 0, got -1"),
    ],
)
def test_invalid_arguments_name_the_bad_value(horizon_ms: int, max_ids: int, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        Deduplicator(horizon_ms=horizon_ms, max_ids=max_ids)


# --- properties ---------------------------------------------------------------------------

event_ids = st.sampled_from([f"id-{i}" for i in range(30)])
events = st.lists(st.tuples(event_ids, st.integers(0, 50_000)), max_size=200)


@settings(max_examples=200, deadline=None)
@given(events=events, horizon_ms=st.integers(1, 20_000), max_ids=st.integers(1, 20))
def test_memory_never_exceeds_the_cap(
    events: list[tuple[str, int]], horizon_ms: int, max_ids: int
) -> None:
    dedup = Deduplicator(horizon_ms=horizon_ms, max_ids=max_ids)
    accepted = 0
    for event_id, ts_ms in events:
        accepted += dedup.first_time(event_id, ts_ms)
        assert len(dedup) <= max_ids
    assert dedup.forgotten_early <= max(accepted - max_ids, 0)


@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(event_ids, max_size=200),
    base_ms=st.integers(0, 10**12),
    data=st.data(),
)
def test_within_the_horizon_exactly_the_first_occurrence_is_accepted(
    ids: list[str], base_ms: int, data: st.DataObject
) -> None:
    # Every timestamp within one horizon of every other, in any order: nothing may expire.
    offsets = data.draw(st.lists(st.integers(0, HORIZON_MS), min_size=len(ids), max_size=len(ids)))
    dedup = Deduplicator(horizon_ms=HORIZON_MS, max_ids=10**9)
    verdicts = [
        dedup.first_time(event_id, base_ms + offset)
        for event_id, offset in zip(ids, offsets, strict=True)
    ]
    first_positions = {event_id: ids.index(event_id) for event_id in set(ids)}
    expected = [first_positions[event_id] == i for i, event_id in enumerate(ids)]
    assert verdicts == expected
    assert len(dedup) == len(set(ids))
    assert dedup.forgotten_early == 0


@settings(max_examples=200, deadline=None)
@given(events=events, horizon_ms=st.integers(1, 20_000), max_ids=st.integers(1, 50))
def test_verdicts_are_deterministic(
    events: list[tuple[str, int]], horizon_ms: int, max_ids: int
) -> None:
    def run() -> tuple[list[bool], int | None, int, int]:
        dedup = Deduplicator(horizon_ms=horizon_ms, max_ids=max_ids)
        verdicts = [dedup.first_time(event_id, ts_ms) for event_id, ts_ms in events]
        return verdicts, dedup.watermark_ms, dedup.forgotten_early, len(dedup)

    assert run() == run()


@settings(max_examples=200, deadline=None)
@given(events=events, horizon_ms=st.integers(1, 20_000))
def test_a_repeat_within_the_horizon_of_the_watermark_is_never_accepted(
    events: list[tuple[str, int]], horizon_ms: int
) -> None:
    # The module's guarantee (below the cap): a repeat whose first copy is at most horizon_ms
    # older than the watermark is a duplicate; expiry may keep ids longer, never shorter.
    dedup = Deduplicator(horizon_ms=horizon_ms, max_ids=10**9)
    first_copy_ts: dict[str, int] = {}
    for event_id, ts_ms in events:
        verdict = dedup.first_time(event_id, ts_ms)
        assert dedup.watermark_ms is not None
        held = event_id in first_copy_ts
        if held and first_copy_ts[event_id] >= dedup.watermark_ms - horizon_ms:
            assert verdict is False
        if verdict:
            first_copy_ts[event_id] = ts_ms
