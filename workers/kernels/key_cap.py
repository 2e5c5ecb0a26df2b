"""A map of at most `max_keys` producer-chosen keys, deciding only by input order (pure).

Vendor, tool, user and team are chosen by producers, so state keyed by them grows with
whatever they send (issue 11: 200k new tool names took 5.8 GB in replay). The breaker, budget
and SLO engines keep such state in a `CappedMap`:

- A key the producer chose is added with `admit`. Below the cap it is admitted. At the cap,
  a map given an `idle` test evicts the least recently used idle entry (among the
  `EVICTION_SCAN` least recently used) to make room; failing that, or without an `idle` test,
  the key is refused (`admit` returns None) and the engine counts its traffic in an overflow
  state instead.
- Keys whose number the policy bounds (a budget not split by a producer field, an SLO without
  `group_by`, the overflow states themselves) are `pin`ned: held, not counted, never evicted.
- Recency is input order (`touch` on every use of an admitted key); `idle` is given the
  event time the engine has reached. Nothing depends on the wall clock, on memory or on hash
  seeds: the same input in the same order admits, refuses and evicts the same keys, so
  replay decides as live did.
- The cap *binds* when a key is refused or an entry evicted. `alarm` turns that into the
  `cardinality_limit` alert's lifecycle: FIRE once at the first binding, RESOLVE once no
  key has been refused or evicted for `RESOLVE_AFTER_MS` of event time, and FIRE again only
  after a new binding.

Iteration is in insertion order (the order engines move their states in at a clock tick),
not in recency order.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any, NamedTuple, TypeVar

from workers.kernels.checks import check_int

V = TypeVar("V")

EVICTION_SCAN = 16
"""How many of the least recently used entries `admit` and `sweep` look at for an idle one:
a bounded cost per call however many busy entries the map holds."""

RESOLVE_AFTER_MS = 300_000
"""A firing cardinality alert resolves after this much event time without a refused or
evicted key (5 minutes)."""


class StateKind(StrEnum):
    """The kinds of keyed state a worker caps (the `state` label of alerts and metrics)."""

    BREAKERS = "breakers"
    BUDGETS = "budgets"
    SLOS = "slos"
    DEDUP = "dedup"


@dataclass(frozen=True, slots=True)
class KeyLimit:
    """The cap of one map: at most `max_keys` producer-chosen keys of `kind`. `scope` names
    which share of a worker's state the map holds ("p3": input partition 3's breakers; ""
    for the whole stream, as in `replay --input`); it tells alerts of different maps apart."""

    kind: StateKind
    max_keys: int
    scope: str = ""

    def __post_init__(self) -> None:
        check_int("max_keys of", str(self.kind), self.max_keys, 1)

    @classmethod
    def share(
        cls, kind: StateKind, worker_max_keys: int, partitions: int, partition: int
    ) -> KeyLimit:
        """The cap of one partition's map when a worker may hold `worker_max_keys` keys of
        `kind` over `partitions` partitions: an even share, rounded up (at least 1)."""
        return cls(kind, max(1, math.ceil(worker_max_keys / partitions)), f"p{partition}")


# The caps of a worker built without settings (pure engines in tests and benchmarks): the
# production mode's defaults (workers.settings.MODE_DEFAULTS).
DEFAULT_MAX_BREAKER_KEYS = 100_000
DEFAULT_MAX_BUDGET_KEYS = 300_000
DEFAULT_MAX_SLO_KEYS = 50_000


@dataclass(frozen=True, slots=True)
class KeyCaps:
    """How many keys of each kind one worker may hold (`Settings.key_caps`)."""

    breakers: int = DEFAULT_MAX_BREAKER_KEYS
    budgets: int = DEFAULT_MAX_BUDGET_KEYS
    slos: int = DEFAULT_MAX_SLO_KEYS

    def whole(self, kind: StateKind) -> KeyLimit:
        """The cap of a map holding all of a worker's keys of `kind` (`replay --input`)."""
        return KeyLimit(kind, self._max(kind))

    def share(self, kind: StateKind, partitions: int, partition: int) -> KeyLimit:
        """The cap of partition `partition`'s map (see `KeyLimit.share`)."""
        return KeyLimit.share(kind, self._max(kind), partitions, partition)

    def _max(self, kind: StateKind) -> int:
        caps = {
            StateKind.BREAKERS: self.breakers,
            StateKind.BUDGETS: self.budgets,
            StateKind.SLOS: self.slos,
        }
        return caps[kind]


class KeyCounts(NamedTuple):
    """What maps of one kind hold and turned away (for metrics)."""

    held: int
    refused: int
    evicted: int

    @classmethod
    def of(cls, maps: Iterable[CappedMap[Any]], *, extra_held: int = 0) -> KeyCounts:
        """The sums over `maps` (`extra_held`: states held beside them, e.g. overflow)."""
        held, refused, evicted = extra_held, 0, 0
        for keys in maps:
            held += len(keys)
            refused += keys.refused
            evicted += keys.evicted
        return cls(held, refused, evicted)


class Alarm(Enum):
    FIRE = "fire"
    RESOLVE = "resolve"


def _untracked(key: str) -> None:
    """`CappedMap.touch` of a map that never evicts: recency does not matter."""


class CappedMap(dict[str, V]):
    """str -> V holding at most `limit.max_keys` admitted keys (plus pinned ones); see the
    module docstring. Reads are the dict's own, so the engines' per-event lookups are C calls;
    writes go through `admit`, `pin` and `sweep` only."""

    __slots__ = (
        "_bound_ms",
        "_evict",
        "_firing",
        "_idle",
        "_owed",
        "_pinned",
        "_recent",
        "evicted",
        "limit",
        "refused",
        "touch",
    )

    def __init__(
        self,
        limit: KeyLimit,
        *,
        idle: Callable[[V, int], bool] | None = None,
        on_evict: Callable[[V], None] | None = None,
    ) -> None:
        """`idle(value, now_ms)`: whether evicting the entry now changes no decision (only
        then may `admit` and `sweep` evict it); `on_evict(value)` hears of each eviction."""
        super().__init__()
        self.limit = limit
        self._pinned: set[str] = set()
        # Admitted keys, least recently used first (only when entries can be evicted; a map
        # that only refuses needs no recency).
        self._recent: OrderedDict[str, None] | None = None if idle is None else OrderedDict()
        self._idle = idle
        self._evict = on_evict
        self.touch: Callable[[str], None] = (
            _untracked if self._recent is None else self._recent.move_to_end
        )
        """`touch(key)`: the admitted `key` was used now (its recency, for eviction). A
        map's own bound method, so the engines' hot path pays one C call; KeyError for a key
        not admitted (a pinned one included): only a map that never evicts ignores it."""
        self._bound_ms: int | None = None  # event time of the latest refusal or eviction
        self._owed = False  # bound since the alarm last fired
        self._firing = False
        self.refused = 0
        """Keys turned away so far (each time a key not held had to go to the overflow)."""
        self.evicted = 0

    def __getstate__(self) -> dict[str, Any]:
        """Its slots for a snapshot (`shell.snapshot`; the entries go as a dict's items):
        `touch`, a bound method, is derived."""
        return {name: getattr(self, name) for name in self.__slots__ if name != "touch"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
        recent = self._recent
        self.touch = _untracked if recent is None else recent.move_to_end

    @property
    def admitted(self) -> int:
        """Entries counting against the cap (every entry but the pinned ones)."""
        return len(self) - len(self._pinned)

    @property
    def full(self) -> bool:
        return self.admitted >= self.limit.max_keys

    @property
    def firing(self) -> bool:
        return self._firing

    # --- writing ---

    def admit(self, key: str, value_of: Callable[[], V], at_ms: int) -> V | None:
        """The entry of a key not held yet, created by `value_of()` if the cap allows (by
        evicting an idle entry when full), else None: the key is refused."""
        if self.full and not self._evict_one(at_ms):
            self.refused += 1
            self._bind(at_ms)
            return None
        value = self[key] = value_of()
        if self._recent is not None:
            self._recent[key] = None
        return value

    def refuse(self, at_ms: int) -> None:
        """A caller that decides admission itself (`SloEngine`: by key order within a second)
        turned a key away at `at_ms`."""
        self.refused += 1
        self._bind(at_ms)

    def pin(self, key: str, value: V) -> V:
        """Hold `key` outside the cap (its number is bounded by the policy)."""
        self[key] = value
        self._pinned.add(key)
        return value

    def sweep(self, now_ms: int) -> int:
        """While the map is full or its alarm fires: evict the idle entries among the least
        recently used (stopping after `EVICTION_SCAN` busy ones), so a map whose keys went
        quiet shrinks and its alarm can resolve; how many were evicted."""
        recent, idle = self._recent, self._idle
        if recent is None or idle is None or not (self._firing or self.full):
            return 0
        victims: list[str] = []
        busy = 0
        for key in recent:
            if idle(self[key], now_ms):
                victims.append(key)
            else:
                busy += 1
                if busy >= EVICTION_SCAN:
                    break
        for key in victims:
            self._remove(key)
        return len(victims)

    def alarm(self, now_ms: int) -> Alarm | None:
        """The cardinality alert's next step as of event time `now_ms`, if any (see the module
        docstring); call it after `admit`/`refuse` and at clock ticks."""
        if self._owed and not self._firing:
            self._owed = False
            self._firing = True
            return Alarm.FIRE
        bound = self._bound_ms
        if self._firing and bound is not None and now_ms - bound >= RESOLVE_AFTER_MS:
            self._firing = False
            return Alarm.RESOLVE
        return None

    @property
    def bound_ms(self) -> int | None:
        """Event time of the latest refusal or eviction."""
        return self._bound_ms

    def _bind(self, at_ms: int) -> None:
        if self._bound_ms is None or at_ms > self._bound_ms:
            self._bound_ms = at_ms
        self._owed = not self._firing

    def _evict_one(self, now_ms: int) -> bool:
        recent, idle = self._recent, self._idle
        if recent is None or idle is None:
            return False
        for scanned, key in enumerate(recent):
            if scanned >= EVICTION_SCAN:
                return False
            if idle(self[key], now_ms):
                self._remove(key)
                self._bind(now_ms)
                return True
        return False

    def _remove(self, key: str) -> None:
        value = self.pop(key)
        assert self._recent is not None
        del self._recent[key]
        self.evicted += 1
        if self._evict is not None:
            self._evict(value)
