"""The mergeable latency sketch: 1 % nearest-rank accuracy, exact merges, text encoding."""

from __future__ import annotations

from fractions import Fraction

import attrs
import pytest
from core_strategies import QUANTILES, exact_rank_value, latencies, within_one_percent
from hypothesis import given
from hypothesis import strategies as st

from analytics_core.sketch import (
    RELATIVE_ACCURACY,
    LatencySketch,
    bin_index,
    bin_value,
    decode,
    encode,
    merge_sketches,
)

latency_lists = st.lists(latencies, min_size=1, max_size=300)
sketches = st.lists(latencies, max_size=60).map(LatencySketch.from_values)


@st.composite
def partitions(draw: st.DrawFn) -> tuple[list[int], list[list[int]]]:
    """A list of latencies and a random split of it into parts (some possibly empty)."""
    values = draw(latency_lists)
    parts_count = draw(st.integers(min_value=1, max_value=8))
    owners = draw(
        st.lists(
            st.integers(0, parts_count - 1),
            min_size=len(values),
            max_size=len(values),
        )
    )
    parts: list[list[int]] = [[] for _ in range(parts_count)]
    for value, owner in zip(values, owners, strict=True):
        parts[owner].append(value)
    return values, parts


def assert_quantiles_accurate(sketch: LatencySketch, values: list[int]) -> None:
    """p50/p95/p99 of the sketch are within 1 % of the exact nearest-rank values."""
    for q, exact_q in QUANTILES:
        exact = exact_rank_value(values, exact_q)
        estimate = sketch.quantile(q)
        assert within_one_percent(estimate, exact), (q, estimate, exact)


@given(latency_lists)
def test_quantiles_are_within_one_percent_of_exact_nearest_rank(values: list[int]) -> None:
    """A sketch of a list answers p50/p95/p99 within 1 % of the exact nearest-rank value."""
    assert_quantiles_accurate(LatencySketch.from_values(values), values)


@given(partitions())
def test_quantiles_of_merged_partitions_are_within_one_percent(
    split: tuple[list[int], list[list[int]]],
) -> None:
    """Merging the sketches of any partition of the list keeps the 1 % guarantee."""
    values, parts = split
    merged = merge_sketches(LatencySketch.from_values(p) for p in parts)
    assert_quantiles_accurate(merged, values)


@given(partitions())
def test_merging_partitions_equals_sketching_the_whole(
    split: tuple[list[int], list[list[int]]],
) -> None:
    """Merge is exact: the merge of the parts is the sketch of the whole list."""
    values, parts = split
    pairwise = LatencySketch()
    for part in parts:
        pairwise = pairwise.merge(LatencySketch.from_values(part))
    assert pairwise == LatencySketch.from_values(values)


@given(sketches, sketches)
def test_merge_is_commutative(a: LatencySketch, b: LatencySketch) -> None:
    """a + b == b + a."""
    assert a.merge(b) == b.merge(a)


@given(sketches, sketches, sketches)
def test_merge_is_associative(a: LatencySketch, b: LatencySketch, c: LatencySketch) -> None:
    """(a + b) + c == a + (b + c)."""
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(sketches)
def test_empty_sketch_is_the_merge_identity(a: LatencySketch) -> None:
    """Merging with an empty sketch changes nothing."""
    assert a.merge(LatencySketch()) == a == LatencySketch().merge(a)


@given(sketches)
def test_encode_then_decode_round_trips(sketch: LatencySketch) -> None:
    """decode(encode(s)) == s."""
    assert decode(encode(sketch)) == sketch


@given(sketches)
def test_asdict_and_evolve_round_trip(sketch: LatencySketch) -> None:
    """The value object rebuilds from its fields unchanged."""
    assert LatencySketch(**attrs.asdict(sketch, recurse=False)) == sketch
    assert attrs.evolve(sketch) == sketch


def test_encoding_is_readable_and_sorted() -> None:
    """The text form is `zeros|index:count,...` in index order."""
    sketch = LatencySketch(2, {5: 1, -1: 3})
    assert encode(sketch) == "2|-1:3,5:1"
    assert encode(LatencySketch()) == "0|"


@pytest.mark.parametrize("text", ["", "x|", "1|a:b", "1|5", "1|5:"])
def test_decode_rejects_malformed_text(text: str) -> None:
    """Malformed text raises ValueError."""
    with pytest.raises(ValueError):
        decode(text)


def test_empty_sketch_has_no_quantile() -> None:
    """An empty sketch answers None, never a made-up number."""
    assert LatencySketch().quantile(0.5) is None
    assert LatencySketch().count == 0


def test_zeros_are_counted_apart_and_answer_zero() -> None:
    """Zero latencies land in the zero counter and their quantile is exactly 0."""
    sketch = LatencySketch.from_values([0, 0, 0, 7])
    assert (sketch.zero_count, sketch.count) == (3, 4)
    assert sketch.quantile(0.5) == 0.0
    assert sketch.quantile(0.99) == pytest.approx(7, rel=0.01)


def test_rank_is_ceil_of_q_times_n() -> None:
    """With 20 values, p95 is the 19th smallest and p50 the 10th (nearest-rank)."""
    values = [10 * 2**i for i in range(20)]  # far apart, so neighbouring ranks cannot blur
    sketch = LatencySketch.from_values(values)
    assert sketch.quantile(0.95) == pytest.approx(values[18], rel=0.01)
    assert sketch.quantile(0.5) == pytest.approx(values[9], rel=0.01)


@given(st.integers(min_value=1, max_value=2**63 - 1))
def test_bin_representative_is_within_the_relative_accuracy(value: int) -> None:
    """Each value's bin representative is within the sketch's relative accuracy (< 1 %)."""
    representative = bin_value(bin_index(value))
    assert abs(representative - value) <= RELATIVE_ACCURACY * value * (1 + 1e-9)
    assert RELATIVE_ACCURACY < 0.01


def test_bins_grow_monotonically_with_value() -> None:
    """Larger values never fall into a lower bin (quantile walks rely on it)."""
    indices = [bin_index(v) for v in range(1, 5_000)]
    assert indices == sorted(indices)


def test_exact_reference_uses_ceil_rank() -> None:
    """The test oracle itself: rank = ceil(q*n), at least 1."""
    assert exact_rank_value([5, 1, 3, 2, 4], Fraction(1, 2)) == 3
    assert exact_rank_value([5, 1, 3, 2, 4], Fraction(0)) == 1
