"""Quantile sketch: the relative-error guarantee against exact quantiles, merge equals adding
everything to one sketch, bounded buckets, and input validation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.kernels.sketch import QuantileSketch

# Latency-like values: zeros, and positive values over many orders of magnitude.
values = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False),
)
quantiles = st.one_of(st.sampled_from([0.0, 0.5, 0.95, 0.99, 1.0]), st.floats(0, 1))


def exact_quantile(data: list[float], q: float) -> float:
    """The lower quantile: the value of 0-based rank floor(q * (n - 1)) in sorted order."""
    return sorted(data)[math.floor(q * (len(data) - 1))]


def within(estimate: float | None, exact: float, accuracy: float) -> bool:
    # A hair of slack for floating point at bucket boundaries (log and pow are not exact).
    assert estimate is not None
    return abs(estimate - exact) <= accuracy * exact * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("accuracy", [0.01, 0.05])
@given(data=st.lists(values, min_size=1, max_size=300), q=quantiles)
def test_quantile_is_within_the_relative_accuracy(
    accuracy: float, data: list[float], q: float
) -> None:
    sketch = QuantileSketch(relative_accuracy=accuracy)
    for value in data:
        sketch.add(value)
    assert sketch.count == len(data)
    assert within(sketch.quantile(q), exact_quantile(data, q), accuracy)


@given(left=st.lists(values, max_size=100), right=st.lists(values, max_size=100), q=quantiles)
def test_merge_equals_adding_everything_to_one(
    left: list[float], right: list[float], q: float
) -> None:
    a, b, both = QuantileSketch(), QuantileSketch(), QuantileSketch()
    for value in left:
        a.add(value)
        both.add(value)
    for value in right:
        b.add(value)
        both.add(value)
    a.merge(b)
    assert a == both
    assert a.quantile(q) == both.quantile(q)


@given(data=st.lists(values, max_size=50), more=st.lists(values, min_size=1, max_size=50))
def test_copy_is_independent(data: list[float], more: list[float]) -> None:
    sketch = QuantileSketch()
    for value in data:
        sketch.add(value)
    copy = sketch.copy()
    assert copy == sketch
    for value in more:
        copy.add(value)
    assert sketch.count == len(data)
    assert copy.count == len(data) + len(more)


def test_p95_of_a_known_distribution() -> None:
    sketch = QuantileSketch()
    for ms in range(1, 1001):  # 1..1000 ms: the lower p95 is the value of rank 949, 950 ms
        sketch.add(float(ms))
    p95 = sketch.quantile(0.95)
    assert p95 is not None
    assert abs(p95 - 950) <= 9.5
    assert (sketch.quantile(0), sketch.quantile(1)) == (1.0, 1000.0)  # clamped to min / max


def test_the_largest_floats_do_not_overflow() -> None:
    sketch = QuantileSketch()
    for value in (1.7e308, 1e308, 1.0):
        sketch.add(value)
    assert sketch.quantile(1.0) == 1.7e308
    assert within(sketch.quantile(0.5), 1e308, 0.01)


def test_empty_sketch_has_no_quantile() -> None:
    assert QuantileSketch().quantile(0.5) is None


def test_zero_and_tiny_values_share_the_zero_bucket() -> None:
    sketch = QuantileSketch(min_value=1e-3)
    for value in (0.0, 1e-4, 5.0):
        sketch.add(value)
    assert (sketch.zero_count, sum(sketch.bins.values())) == (2, 1)
    assert sketch.quantile(0.0) == 0.0
    assert sketch.quantile(1.0) == 5.0


def test_buckets_are_bounded_by_collapsing_the_lowest() -> None:
    sketch = QuantileSketch(relative_accuracy=0.01, max_buckets=64)
    data = [1.05**i for i in range(400)]  # spans far more than 64 buckets
    for value in data:
        sketch.add(value)
    assert len(sketch.bins) <= 64
    assert sketch.collapsed_below is not None
    assert sketch.count == len(data)
    # High quantiles keep the guarantee; the collapsed low end does not.
    for q in (0.9, 0.95, 0.99, 1.0):
        assert within(sketch.quantile(q), exact_quantile(data, q), 0.01)
    sketch.add(1e-3)  # below the collapsed range: counted in the lowest kept bucket
    assert len(sketch.bins) <= 64


def test_merge_keeps_the_bound_and_the_collapse() -> None:
    low, high = QuantileSketch(max_buckets=16), QuantileSketch(max_buckets=16)
    for i in range(40):
        low.add(1.05**i)
        high.add(1.05 ** (i + 100))
    low.merge(high)
    assert len(low.bins) <= 16
    assert low.count == 80
    assert low.collapsed_below is not None


def test_clear_empties_the_sketch() -> None:
    sketch = QuantileSketch()
    sketch.add(3.0)
    sketch.clear()
    assert sketch == QuantileSketch()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"relative_accuracy": 0}, "relative_accuracy .* not 0"),
        ({"relative_accuracy": 1.5}, "relative_accuracy .* not 1.5"),
        ({"max_buckets": 1}, "max_buckets .* not 1"),
        ({"min_value": 0.0}, "min_value .* not 0.0"),
    ],
)
def test_bad_parameters_name_the_value(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QuantileSketch(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_bad_values_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="finite and >= 0"):
        QuantileSketch().add(value)


def test_merging_different_accuracies_is_refused() -> None:
    with pytest.raises(ValueError, match="different relative_accuracy"):
        QuantileSketch(0.01).merge(QuantileSketch(0.02))


def test_bad_quantile_is_refused() -> None:
    with pytest.raises(ValueError, match="quantile must be in"):
        QuantileSketch().quantile(1.5)
