"""Exact spend over a rolling event-time window, and exact money in integer nano-dollars.

`RollingSum` answers "what was spent over the last `window_ms`" for ROLLING budgets (rolling
30 days) and for rate questions ("spend over the last 15 minutes"). It is a ring of event-time
buckets with running totals (`workers.kernels.bucket_ring.BucketRing`): an add goes into its
bucket and the totals, and advancing event time subtracts the buckets that leave the window
(subtract-on-evict), so the totals are always those of the window and never re-summed.

Resolution: the ring's `OVERLAP_CLOSED` edge, not Resilience4j's. Bucket `i` holds event times
`[i * bucket_ms, (i + 1) * bucket_ms)`. The window is the bucket of the newest event time seen
(the head, partly elapsed) and the `window_ms / bucket_ms` whole buckets before it. It
therefore spans whole buckets: at event time `t` it holds the events of
`[t - window_ms - r, t]` where `r = t mod bucket_ms` (`0 <= r < bucket_ms`). A sum never
misses an event of the last `window_ms`, and may include up to one bucket's worth (less than
`bucket_ms`) of events older than exactly `window_ms`: the error is on the side of counting too
much, which is the safe side for a limit (Resilience4j's edge, which the breaker's windows
use, errs the other way). Choose `bucket_ms` as the error you can accept (e.g. 1 h buckets for
a 30 d window: 720 buckets, at most 1 h of extra history).

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

from decimal import Decimal
from typing import Final

from workers.errors import ConfigError
from workers.kernels.bucket_ring import NOT_STARTED, BucketRing, Edge
from workers.kernels.checks import check_whole_buckets

NANOS_PER_USD: Final = 10**9
MAX_BUCKETS: Final = 1440
"""A day of minute buckets; enough resolution for any budget window, bounded memory per key."""
_NANO_EXPONENT = -9
# A guard against amounts such as Decimal("1E+999999") whose exact integer would take
# megabytes: far above any bounded amount in schemas (MAX_MONEY_TOTAL_USD is 10**18).
_MAX_ADJUSTED_EXPONENT = 36
_NO_AMOUNT: Final = 1 << 62
"""`RollingSum._first_ms` of a ring no amount was added to since it was last emptied."""


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


class RollingSum(BucketRing):
    """Exact nano-dollars and tokens over the last `window_ms` of event time, in buckets: a
    `BucketRing` with the `OVERLAP_CLOSED` edge (module docstring).

    Mutable, updated in place on the hot path; `copy()` gives an independent one.
    """

    __slots__ = ("_first_ms", "_nanos", "_tokens", "nanos", "tokens")
    COPIED = frozenset({"_nanos", "_tokens"})
    nanos: int
    tokens: int
    _nanos: list[int]
    _tokens: list[int]
    _first_ms: int

    def __init__(self, window_ms: int, bucket_ms: int) -> None:
        buckets = check_whole_buckets("RollingSum", "window_ms", window_ms, "bucket_ms", bucket_ms)
        if buckets > MAX_BUCKETS:
            raise ConfigError(
                f"RollingSum window_ms / bucket_ms is {buckets} buckets, more than "
                f"{MAX_BUCKETS}: use larger buckets (bucket_ms >= "
                f"{-(-window_ms // MAX_BUCKETS)} for window_ms {window_ms})"
            )
        super().__init__(window_ms, bucket_ms, Edge.OVERLAP_CLOSED)
        self._evict_all()  # empty buckets: the initial state

    def add(self, ts_ms: int, nanos: int, tokens: int) -> bool:
        """Count an event at event time `ts_ms`. Returns False, changing nothing, when its
        bucket has already left the window: the caller counts and audits it as late."""
        slot = self.place(ts_ms)
        if slot < 0:
            return False
        if ts_ms < self._first_ms:
            self._first_ms = ts_ms
        self._nanos[slot] += nanos
        self._tokens[slot] += tokens
        self.nanos += nanos
        self.tokens += tokens
        return True

    def next_change_ms(self) -> int | None:
        """The earliest event time at which advancing changes the totals: when the oldest
        bucket holding an amount leaves the window; None while the window holds nothing
        (time alone then changes nothing). O(1) amortised: the search starts at `_first_ms`,
        which only moves back when an add lands before it."""
        if self.now_ms == NOT_STARTED:
            return None
        nanos, tokens, slots, bucket_ms = self._nanos, self._tokens, self.slots, self.bucket_ms
        first = self._first_ms // bucket_ms
        for index in range(first if first > self.oldest else self.oldest, self.head + 1):
            slot = index % slots
            if nanos[slot] or tokens[slot]:
                self._first_ms = index * bucket_ms
                return self._first_ms + self._reach_ms  # when bucket `index` leaves
        self._first_ms = (self.head + 1) * bucket_ms
        return None

    def total(self) -> tuple[int, int]:
        """(nano-dollars, tokens) in the window."""
        return self.nanos, self.tokens

    def _evict(self, slot: int) -> None:
        self.nanos -= self._nanos[slot]
        self.tokens -= self._tokens[slot]
        self._nanos[slot] = self._tokens[slot] = 0

    def _evict_all(self) -> None:
        self.nanos = 0
        """Total nano-dollars in the window."""
        self.tokens = 0
        """Total tokens in the window."""
        self._nanos = [0] * self.slots
        self._tokens = [0] * self.slots
        self._first_ms = _NO_AMOUNT
        """Every bucket before the one holding this time is empty: where `next_change_ms`
        starts looking, so a ledger scheduled after each spend does not scan the whole ring
        every time."""
