"""The capped key map the engines keep producer-keyed state in (workers/kernels/key_cap.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.errors import ConfigError
from workers.kernels.key_cap import (
    EVICTION_SCAN,
    RESOLVE_AFTER_MS,
    Alarm,
    CappedMap,
    KeyCaps,
    KeyLimit,
    StateKind,
)


def limit(max_keys: int) -> KeyLimit:
    return KeyLimit(StateKind.BREAKERS, max_keys)


class Entry:
    """A value whose idleness the test controls: idle once `quiet_from_ms` has passed."""

    def __init__(self, name: str, quiet_from_ms: int | None = None) -> None:
        self.name = name
        self.quiet_from_ms = quiet_from_ms


def idle(entry: Entry, now_ms: int) -> bool:
    return entry.quiet_from_ms is not None and now_ms >= entry.quiet_from_ms


# --- admitting and refusing ---------------------------------------------------------------


def test_keys_are_admitted_up_to_the_cap_then_refused() -> None:
    keys: CappedMap[str] = CappedMap(limit(2))
    assert keys.admit("a", lambda: "A", 0) == "A"
    assert keys.admit("b", lambda: "B", 1) == "B"
    assert keys.admit("c", lambda: "C", 2) is None  # full: refused, nothing created
    assert list(keys.items()) == [("a", "A"), ("b", "B")]
    assert keys.refused == 1
    assert keys.bound_ms == 2


def test_pinned_keys_are_held_outside_the_cap_and_never_evicted() -> None:
    keys: CappedMap[Entry] = CappedMap(limit(1), idle=idle)
    keys.pin("global", Entry("global", quiet_from_ms=0))
    assert keys.admit("a", lambda: Entry("a"), 0) is not None
    assert keys.admitted == 1
    assert len(keys) == 2
    assert keys.admit("b", lambda: Entry("b"), 10) is None  # "global" is idle but pinned
    assert "global" in keys


def test_a_full_map_evicts_its_least_recently_used_idle_entry() -> None:
    evicted: list[str] = []
    keys: CappedMap[Entry] = CappedMap(
        limit(3), idle=idle, on_evict=lambda entry: evicted.append(entry.name)
    )
    for name in "abc":
        keys.admit(name, lambda name=name: Entry(name, quiet_from_ms=100), 0)  # type: ignore[misc]
    keys.touch("a")  # recency now: b, c, a
    assert keys.admit("d", lambda: Entry("d"), 50) is None  # nobody idle yet at 50
    assert keys.admit("d", lambda: Entry("d"), 100) is not None
    assert evicted == ["b"]
    assert list(keys) == ["a", "c", "d"]  # iteration stays in insertion order
    assert (keys.evicted, keys.refused) == (1, 1)


def test_eviction_looks_at_a_bounded_number_of_busy_entries() -> None:
    keys: CappedMap[Entry] = CappedMap(limit(EVICTION_SCAN + 1), idle=idle)
    for n in range(EVICTION_SCAN):
        keys.admit(f"busy{n}", lambda: Entry("busy"), 0)
    keys.admit("quiet", lambda: Entry("quiet", quiet_from_ms=0), 0)  # the most recent
    assert keys.admit("new", lambda: Entry("new"), 1) is None  # beyond the scan: refused
    assert "quiet" in keys


def test_sweep_evicts_idle_entries_only_while_full_or_alarmed() -> None:
    keys: CappedMap[Entry] = CappedMap(limit(2), idle=idle)
    keys.admit("a", lambda: Entry("a", quiet_from_ms=10), 0)
    assert keys.sweep(20) == 0  # not full, not alarmed: idle entries stay
    keys.admit("b", lambda: Entry("b"), 0)
    assert keys.sweep(20) == 1  # full: the idle one goes
    assert list(keys) == ["b"]


# --- the alarm: fires once, resolves once ---------------------------------------------------


def test_the_alarm_fires_once_at_the_first_refusal_and_resolves_after_a_quiet_period() -> None:
    keys: CappedMap[str] = CappedMap(limit(1))
    keys.admit("a", lambda: "A", 0)
    assert keys.alarm(0) is None  # full, but nothing refused yet: the cap does not bind
    for n in range(5):
        keys.admit(f"new{n}", lambda: "X", 1_000 + n)
    assert keys.alarm(1_004) is Alarm.FIRE
    assert keys.alarm(1_005) is None  # once
    keys.admit("late", lambda: "X", 2_000)  # refused again while firing: still one alert
    assert keys.alarm(2_000 + RESOLVE_AFTER_MS - 1) is None
    assert keys.alarm(2_000 + RESOLVE_AFTER_MS) is Alarm.RESOLVE
    assert keys.alarm(2_000 + 2 * RESOLVE_AFTER_MS) is None
    keys.admit("again", lambda: "X", 900_000)
    assert keys.alarm(900_000) is Alarm.FIRE  # a new binding: a new alert


def test_an_eviction_binds_the_cap_too() -> None:
    keys: CappedMap[Entry] = CappedMap(limit(1), idle=idle)
    keys.admit("a", lambda: Entry("a", quiet_from_ms=0), 0)
    assert keys.admit("b", lambda: Entry("b"), 5) is not None
    assert keys.alarm(5) is Alarm.FIRE


# --- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_a_cap_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ConfigError, match="max_keys of breakers"):
        KeyLimit(StateKind.BREAKERS, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("worker_max", "partitions", "share"), [(100, 4, 25), (10, 4, 3), (3, 4, 1), (1, 1, 1)]
)
def test_a_partition_gets_an_even_share_rounded_up(
    worker_max: int, partitions: int, share: int
) -> None:
    caps = KeyCaps(breakers=worker_max)
    assert caps.share(StateKind.BREAKERS, partitions, 2) == KeyLimit(
        StateKind.BREAKERS, share, "p2"
    )
    assert caps.whole(StateKind.BREAKERS) == KeyLimit(StateKind.BREAKERS, worker_max)


# --- properties -----------------------------------------------------------------------------

# An operation: ("use", key, ms) uses a key (admitting it if new), ("sweep", _, ms) a tick.
operations = st.lists(
    st.tuples(
        st.sampled_from(["use", "use", "use", "sweep"]),
        st.integers(0, 40),
        st.integers(0, 2_000),
    ),
    max_size=200,
)


def run(max_keys: int, ops: list[tuple[str, int, int]]) -> tuple[list[object], CappedMap[Entry]]:
    """What a map does over `ops` (values idle 100 ms after their last use)."""
    keys: CappedMap[Entry] = CappedMap(limit(max_keys), idle=idle)
    trace: list[object] = []
    for op, number, ms in ops:
        if op == "sweep":
            trace.append(("swept", keys.sweep(ms), keys.alarm(ms)))
            continue
        key = f"k{number}"
        entry = keys.get(key)
        if entry is None:
            entry = keys.admit(key, lambda key=key: Entry(key), ms)  # type: ignore[misc]
        if entry is not None:
            keys.touch(key)
            entry.quiet_from_ms = ms + 100
        trace.append((key, entry is not None, keys.alarm(ms), list(keys)))
        assert keys.admitted <= max_keys
    return trace, keys


@settings(max_examples=100, deadline=None)
@given(max_keys=st.integers(1, 8), ops=operations)
def test_the_map_never_holds_more_than_its_cap(
    max_keys: int, ops: list[tuple[str, int, int]]
) -> None:
    _, keys = run(max_keys, ops)  # `run` checks after every operation
    assert keys.admitted <= max_keys


@settings(max_examples=100, deadline=None)
@given(max_keys=st.integers(1, 8), ops=operations)
def test_the_same_input_in_the_same_order_gives_the_same_map(
    max_keys: int, ops: list[tuple[str, int, int]]
) -> None:
    first, first_map = run(max_keys, ops)
    second, second_map = run(max_keys, ops)
    assert first == second
    assert (first_map.refused, first_map.evicted) == (second_map.refused, second_map.evicted)


@settings(max_examples=100, deadline=None)
@given(max_keys=st.integers(1, 8), ops=operations)
def test_alarms_alternate_fire_and_resolve(max_keys: int, ops: list[tuple[str, int, int]]) -> None:
    trace, _ = run(max_keys, ops)
    alarms = [step[2] for step in trace if step[2] is not None]  # type: ignore[index]
    assert alarms == [Alarm.FIRE, Alarm.RESOLVE] * (len(alarms) // 2) + [Alarm.FIRE] * (
        len(alarms) % 2
    )
