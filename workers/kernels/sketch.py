"""A mergeable quantile sketch with a relative-error guarantee (DDSketch, Masson et al., 2019).

Values are counted in logarithmic buckets: with relative accuracy `a` and
`gamma = (1 + a) / (1 - a)`, bucket `i` holds the values in `(gamma**(i-1), gamma**i]` and
stands for `2 * gamma**i / (gamma + 1)`, which is within `a` (relative) of every value in it.
So for any q, `quantile(q)` is within `a * x` of `x`, the exact q-quantile of the values added,
where x is the value of 0-based rank `floor(q * (count - 1))` in sorted order (the lower
quantile), as long as:
- x >= `min_value` (smaller values, zero included, share one zero bucket that stands for 0),
- no bucket at or above x's was collapsed (see below).

Memory is one dict entry per non-empty bucket. Values spanning a factor of `gamma**max_buckets`
(about 6e17 for the defaults) would need more; then the lowest buckets are collapsed into one
(DDSketch's "collapsing lowest" store), so low quantiles lose accuracy and high ones, which
governance cares about (p95, p99), keep it. Merging adds counts bucket by bucket, so merging two
sketches gives the same sketch as adding all their values to one (the property tests check it).

The exact minimum and maximum are kept too: estimates are clamped to them, which can only move
an estimate closer to the exact quantile.

Pure and deterministic: same adds (in any order, without collapsing) give the same sketch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DEFAULT_RELATIVE_ACCURACY = 0.01
DEFAULT_MAX_BUCKETS = 2048
DEFAULT_MIN_VALUE = 1e-9
"""Below this a value counts as zero: log buckets cannot reach 0 (for latencies in ms, 1 ps)."""


@dataclass(slots=True)
class QuantileSketch:
    """DDSketch-style log-bucket sketch of non-negative values; see the module docstring."""

    relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY
    max_buckets: int = DEFAULT_MAX_BUCKETS
    min_value: float = DEFAULT_MIN_VALUE
    bins: dict[int, int] = field(default_factory=dict)
    """Bucket index -> count (only non-empty buckets)."""
    zero_count: int = 0
    count: int = 0
    min: float = math.inf
    max: float = -math.inf
    collapsed_below: int | None = None
    """Once buckets were collapsed: the lowest index kept; lower indexes are counted in it."""
    _gamma: float = field(init=False, repr=False, compare=False)
    _multiplier: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.relative_accuracy < 1:
            raise ValueError(f"relative_accuracy must be in (0, 1), not {self.relative_accuracy!r}")
        if isinstance(self.max_buckets, bool) or self.max_buckets < 2:
            raise ValueError(f"max_buckets must be an integer >= 2, not {self.max_buckets!r}")
        if not self.min_value > 0 or math.isinf(self.min_value):
            raise ValueError(f"min_value must be a finite number > 0, not {self.min_value!r}")
        self._gamma = (1 + self.relative_accuracy) / (1 - self.relative_accuracy)
        self._multiplier = 1 / math.log(self._gamma)

    # --- recording ---

    def add(self, value: float, count: int = 1) -> None:
        """Count `value` (>= 0, finite) `count` times."""
        if not 0 <= value < math.inf:  # also rejects NaN
            raise ValueError(f"sketch values must be finite and >= 0, not {value!r}")
        if count < 1:
            raise ValueError(f"count must be >= 1, not {count!r}")
        self.count += count
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value < self.min_value:
            self.zero_count += count
            return
        index = self.index(value)
        floor = self.collapsed_below
        if floor is not None and index < floor:
            index = floor
        bins = self.bins
        bins[index] = bins.get(index, 0) + count
        if len(bins) > self.max_buckets:
            self._collapse()

    def merge(self, other: QuantileSketch) -> None:
        """Add every value `other` counted (same accuracy and min_value required)."""
        if (other.relative_accuracy, other.min_value) != (self.relative_accuracy, self.min_value):
            raise ValueError(
                "cannot merge sketches with different relative_accuracy/min_value: "
                f"{(self.relative_accuracy, self.min_value)} vs "
                f"{(other.relative_accuracy, other.min_value)}"
            )
        if other.count == 0:
            return
        self.count += other.count
        self.zero_count += other.zero_count
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        floor = self.collapsed_below
        if other.collapsed_below is not None:
            floor = other.collapsed_below if floor is None else max(floor, other.collapsed_below)
        self.collapsed_below = floor
        bins = self.bins
        for index, n in other.bins.items():
            bins[index] = bins.get(index, 0) + n
        if floor is not None:
            self._fold_below(floor)
        while len(bins) > self.max_buckets:
            self._collapse()

    def clear(self) -> None:
        self.bins.clear()
        self.zero_count = 0
        self.count = 0
        self.min = math.inf
        self.max = -math.inf
        self.collapsed_below = None

    def copy(self) -> QuantileSketch:
        clone = QuantileSketch(self.relative_accuracy, self.max_buckets, self.min_value)
        clone.bins = self.bins.copy()
        clone.zero_count = self.zero_count
        clone.count = self.count
        clone.min = self.min
        clone.max = self.max
        clone.collapsed_below = self.collapsed_below
        return clone

    # --- reading ---

    def quantile(self, q: float) -> float | None:
        """Estimate of the q-quantile (0 <= q <= 1); None when nothing was added."""
        if not 0 <= q <= 1:
            raise ValueError(f"quantile must be in [0, 1], not {q!r}")
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = self.zero_count
        if seen > rank:
            return max(0.0, self.min)
        for index in sorted(self.bins):
            seen += self.bins[index]
            if seen > rank:
                return min(max(self.value(index), self.min), self.max)
        return self.max  # unreachable: the counts add up to `count`

    def index(self, value: float) -> int:
        """Bucket holding `value` (> 0): the i with gamma**(i-1) < value <= gamma**i."""
        return math.ceil(math.log(value) * self._multiplier)

    def value(self, index: int) -> float:
        """What bucket `index` stands for: within the relative accuracy of all its values.
        2 * gamma**i / (gamma + 1), written from the bucket's lower bound so that the power
        cannot overflow for any finite value added."""
        gamma = self._gamma
        return gamma ** (index - 1) * (2 * gamma / (gamma + 1))

    @property
    def gamma(self) -> float:
        return self._gamma

    # --- bounding memory ---

    def _collapse(self) -> None:
        """Fold the lowest buckets into one so that at most `max_buckets` remain."""
        ordered = sorted(self.bins)
        keep_from = ordered[len(ordered) - self.max_buckets]
        self.collapsed_below = keep_from
        self._fold_below(keep_from)

    def _fold_below(self, floor: int) -> None:
        bins = self.bins
        low = [index for index in bins if index < floor]
        if low:
            bins[floor] = bins.get(floor, 0) + sum(bins.pop(index) for index in low)
