"""The in-process cache of fetched state, kept true by the projection's change notifications.

An entry is the `FetchedState` of one call signature (vendor, tool, scope attributes) and the
hash keys it read. The rules:

* **serve only while subscribed**: a notification missed while the subscription was down would
  leave an entry stale, so `subscribed(False)` empties the cache and turns it off, and each
  (re)subscription starts from empty too (redis-py may reconnect a pub/sub connection by
  itself: a second subscribe confirmation clears as well);
* a **changed hash** drops every entry that read it (a breaker, SLO or dependency node that
  did not exist when read is a key the entry read too, so its creation counts: a
  `dependency:tool:<tool>` hash the cascade writes for the first time evicts the calls to
  that tool);
* a changed **budget hash the cache has never seen** clears everything: it may have joined an
  index set any entry read, and the notification does not say which;
* a fetch that raced a notification is not stored: `begin()` takes a sequence number, and
  `store()` refuses when a key it read (or everything) was invalidated after it;
* **bounds**: at most `max_entries` entries (least recently used goes first), each at most
  `ttl_ms` old, a safety net for what notifications cannot tell (a known budget whose scope a
  policy change moved into other index sets). Only the hashes are cached: time-dependent parts
  (retry_after) are recomputed from `now` at every check.

Not thread-safe by itself: the clients hold one lock around it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from workers.gateway.script import Fetched
from workers.gateway.verdict import FetchedState

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_TTL_MS = 30_000
_MAX_TRACKED_INVALIDATIONS = 10_000
"""Per-key invalidation sequence numbers kept for racing fetches; past it, a clear is cheaper."""


@dataclass(slots=True)
class _Entry:
    fetched: Fetched
    stored_at_ms: int


class StateCache:
    def __init__(
        self,
        budget_prefix: str,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl_ms: int = DEFAULT_TTL_MS,
    ) -> None:
        self.budget_prefix = budget_prefix
        self.max_entries = max_entries
        self.ttl_ms = ttl_ms
        self.active = False
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._readers: dict[str, set[Hashable]] = {}
        self._known_budgets: set[str] = set()
        self._sequence = 0
        self._cleared_at = 0
        self._invalidated_at: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, signature: Hashable, now_ms: int) -> FetchedState | None:
        entry = self._entries.get(signature) if self.active else None
        if entry is None:
            return None
        if now_ms - entry.stored_at_ms > self.ttl_ms:
            self._drop(signature)
            return None
        self._entries.move_to_end(signature)
        return entry.fetched.state

    def begin(self) -> int:
        """The sequence number a fetch starts at (give it to `store`)."""
        return self._sequence

    def store(self, signature: Hashable, fetched: Fetched, started: int, now_ms: int) -> bool:
        """Keep `fetched` unless something it read changed since `started`."""
        if not self.active or self.max_entries <= 0 or self._cleared_at > started:
            return False
        if any(self._invalidated_at.get(key, -1) > started for key in fetched.read_keys):
            return False
        self._drop(signature)
        self._entries[signature] = _Entry(fetched, now_ms)
        for key in fetched.read_keys:
            self._readers.setdefault(key, set()).add(signature)
        self._known_budgets |= fetched.budget_keys
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))
        return True

    def changed(self, hash_key: str) -> None:
        """A change notification: `hash_key` was written or deleted."""
        self._sequence += 1
        if hash_key.startswith(self.budget_prefix) and hash_key not in self._known_budgets:
            self.clear()
            return
        if len(self._invalidated_at) >= _MAX_TRACKED_INVALIDATIONS:
            self.clear()
            return
        self._invalidated_at[hash_key] = self._sequence
        for signature in list(self._readers.get(hash_key, ())):
            self._drop(signature)

    def subscribed(self, active: bool) -> None:
        """The subscription came up (again) or went down: either way, start from empty."""
        self.clear()
        self.active = active

    def clear(self) -> None:
        self._sequence += 1
        self._cleared_at = self._sequence
        self._entries.clear()
        self._readers.clear()
        self._known_budgets.clear()
        self._invalidated_at.clear()

    def _drop(self, signature: Hashable) -> None:
        entry = self._entries.pop(signature, None)
        if entry is None:
            return
        for key in entry.fetched.read_keys:
            readers = self._readers.get(key)
            if readers is not None:
                readers.discard(signature)
                if not readers:
                    del self._readers[key]
