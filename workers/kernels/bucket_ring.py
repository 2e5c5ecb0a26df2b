"""A ring of event-time buckets: the one sliding window every kernel builds on (issue 12).

Resilience4j's SlidingTimeWindowMetrics, by event time: `window_ms` of event time is cut into
epoch-aligned buckets of `bucket_ms` (bucket `k` holds the event times
`[k * bucket_ms, (k + 1) * bucket_ms)`), the ring keeps one slot per bucket that can be in the
window at once and running totals beside them; recording adds to a bucket and the totals, and a
bucket that leaves the window is subtracted from the totals (subtract-on-evict), so the totals
are always those of the window and reading them is O(1).

Time. `now` is the newest event time seen, by a record or by `advance` (a clock event); it never
goes backwards. Nothing reads a clock. Before the first event time the ring is empty and takes
any record.

Edge convention. At `now` the exact window is the last `window_ms` of event time,
`(now - window_ms, now]`; a bucket is counted while it lies in it as its `Edge` says. With
W = `window_ms`, b = `bucket_ms` and the age of an event `now - ts`:

| `Edge`           | bucket k counts while    | it leaves at    | counts every age | never an age |
|------------------|--------------------------|-----------------|------------------|--------------|
| `RESILIENCE4J`   | its first ms is in it    | k*b + W         | <= W - b         | >= W         |
| `OVERLAP`        | its last ms is in it     | (k+1)*b - 1 + W | < W              | >= W + b - 1 |
| `OVERLAP_CLOSED` | its last ms is <= W old  | (k+1)*b + W     | <= W             | >= W + b     |

`RESILIENCE4J` is the convention: Resilience4j's window is the bucket holding `now` and the
W/b - 1 before it (`W/b` slots). Breaker time windows, SLO burn-rate windows and window
objectives use it. It errs short: an event between W - b and W old may no longer count,
nothing W or older ever does, which suits rates and alerts (no decision on stale history).

Why not everywhere: a limit must never let through more than it allows over any W, so the two
limits keep every event of the last W and err long instead (`W/b + 1` slots). A rate limit
(and rapid consumption) counts exactly the buckets overlapping the window (`OVERLAP`); a
rolling budget keeps one millisecond more (`OVERLAP_CLOSED`, the edge it had before the
windows were unified: its tests pin it, e.g. a spend exactly W old still counts). Each kernel
names its edge where it builds its ring. With 1 ms buckets `OVERLAP` and `RESILIENCE4J` are
the same exact window.

Late records. A record older than `now` goes into its own bucket while that bucket is counted;
once the bucket has left, `place` refuses it (-1) and changes nothing: the kernel counts and
audits it. Further lateness rules (an allowed lateness) are the kernel's.

The fold. A kernel's window subclasses `BucketRing` and supplies the aggregation, as
Resilience4j's partial/total aggregations or Quix Streams' reducers (initialize / agg / result):
- agg: its own typed `add` / `record`, which asks `place(ts_ms)` for the slot (moving time
  first when the record is newer) and adds to that slot and to the running totals;
- subtract-on-evict and initialize: `_evict(slot)` subtracts one slot from the totals and
  empties it, `_evict_all()` empties everything at once (a jump of a whole window or more);
  the ring calls them as buckets leave, each leaving bucket once;
- result: its reading methods, from the running totals.

Cost: `place` and `advance` are O(1) while time stays in the current bucket (two comparisons);
crossing into a later bucket evicts each bucket that left once (O(1) amortised per bucket of
event time, at most one pass over the ring, `_evict_all` for a jump of a whole window).

`IntSlots` is the usual fold storage: integers per slot with their running total, in a 64-bit
array that widens instead of wrapping.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Final, Self

from workers.kernels.checks import check_whole_buckets

NOT_STARTED: Final = -(1 << 62)
"""`now` before the first event time: earlier than every event time."""
_AFTER_ALL: Final = 1 << 62
"""`head` and `oldest` before the first event time: after every bucket index, so the first
move evicts nothing."""


class Edge(Enum):
    """Which buckets a window counts at its edge (the table in the module docstring)."""

    RESILIENCE4J = "resilience4j"
    OVERLAP = "overlap"
    OVERLAP_CLOSED = "overlap_closed"

    def overhang_ms(self, bucket_ms: int) -> int:
        """How long after `start + window_ms` a bucket leaves the window (0, b - 1 or b)."""
        if self is Edge.RESILIENCE4J:
            return 0
        return bucket_ms - 1 if self is Edge.OVERLAP else bucket_ms


_SLOT_NAMES: dict[type, tuple[str, ...]] = {}


def _slot_names(cls: type) -> tuple[str, ...]:
    """Every slot of `cls` and its bases (what `copy` and `==` go through)."""
    known = _SLOT_NAMES.get(cls)
    if known is not None:
        return known
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        slots = klass.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    _SLOT_NAMES[cls] = known = tuple(names)
    return known


class BucketRing:
    """The clock and the bucket arithmetic of a sliding event-time window; subclasses are the
    fold (module docstring). Mutable, updated in place; `copy()` gives an independent one."""

    __slots__ = (
        "_head_slot",
        "_lag",
        "_reach_ms",
        "bucket_ms",
        "buckets",
        "edge",
        "head",
        "now_ms",
        "oldest",
        "slots",
        "turn_ms",
        "window_ms",
    )

    COPIED: ClassVar[frozenset[str]] = frozenset()
    """The subclass's mutable slots (lists, arrays, objects with `copy()`) that `copy` copies."""

    def __init__(self, window_ms: int, bucket_ms: int, edge: Edge = Edge.RESILIENCE4J) -> None:
        self.buckets = check_whole_buckets(
            type(self).__name__, "window_ms", window_ms, "bucket_ms", bucket_ms
        )
        overhang = edge.overhang_ms(bucket_ms)
        self.window_ms = window_ms
        self.bucket_ms = bucket_ms
        self.edge = edge
        self.slots = self.buckets + 1 if overhang else self.buckets
        """Buckets that can be counted at once: the ring's size."""
        self.head = _AFTER_ALL
        """Index of the bucket holding `now` (valid once started)."""
        self.oldest = _AFTER_ALL
        """Index of the oldest bucket counted at `now` (valid once started)."""
        self._head_slot = 0
        self._reach_ms = window_ms + overhang if overhang else window_ms  # (shares the int)
        self._lag = -1 if edge is Edge.OVERLAP and overhang else self.slots - 1
        """`head - oldest` when it is constant (-1: it is not, the oldest bucket leaves before
        the head moves on)."""
        self.now_ms = NOT_STARTED
        """The newest event time seen; NOT_STARTED before any (`watermark_ms` says None)."""
        self.turn_ms = NOT_STARTED
        """When the head or the oldest bucket changes next: before it, time moves by one
        assignment and nothing leaves (a caller driving several rings can skip those whose
        `turn_ms` is later than the new time)."""

    # --- reading ---

    @property
    def watermark_ms(self) -> int | None:
        """`now`: the newest event time seen (records and `advance`); None before any."""
        return None if self.now_ms == NOT_STARTED else self.now_ms

    @property
    def window_start_ms(self) -> int | None:
        """Start of the oldest bucket counted: events from here on count; None before any."""
        return None if self.now_ms == NOT_STARTED else self.oldest * self.bucket_ms

    def in_window(self, ts_ms: int) -> bool:
        """Whether a record at `ts_ms` would be counted now (its bucket has not left)."""
        return self.now_ms == NOT_STARTED or ts_ms // self.bucket_ms >= self.oldest

    def leaves_at_ms(self, index: int) -> int:
        """The event time at which bucket `index` leaves the window (the table's column)."""
        return index * self.bucket_ms + self._reach_ms

    def counted(self) -> range:
        """The indexes of the buckets counted now, oldest first (empty before any time)."""
        if self.now_ms == NOT_STARTED:
            return range(0)
        return range(self.oldest, self.head + 1)

    # --- time ---

    def advance(self, ts_ms: int) -> None:
        """Move `now` to `ts_ms` (no-op unless later), evicting the buckets that leave, each
        once. Call it on clock events, so that a quiet key's window still empties."""
        if ts_ms <= self.now_ms:
            return
        if ts_ms < self.turn_ms:  # still in the head bucket, and the oldest stays
            self.now_ms = ts_ms
            return
        bucket_ms = self.bucket_ms
        head = ts_ms // bucket_ms
        slots = self.slots
        lag = self._lag
        if lag < 0:
            self._slide_overlap(ts_ms, head)
        else:
            # The oldest bucket moves with the head, so the buckets leaving are exactly those
            # whose slots the new ones take: the slots of head buckets passed (none before the
            # first time: `head` starts after every index).
            passed = self.head
            if head - passed >= slots:
                self._evict_all()
            else:
                for index in range(passed + 1, head + 1):
                    self._evict(index % slots)
            self.oldest = head - lag
            self.turn_ms = (head + 1) * bucket_ms
        self.head = head
        self.now_ms = ts_ms
        self._head_slot = head % slots

    def _slide_overlap(self, ts_ms: int, head: int) -> None:
        """`advance`'s eviction under the OVERLAP edge: the oldest bucket leaves at its last
        millisecond + W, which may come before the head moves on."""
        bucket_ms = self.bucket_ms
        oldest = (ts_ms - self._reach_ms) // bucket_ms + 1
        left = self.oldest
        if oldest > left:  # (never before the first time: `oldest` starts after every index)
            # Only the buckets up to the old head can hold anything.
            stop = oldest if oldest <= self.head else self.head + 1
            slots = self.slots
            if stop - left >= slots:
                self._evict_all()
            else:
                for index in range(left, stop):
                    self._evict(index % slots)
        self.oldest = oldest
        turn = (head + 1) * bucket_ms
        leaves = oldest * bucket_ms + self._reach_ms
        self.turn_ms = turn if turn < leaves else leaves

    def place(self, ts_ms: int) -> int:
        """The slot of the bucket holding `ts_ms`, moving `now` to it first when it is later
        (`advance`); -1, changing nothing, when that bucket has already left the window (late).
        The hot path: one call per record, two comparisons while time stays in the head
        bucket."""
        if ts_ms <= self.now_ms:
            index = ts_ms // self.bucket_ms
            return -1 if index < self.oldest else index % self.slots
        if ts_ms < self.turn_ms:
            self.now_ms = ts_ms
        else:
            self.advance(ts_ms)
        return self._head_slot

    # --- the fold's part ---

    def _evict(self, slot: int) -> None:
        """Subtract `slot` from the running totals and empty it."""
        raise NotImplementedError

    def _evict_all(self) -> None:
        """Empty every slot and zero the running totals."""
        raise NotImplementedError

    # --- values ---

    def copy(self) -> Self:
        """An independent ring: the slots named in `COPIED` are copied, the rest shared."""
        cls = type(self)
        clone = cls.__new__(cls)
        copied = cls.COPIED
        for name in _slot_names(cls):
            value = getattr(self, name)
            if name in copied and value is not None:
                value = value[:] if isinstance(value, list | array) else value.copy()
            setattr(clone, name, value)
        return clone

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _slot_names(type(self)))

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(window_ms={self.window_ms}, bucket_ms={self.bucket_ms}, "
            f"edge={self.edge.name}, watermark_ms={self.watermark_ms})"
        )


@dataclass(slots=True)
class IntSlots:
    """Per-slot integers with their running total; array('q') until a value does not fit."""

    slots: array[int] | list[int]
    total: int = 0

    @classmethod
    def zeros(cls, n: int) -> IntSlots:
        return cls(array("q", bytes(8 * n)))

    def put(self, slot: int, value: int) -> None:
        """Replace the value in `slot` (a count window's ring)."""
        self.total += value - self.slots[slot]
        try:
            self.slots[slot] = value
        except OverflowError:
            self.slots = list(self.slots)
            self.slots[slot] = value

    def add(self, slot: int, value: int) -> None:
        """Add to `slot` (a time window's bucket)."""
        self.total += value
        try:
            self.slots[slot] += value
        except OverflowError:
            self.slots = list(self.slots)
            self.slots[slot] += value

    def clear(self, slot: int) -> None:
        self.total -= self.slots[slot]
        self.slots[slot] = 0

    def clear_all(self) -> None:
        self.slots = array("q", bytes(8 * len(self.slots)))
        self.total = 0

    def scale_by(self, factor: int) -> None:
        self.slots = [value * factor for value in self.slots]
        self.total *= factor

    def copy(self) -> IntSlots:
        return IntSlots(self.slots[:], self.total)
