"""Bounded-memory (good, valid) counters over several event-time windows at once (DESIGN §6).

`SloWindows` keeps, for each window length `W` (a burn-rate tier's long and short windows, and
the rolling period), a ring of `BUCKETS` = 60 buckets of width `b = W / 60` with a running sum
of good and of valid counts: a `workers.kernels.bucket_ring.BucketRing` with Resilience4j's
edge (`WindowSums`), all sliding with one event-time clock. Adding a count is O(1) when it
falls in the head buckets (the usual case) and O(number of windows) otherwise; reading a
window's sums is O(1); advancing event time subtracts the buckets that leave a window
(subtract-on-evict), never re-sums.

Exact span. Bucket `k` of a window holds event times `[k * b, (k + 1) * b)` (aligned to the
epoch). At event time `now` the window counts exactly the events with

    (now // b - 59) * b  <=  ts  <=  now

that is, the head bucket (partly elapsed) and the 59 whole buckets before it. The covered span
`now - start` is `59 * b + now mod b`, so between `W - W/60` and `W - 1 ms`: an event younger
than `W - W/60` is always counted, an event `W` or more old never is. For the Workbook's
windows that is 5 s of 5 min, 1 min of 1 h, 24 min of 1 d, and 12 h of a 30 d period. The
error is on the side of counting slightly less history (an alert's window is at most 1/60
shorter than nominal; resolution comes up to 1/60 earlier).

A window's sums change only when a non-empty bucket leaves it, at the instant
`(k + 60) * b` for bucket `k`. `next_change_ms` gives the earliest such instant, so that a
caller can stop at every point where a decision could change (and nowhere else).

Counts are added with the time they happened (`ts_ms <= now_ms`): into every window whose
span still holds them. A count no window holds (older than the longest ring) is refused
(`add` returns False) and not counted anywhere: the caller reports it as late.

Head accumulator. Counts at or after `head_lo_ms` (the latest head-bucket start over all
windows) lie in the head bucket of every window, so `add` only adds them to `pending_good` /
`pending_valid`, which every window's sum includes; they are moved into the rings when time
leaves the head buckets (`roll`). So the hot path is two integer additions whatever the number
of windows.

Memory is constant per instance: two `array('q')` of `60 x windows` 8-byte slots, shared by
the windows' rings (8 windows: 7,680 bytes of buckets), plus a ring object per window (about
230 bytes). Counts are 64-bit: at most 9.2e18 per bucket.

Pure: time comes only with the calls; no clock, no I/O.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Final

from workers.errors import ConfigError
from workers.kernels.bucket_ring import BucketRing

BUCKETS: Final = 60
"""Buckets per window (the head included)."""
NEVER: Final = 1 << 62
"""A time after every event time (no change pending)."""
_ZEROS: Final = array("q", bytes(8 * BUCKETS))


class WindowSums(BucketRing):
    """One window's (good, valid) counts per bucket and their running sums. The counts live in
    the arrays `SloWindows` shares between its windows, from slot `base` on; `SloWindows` adds
    to every window at once (one loop: a count touches all of them)."""

    __slots__ = ("base", "expiry_ms", "good", "good_sum", "valid", "valid_sum")

    def __init__(self, window_ms: int, good: array[int], valid: array[int], base: int) -> None:
        super().__init__(window_ms, window_ms // BUCKETS)
        self.good = good
        self.valid = valid
        self.base = base
        self.good_sum = 0
        self.valid_sum = 0
        self.expiry_ms = NEVER
        """When its oldest non-empty bucket leaves it (NEVER when empty)."""

    def first_expiry_ms(self) -> int:
        """When the oldest non-empty bucket leaves (NEVER when all are empty)."""
        if self.valid_sum:
            valid, base, slots = self.valid, self.base, self.slots
            for bucket in self.counted():
                if valid[base + bucket % slots]:
                    return self.leaves_at_ms(bucket)
        return NEVER

    def _evict(self, slot: int) -> None:
        index = self.base + slot
        self.good_sum -= self.good[index]
        self.valid_sum -= self.valid[index]
        self.good[index] = self.valid[index] = 0

    def _evict_all(self) -> None:
        base = self.base
        self.good[base : base + BUCKETS] = _ZEROS
        self.valid[base : base + BUCKETS] = _ZEROS
        self.good_sum = self.valid_sum = 0
        self.expiry_ms = NEVER


class SloWindows:
    """(good, valid) sums over each of `windows_ms`, all sliding with one event-time clock.

    Mutable and updated in place. A window's `WindowSums` (in `rings`) excludes the head
    accumulator: read a window with `good(i)` / `valid(i)` (or add `pending_good` /
    `pending_valid`).
    """

    __slots__ = (
        "_good",
        "_valid",
        "head_hi_ms",
        "head_lo_ms",
        "now_ms",
        "pending_expiry_ms",
        "pending_good",
        "pending_valid",
        "rings",
    )

    def __init__(self, windows_ms: Sequence[int], start_ms: int) -> None:
        _check_windows(windows_ms)
        size = BUCKETS * len(windows_ms)
        self._good = array("q", bytes(8 * size))
        self._valid = array("q", bytes(8 * size))
        self.rings = tuple(
            WindowSums(window, self._good, self._valid, i * BUCKETS)
            for i, window in enumerate(windows_ms)
        )
        for ring in self.rings:
            ring.advance(start_ms)
        self.now_ms = start_ms
        self.pending_good = 0
        self.pending_valid = 0
        self.head_lo_ms = 0
        """Latest start of a head bucket: counts at or after it are in every head bucket."""
        self.head_hi_ms = 0
        """Earliest end of a head bucket: the next time a head moves."""
        self.pending_expiry_ms = 0
        """When the head accumulator's counts start leaving a window."""
        self._set_bounds()

    # --- reading ---

    @property
    def windows_ms(self) -> tuple[int, ...]:
        return tuple(ring.window_ms for ring in self.rings)

    @property
    def bucket_ms(self) -> tuple[int, ...]:
        return tuple(ring.bucket_ms for ring in self.rings)

    def good(self, index: int) -> int:
        return self.rings[index].good_sum + self.pending_good

    def valid(self, index: int) -> int:
        return self.rings[index].valid_sum + self.pending_valid

    def window_start_ms(self, index: int) -> int:
        """The oldest event time window `index` counts now (see the module docstring)."""
        ring = self.rings[index]
        return ring.oldest * ring.bucket_ms

    def holds(self, ts_ms: int) -> bool:
        """Whether some window would count an event at `ts_ms` (<= now)."""
        return any(ring.in_window(ts_ms) for ring in self.rings)

    def next_change_ms(self) -> int:
        """The earliest event time after now at which some window's sums fall (a non-empty
        bucket leaves it); NEVER when every window is empty."""
        earliest = NEVER
        for ring in self.rings:
            if ring.expiry_ms < earliest:
                earliest = ring.expiry_ms
        if self.pending_valid and self.pending_expiry_ms < earliest:
            return self.pending_expiry_ms
        return earliest

    # --- updating ---

    def add(self, ts_ms: int, good: int, valid: int) -> bool:
        """Count `good` of `valid` events at `ts_ms` (<= now, 0 <= good <= valid) in every
        window that holds it; False (nothing counted) when none does."""
        if ts_ms >= self.head_lo_ms:
            if ts_ms > self.now_ms:
                raise ValueError(f"add at {ts_ms} is after now ({self.now_ms}): roll first")
            self.pending_good += good
            self.pending_valid += valid
            return True
        return self._add_to_rings(ts_ms, good, valid)

    def roll(self, ts_ms: int) -> bool:
        """Move event time to `ts_ms` (no-op if not later); True when some window's sums fell.

        Correct for any jump; a caller that must decide at every change calls it at each
        `next_change_ms` in turn."""
        if ts_ms < self.head_hi_ms:
            if ts_ms > self.now_ms:
                self.now_ms = ts_ms
            return False
        if self.pending_valid:  # the head accumulator goes into every window's head bucket
            self._add_to_rings(self.now_ms, self.pending_good, self.pending_valid, heads=True)
            self.pending_good = 0
            self.pending_valid = 0
        self.now_ms = ts_ms
        dropped = False
        for ring in self.rings:
            if ts_ms < ring.turn_ms:
                continue  # its head bucket stays: nothing leaves
            falls = ring.expiry_ms <= ts_ms  # a non-empty bucket leaves: the sums fall
            ring.advance(ts_ms)  # evicts what left
            if falls:
                ring.expiry_ms = ring.first_expiry_ms()
                dropped = True
        self._set_bounds()
        return dropped

    def _add_to_rings(self, ts_ms: int, good: int, valid: int, *, heads: bool = False) -> bool:
        """Count at `ts_ms` (not after now) in every window that holds it; whether one did.
        `heads`: `ts_ms` is in every head bucket (the accumulator's counts). The fold's `add`
        for all the rings at once, written out: a call per window would cost more than the
        counting."""
        goods, valids = self._good, self._valid
        held = False
        for ring in self.rings:
            bucket = ring.head if heads else ts_ms // ring.bucket_ms
            if bucket < ring.oldest:
                continue
            held = True
            index = ring.base + bucket % BUCKETS
            goods[index] += good
            valids[index] += valid
            ring.good_sum += good
            ring.valid_sum += valid
            leaves = (bucket + BUCKETS) * ring.bucket_ms  # when the bucket leaves the ring
            if valid and leaves < ring.expiry_ms:
                ring.expiry_ms = leaves
        return held

    def _set_bounds(self) -> None:
        lo = -NEVER
        hi = leaves = NEVER
        for ring in self.rings:
            start = ring.head * ring.bucket_ms
            if start > lo:
                lo = start
            if ring.turn_ms < hi:
                hi = ring.turn_ms
            if start + ring.window_ms < leaves:  # when the head bucket leaves
                leaves = start + ring.window_ms
        self.head_lo_ms = lo
        self.head_hi_ms = hi
        self.pending_expiry_ms = leaves


def _check_windows(windows_ms: Sequence[int]) -> None:
    if not windows_ms:
        raise ConfigError("SloWindows needs at least one window")
    if len(set(windows_ms)) != len(windows_ms):
        raise ConfigError(f"SloWindows windows_ms must be distinct, not {list(windows_ms)}")
    for window in windows_ms:
        if (
            isinstance(window, bool)
            or not isinstance(window, int)
            or window < BUCKETS
            or window % BUCKETS
        ):
            raise ConfigError(
                f"SLO window must be a whole number of {BUCKETS}-ms units (its {BUCKETS} "
                f"buckets are W / {BUCKETS} wide), not {window!r}"
            )
