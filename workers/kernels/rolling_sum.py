"""Exact spend over a rolling event-time window, and exact money in integer nano-dollars.

`RollingSum` answers "what was spent over the last `window_ms`" for ROLLING budgets (rolling
30 days) and for rate questions ("spend over the last 15 minutes"). Like `windows.TimeWindow`
it is a ring of event-time buckets with running totals: an add goes into its bucket and the
totals, and advancing event time subtracts the buckets that leave the window (subtract-on-
evict), so the totals are always those of the window and never re-summed.

Resolution: bucket `i` holds event times `[i * bucket_ms, (i + 1) * bucket_ms)`. The window is
the bucket of the newest event time seen (the head, partly elapsed) and the
`window_ms / bucket_ms` whole buckets before it. It therefore spans whole buckets: at event
time `t` it holds the events of `[t - window_ms - r, t]` where `r = t mod bucket_ms`
(`0 <= r < bucket_ms`). A sum never misses an event of the last `window_ms`, and may include
up to one bucket's worth (less than `bucket_ms`) of events older than exactly `window_ms`: the
error is on the side of counting too much, which is the safe side for a limit. (windows.
TimeWindow, built for Resilience4j's semantics, errs the other way.) Choose `bucket_ms` as
the error you can accept (e.g. 1 h buckets for a 30 d window: 720 buckets, at most 1 h of
extra history).

Money is exact: amounts are integer nano-dollars (USD * 10**9, see `to_nanos`), tokens are
integers, and Python ints do not overflow, so a million $0.0001 charges sum to exactly $100
and subtract-on-evict never drifts. Amounts may be negative (credits, late adjustments).

Cost: `add` is O(1) when the event is in the head bucket or an earlier one inside the window;
moving event time forward clears each bucket it passes once (O(1) per bucket of event time,
so O(1) amortised per add while events arrive at least once per bucket, never more than one
pass over the ring per call), and a jump of a whole window or more resets the ring at once.
Memory is two ints per bucket (`window_ms / bucket_ms + 1` buckets, the partial head included),
and `window_ms / bucket_ms` is capped at `MAX_BUCKETS`.

Pure: time comes only with the calls (`ts_ms`, event time); no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from workers.errors import ConfigError
from workers.kernels.checks import check_whole_buckets

NANOS_PER_USD: Final = 10**9
MAX_BUCKETS: Final = 1440
"""A day of minute buckets; enough resolution for any budget window, bounded memory per key."""
_NANO_EXPONENT = -9
# A guard against amounts such as Decimal("1E+999999") whose exact integer would take
# megabytes: far above any bounded amount in schemas (MAX_MONEY_TOTAL_USD is 10**18).
_MAX_ADJUSTED_EXPONENT = 36
_NO_AMOUNT: Final = 1 << 62
"""`RollingSum._oldest` of a ring no amount was added to since it was last emptied."""


def to_nanos(amount_usd: Decimal) -> int:
    """`amount_usd` as integer nano-dollars, exactly.

    Raises ValueError when that is impossible: more than 9 significant decimal places (e.g.
    0.0000000001; trailing zeros do not count), NaN or infinity, or an absurd magnitude
    (beyond 10**36 USD). MoneyUSD does not bound the decimal places, so the caller decides
    what a finer amount means (round it and audit, or reject the event).
    """
    if not amount_usd.is_finite():
        raise ValueError(f"amount must be finite, not {amount_usd}")
    if amount_usd.is_zero():
        return 0
    if amount_usd.adjusted() > _MAX_ADJUSTED_EXPONENT:
        raise ValueError(f"amount {amount_usd} is out of range")
    # Integer arithmetic on the digits: Decimal operations would round to the context's 28
    # significant digits.
    sign, digits, exponent = amount_usd.as_tuple()
    assert isinstance(exponent, int)  # finite
    coefficient = int("".join(map(str, digits)))
    shift = exponent - _NANO_EXPONENT
    scale: int = 10 ** abs(shift)  # int ** int is typed Any: it is a float for a negative power
    if shift >= 0:
        nanos = coefficient * scale
    else:
        nanos, rest = divmod(coefficient, scale)
        if rest:
            raise ValueError(f"amount {amount_usd} has more than 9 decimal places")
    return -nanos if sign else nanos


def from_nanos(nanos: int) -> Decimal:
    """Integer nano-dollars as an exact Decimal USD amount, without trailing zeros
    (100_000_000_000 -> Decimal("100"), 1 -> Decimal("1E-9"))."""
    exponent = _NANO_EXPONENT
    while exponent < 0 and nanos % 10 == 0 and nanos:
        nanos //= 10
        exponent += 1
    if not nanos:
        return Decimal(0)
    # Built from the string form, which is exact (arithmetic would round at 28 digits).
    return Decimal(f"{nanos}E{exponent}")


@dataclass(slots=True)
class RollingSum:
    """Exact nano-dollars and tokens over the last `window_ms` of event time, in buckets.

    Mutable, updated in place on the hot path; `copy()` gives an independent one.
    """

    window_ms: int
    bucket_ms: int
    nanos: int = field(default=0, init=False)
    """Total nano-dollars in the window."""
    tokens: int = field(default=0, init=False)
    """Total tokens in the window."""
    _nanos: list[int] = field(init=False, repr=False)
    _tokens: list[int] = field(init=False, repr=False)
    _buckets: int = field(default=1, init=False, repr=False)
    """window_ms / bucket_ms: whole buckets behind the head."""
    _slots: int = field(default=2, init=False, repr=False)
    """Ring size: the whole buckets plus the head."""
    _head: int | None = field(default=None, init=False)
    """Index of the newest bucket (the one holding the watermark); None before any event."""
    _watermark_ms: int | None = field(default=None, init=False)
    _oldest: int = field(default=_NO_AMOUNT, init=False, repr=False)
    """Every bucket before this index is empty: where `next_change_ms` starts looking, so a
    ledger scheduled after each spend does not scan the whole ring every time."""

    def __post_init__(self) -> None:
        buckets = check_whole_buckets(
            "RollingSum", "window_ms", self.window_ms, "bucket_ms", self.bucket_ms
        )
        if buckets > MAX_BUCKETS:
            raise ConfigError(
                f"RollingSum window_ms / bucket_ms is {buckets} buckets, more than "
                f"{MAX_BUCKETS}: use larger buckets (bucket_ms >= "
                f"{-(-self.window_ms // MAX_BUCKETS)} for window_ms {self.window_ms})"
            )
        self._buckets = buckets
        self._slots = buckets + 1
        self._nanos = [0] * self._slots
        self._tokens = [0] * self._slots

    @property
    def buckets(self) -> int:
        return self._buckets

    @property
    def watermark_ms(self) -> int | None:
        """Newest event time seen (adds and `advance`); None before any."""
        return self._watermark_ms

    @property
    def window_start_ms(self) -> int | None:
        """Start of the oldest bucket in the window: events from here on are counted."""
        if self._head is None:
            return None
        return (self._head - self._buckets) * self.bucket_ms

    def in_window(self, ts_ms: int) -> bool:
        """Whether an event at `ts_ms` would be counted (its bucket is not older than the
        window's oldest bucket)."""
        return self._head is None or ts_ms // self.bucket_ms >= self._head - self._buckets

    def add(self, ts_ms: int, nanos: int, tokens: int) -> bool:
        """Count an event at event time `ts_ms`. Returns False, changing nothing, when its
        bucket has already left the window: the caller counts and audits it as late."""
        index = ts_ms // self.bucket_ms
        head = self._head
        if head is None or index > head:
            self.advance(ts_ms)
        elif index < head - self._buckets:
            return False
        elif self._watermark_ms is not None and ts_ms > self._watermark_ms:
            self._watermark_ms = ts_ms  # same head bucket, newer time
        if index < self._oldest:
            self._oldest = index
        slot = index % self._slots
        self._nanos[slot] += nanos
        self._tokens[slot] += tokens
        self.nanos += nanos
        self.tokens += tokens
        return True

    def advance(self, ts_ms: int) -> None:
        """Move event time to `ts_ms` (no-op unless newer), evicting buckets that fall out.
        Call it on clock events so that a quiet key's window still empties."""
        if self._watermark_ms is not None and ts_ms <= self._watermark_ms:
            return
        self._watermark_ms = ts_ms
        index = ts_ms // self.bucket_ms
        head = self._head
        self._head = index
        if head is None or index <= head:
            return
        n = self._slots
        if index - head >= n:  # the whole window left: reset in one step
            self._nanos = [0] * n
            self._tokens = [0] * n
            self.nanos = self.tokens = 0
            self._oldest = _NO_AMOUNT
            return
        nanos, tokens = self._nanos, self._tokens
        for bucket in range(head + 1, index + 1):  # the slots the new buckets reuse
            slot = bucket % n
            self.nanos -= nanos[slot]
            self.tokens -= tokens[slot]
            nanos[slot] = tokens[slot] = 0

    def next_change_ms(self) -> int | None:
        """The earliest event time at which advancing changes the totals: when the oldest
        bucket holding an amount leaves the window; None while the window holds nothing
        (time alone then changes nothing). O(1) amortised: the search starts at `_oldest`,
        which only moves back when an add lands before it."""
        head = self._head
        if head is None:
            return None
        nanos, tokens, slots = self._nanos, self._tokens, self._slots
        for index in range(max(self._oldest, head - self._buckets), head + 1):
            slot = index % slots
            if nanos[slot] or tokens[slot]:
                self._oldest = index
                return (index + slots) * self.bucket_ms  # the head reaches index + slots
        self._oldest = head + 1
        return None

    def total(self) -> tuple[int, int]:
        """(nano-dollars, tokens) in the window."""
        return self.nanos, self.tokens

    def copy(self) -> RollingSum:
        clone = RollingSum(self.window_ms, self.bucket_ms)
        clone.nanos, clone.tokens = self.nanos, self.tokens
        clone._nanos, clone._tokens = self._nanos[:], self._tokens[:]
        clone._head, clone._watermark_ms = self._head, self._watermark_ms
        clone._oldest = self._oldest
        return clone
