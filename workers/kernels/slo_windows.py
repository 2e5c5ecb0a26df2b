"""Bounded-memory (good, valid) counters over several event-time windows at once (DESIGN §6).

`SloWindows` keeps, for each window length `W` (a burn-rate tier's long and short windows, and
the rolling period), a ring of `BUCKETS` = 60 buckets of width `b = W / 60` with a running sum
of good and of valid counts. Adding a count is O(1) when it falls in the head buckets (the
usual case) and O(number of windows) otherwise; reading a window's sums is O(1); advancing
event time subtracts the buckets that leave a window (subtract-on-evict), never re-sums.

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

Memory is constant per instance: two `array('q')` of `60 x windows` 8-byte slots plus a few
small lists (8 windows: 7,680 bytes of buckets). Counts are 64-bit: at most 9.2e18 per bucket.

Pure: time comes only with the calls; no clock, no I/O.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Final

from workers.errors import ConfigError

BUCKETS: Final = 60
"""Buckets per window (the head included)."""
NEVER: Final = 1 << 62
"""A time after every event time (no change pending)."""
_ZEROS: Final = array("q", bytes(8 * BUCKETS))


class SloWindows:
    """(good, valid) sums over each of `windows_ms`, all sliding with one event-time clock.

    Mutable and updated in place. `good_sums` / `valid_sums` exclude the head accumulator:
    read a window with `good(i)` / `valid(i)` (or add `pending_good` / `pending_valid`).
    """

    __slots__ = (
        "_expiry",
        "_good",
        "_heads",
        "_valid",
        "bucket_ms",
        "good_sums",
        "head_hi_ms",
        "head_lo_ms",
        "now_ms",
        "pending_expiry_ms",
        "pending_good",
        "pending_valid",
        "valid_sums",
        "windows_ms",
    )

    def __init__(self, windows_ms: Sequence[int], start_ms: int) -> None:
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
        count = len(windows_ms)
        self.windows_ms: tuple[int, ...] = tuple(windows_ms)
        self.bucket_ms: tuple[int, ...] = tuple(w // BUCKETS for w in windows_ms)
        self.now_ms = start_ms
        self.good_sums = [0] * count
        self.valid_sums = [0] * count
        self.pending_good = 0
        self.pending_valid = 0
        self._good = array("q", bytes(8 * BUCKETS * count))
        self._valid = array("q", bytes(8 * BUCKETS * count))
        self._heads = [start_ms // b for b in self.bucket_ms]
        self._expiry = [NEVER] * count
        """Per window: when its oldest non-empty bucket leaves it (NEVER when empty)."""
        self.head_lo_ms = 0
        """Latest start of a head bucket: counts at or after it are in every head bucket."""
        self.head_hi_ms = 0
        """Earliest end of a head bucket: the next time a head moves."""
        self.pending_expiry_ms = 0
        """When the head accumulator's counts start leaving a window."""
        self._set_bounds()

    # --- reading ---

    def good(self, index: int) -> int:
        return self.good_sums[index] + self.pending_good

    def valid(self, index: int) -> int:
        return self.valid_sums[index] + self.pending_valid

    def window_start_ms(self, index: int) -> int:
        """The oldest event time window `index` counts now (see the module docstring)."""
        return (self._heads[index] - BUCKETS + 1) * self.bucket_ms[index]

    def holds(self, ts_ms: int) -> bool:
        """Whether some window would count an event at `ts_ms` (<= now)."""
        return any(ts_ms >= self.window_start_ms(i) for i in range(len(self.windows_ms)))

    def next_change_ms(self) -> int:
        """The earliest event time after now at which some window's sums fall (a non-empty
        bucket leaves it); NEVER when every window is empty."""
        earliest = min(self._expiry)
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
        held = False
        heads = self._heads
        expiry = self._expiry
        for i, width in enumerate(self.bucket_ms):
            bucket = ts_ms // width
            if bucket <= heads[i] - BUCKETS:
                continue
            held = True
            slot = i * BUCKETS + bucket % BUCKETS
            self._good[slot] += good
            self._valid[slot] += valid
            self.good_sums[i] += good
            self.valid_sums[i] += valid
            leaves = (bucket + BUCKETS) * width
            if valid and leaves < expiry[i]:
                expiry[i] = leaves
        return held

    def roll(self, ts_ms: int) -> bool:
        """Move event time to `ts_ms` (no-op if not later); True when some window's sums fell.

        Correct for any jump; a caller that must decide at every change calls it at each
        `next_change_ms` in turn."""
        if ts_ms < self.head_hi_ms:
            if ts_ms > self.now_ms:
                self.now_ms = ts_ms
            return False
        self.now_ms = ts_ms
        heads = self._heads
        expiry = self._expiry
        goods = self._good
        valids = self._valid
        good_sums = self.good_sums
        valid_sums = self.valid_sums
        if self.pending_valid:
            pending_good = self.pending_good
            pending_valid = self.pending_valid
            for i, width in enumerate(self.bucket_ms):
                slot = i * BUCKETS + heads[i] % BUCKETS
                goods[slot] += pending_good
                valids[slot] += pending_valid
                good_sums[i] += pending_good
                valid_sums[i] += pending_valid
                leaves = (heads[i] + BUCKETS) * width
                if leaves < expiry[i]:
                    expiry[i] = leaves
            self.pending_good = 0
            self.pending_valid = 0
        changed = False
        for i, width in enumerate(self.bucket_ms):
            new_head = ts_ms // width
            old_head = heads[i]
            if new_head == old_head:
                continue
            heads[i] = new_head
            if expiry[i] > ts_ms:  # every bucket leaving is empty
                continue
            changed = True
            base = i * BUCKETS
            if new_head - old_head >= BUCKETS:
                goods[base : base + BUCKETS] = _ZEROS
                valids[base : base + BUCKETS] = _ZEROS
                good_sums[i] = 0
                valid_sums[i] = 0
                expiry[i] = NEVER
                continue
            for bucket in range(old_head + 1, new_head + 1):
                slot = base + bucket % BUCKETS
                good_sums[i] -= goods[slot]
                valid_sums[i] -= valids[slot]
                goods[slot] = 0
                valids[slot] = 0
            expiry[i] = NEVER
            if valid_sums[i]:
                for bucket in range(new_head - BUCKETS + 1, new_head + 1):
                    if valids[base + bucket % BUCKETS]:
                        expiry[i] = (bucket + BUCKETS) * width
                        break
        self._set_bounds()
        return changed

    def _set_bounds(self) -> None:
        lo = hi = leaves = 0
        for i, width in enumerate(self.bucket_ms):
            head = self._heads[i]
            start = head * width
            if i == 0 or start > lo:
                lo = start
            if i == 0 or start + width < hi:
                hi = start + width
            if i == 0 or (head + BUCKETS) * width < leaves:
                leaves = (head + BUCKETS) * width
        self.head_lo_ms = lo
        self.head_hi_ms = hi
        self.pending_expiry_ms = leaves
