"""15-minute rollups keyed by (org, model, client, bucket) and their exact merges (SPEC §3)."""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from analytics_core.events import (
    NO_TOKEN_DETAILS,
    TOKEN_DETAIL_NAMES,
    Status,
    TokenDetails,
    UsageEvent,
)
from analytics_core.money import Cents
from analytics_core.prices import ZERO_COSTS, EventPrice
from analytics_core.sketch import LatencySketch, bin_index, merge_sketches
from analytics_core.timegrid import BUCKET

NO_CLIENT = ""
MAX_ERROR_CODES_PER_ROLLUP = 64
OTHER_ERROR_CODE = "(other)"
_BUCKET_SECONDS = int(BUCKET.total_seconds())


@attrs.frozen(order=True)
class RollupKey:
    """Identity of a base bucket. `client_id` is "" when events carried none."""

    org_id: uuid.UUID
    model_id: uuid.UUID
    client_id: str
    bucket_start: datetime


@attrs.frozen
class RollupStats:
    """Additive statistics of a set of events. `merge` is associative and commutative."""

    invocations: int = 0
    success: int = 0
    errors: int = 0
    timeouts: int = 0
    throttled: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Cents = attrs.field(factory=Cents.zero)
    latency_sum: int = 0
    latency_min: int | None = None
    latency_max: int | None = None
    sketch: LatencySketch = attrs.field(factory=LatencySketch)
    error_codes: Mapping[str, int] = attrs.field(factory=dict)
    # Token categories (SPEC §12), parts of input_tokens and output_tokens.
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    audio_input_tokens: int = 0
    reasoning_tokens: int = 0
    audio_output_tokens: int = 0
    # Catalog cost (SPEC §12) per category in units of 0.0001 cent, in `prices.CATEGORIES`
    # order, of the `priced` invocations a price version covered.
    catalog_costs: tuple[int, ...] = ZERO_COSTS
    priced: int = 0

    def merge(self, other: RollupStats) -> RollupStats:
        """Statistics of the union of both event sets."""
        return merge_stats((self, other))

    @property
    def token_details(self) -> TokenDetails:
        """The token categories as one value."""
        return TokenDetails(self.cache_read_tokens, self.cache_write_tokens,
                            self.audio_input_tokens, self.reasoning_tokens,
                            self.audio_output_tokens)

    @property
    def catalog_cost(self) -> Cents:
        """The catalog cost of the priced invocations."""
        return Cents(sum(self.catalog_costs))

    @property
    def unpriced(self) -> int:
        """Invocations no price version covered."""
        return self.invocations - self.priced

    def extra_counters(self) -> tuple[int, ...]:
        """The counters added after the first release, in `EXTRA_COUNTER_NAMES` order."""
        return (self.cache_read_tokens, self.cache_write_tokens, self.audio_input_tokens,
                self.reasoning_tokens, self.audio_output_tokens, *self.catalog_costs,
                self.priced)

    @property
    def failures(self) -> int:
        """error + timeout + throttled."""
        return self.errors + self.timeouts + self.throttled

    @property
    def error_rate(self) -> float:
        """(error + timeout + throttled) / invocations; 0.0 with no invocations."""
        return self.failures / self.invocations if self.invocations else 0.0

    def percentile(self, q: float) -> float | None:
        """Latency quantile within 1 % of the exact nearest-rank value; None when empty."""
        estimate = self.sketch.quantile(q)
        if estimate is None or self.latency_min is None or self.latency_max is None:
            return estimate
        return min(max(estimate, float(self.latency_min)), float(self.latency_max))


@attrs.frozen
class Rollup:
    """One base bucket: key and statistics."""

    key: RollupKey
    stats: RollupStats


def merge_stats(items: Iterable[RollupStats]) -> RollupStats:
    """Merge many statistics in one pass (exact for every additive field)."""
    acc = _Accumulator()
    sketches: list[LatencySketch] = []
    for s in items:
        acc.add_stats(s)
        sketches.append(s.sketch)
    return acc.freeze(merge_sketches(sketches))


def merge_error_codes(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    """Add two error-code count maps, folding the smallest into "(other)" past the cap."""
    out = dict(a)
    for code, n in b.items():
        out[code] = out.get(code, 0) + n
    return _cap(out)


def _cap(codes: dict[str, int]) -> dict[str, int]:
    if len(codes) <= MAX_ERROR_CODES_PER_ROLLUP:
        return codes
    ranked = sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))
    keep = dict(ranked[: MAX_ERROR_CODES_PER_ROLLUP - 1])
    rest = sum(n for _, n in ranked[MAX_ERROR_CODES_PER_ROLLUP - 1 :])
    keep[OTHER_ERROR_CODE] = keep.get(OTHER_ERROR_CODE, 0) + rest
    return keep


class _Accumulator:
    """Mutable scratch space used only inside this module to build frozen stats fast."""

    def __init__(self) -> None:
        # invocations success errors timeouts throttled in out, then the extra counters
        self.counts = [0] * (7 + len(EXTRA_COUNTER_NAMES))
        self.cost = 0
        self.lat_sum = 0
        self.lat_min: int | None = None
        self.lat_max: int | None = None
        self.codes: dict[str, int] = {}
        self.zeros = 0
        self.bins: dict[int, int] = {}

    def add_event(self, e: UsageEvent, price: EventPrice | None = None) -> None:
        c = self.counts
        if price is not None:
            costs = price.costs
            c[12] += costs[0]
            c[13] += costs[1]
            c[14] += costs[2]
            c[15] += costs[3]
            c[16] += costs[4]
            c[17] += costs[5]
            c[18] += costs[6]
            c[19] += 1
        c[0] += 1
        c[_STATUS_SLOT[e.status]] += 1
        c[5] += e.input_tokens
        c[6] += e.output_tokens
        details = e.token_details
        if details is not NO_TOKEN_DETAILS:
            c[7] += details.cache_read
            c[8] += details.cache_write
            c[9] += details.audio_input
            c[10] += details.reasoning
            c[11] += details.audio_output
        self.cost += e.cost.units
        latency = e.latency_ms
        # self._latency(latency, latency, latency), inlined: this runs once per ingested event
        self.lat_sum += latency
        self.lat_min = latency if self.lat_min is None else min(self.lat_min, latency)
        self.lat_max = latency if self.lat_max is None else max(self.lat_max, latency)
        if latency <= 0:
            self.zeros += 1
        else:
            i = bin_index(latency)
            self.bins[i] = self.bins.get(i, 0) + 1
        if e.status is not Status.SUCCESS and e.error_code:
            self.codes[e.error_code] = self.codes.get(e.error_code, 0) + 1

    def add_stats(self, s: RollupStats) -> None:
        c = self.counts
        c[0] += s.invocations
        c[1] += s.success
        c[2] += s.errors
        c[3] += s.timeouts
        c[4] += s.throttled
        c[5] += s.input_tokens
        c[6] += s.output_tokens
        for i, n in enumerate(s.extra_counters(), 7):
            c[i] += n
        self.cost += s.cost.units
        if s.latency_min is not None and s.latency_max is not None:
            self._latency(s.latency_sum, s.latency_min, s.latency_max)
        for code, n in s.error_codes.items():
            self.codes[code] = self.codes.get(code, 0) + n

    def _latency(self, total: int, low: int, high: int) -> None:
        self.lat_sum += total
        self.lat_min = low if self.lat_min is None else min(self.lat_min, low)
        self.lat_max = high if self.lat_max is None else max(self.lat_max, high)

    def freeze(self, sketch: LatencySketch | None = None) -> RollupStats:
        c = self.counts
        return RollupStats(
            invocations=c[0], success=c[1], errors=c[2], timeouts=c[3], throttled=c[4],
            input_tokens=c[5], output_tokens=c[6], cost=Cents(self.cost),
            latency_sum=self.lat_sum, latency_min=self.lat_min, latency_max=self.lat_max,
            sketch=sketch if sketch is not None else LatencySketch(self.zeros, self.bins),
            error_codes=_cap(self.codes), **extra_fields(c[7:]),
        )


EXTRA_COUNTER_NAMES = (
    *TOKEN_DETAIL_NAMES, *(f"catalog_{name}_units" for name in (
        "input", "cache_read", "cache_write", "audio_input", "output", "reasoning",
        "audio_output")), "priced_invocations",
)
"""Names (columns) of `RollupStats.extra_counters`: token categories, catalog cost per price
category, priced invocations."""


def extra_fields(values: Sequence[int]) -> dict[str, Any]:
    """RollupStats keyword arguments of extra counter values in `EXTRA_COUNTER_NAMES` order."""
    v = [int(x) for x in values]
    return {"cache_read_tokens": v[0], "cache_write_tokens": v[1], "audio_input_tokens": v[2],
            "reasoning_tokens": v[3], "audio_output_tokens": v[4],
            "catalog_costs": tuple(v[5:12]), "priced": v[12]}


_STATUS_SLOT = {Status.SUCCESS: 1, Status.ERROR: 2, Status.TIMEOUT: 3, Status.THROTTLED: 4}


def stats_of(
    events: Iterable[UsageEvent], prices: Iterable[EventPrice | None] | None = None
) -> RollupStats:
    """Statistics of a set of events (priced by `prices`, one per event, when given)."""
    acc = _Accumulator()
    if prices is None:
        for e in events:
            acc.add_event(e)
    else:
        for e, price in zip(events, prices, strict=True):
            acc.add_event(e, price)
    return acc.freeze()


def build_rollups(
    events: Iterable[UsageEvent], prices: Sequence[EventPrice | None] | None = None
) -> list[Rollup]:
    """Group events into base-bucket rollup deltas, sorted by key (stable lock order for SQL);
    `prices` (one per event) adds their catalog costs."""
    events = events if isinstance(events, Sequence) else list(events)
    return build_group_rollups(events, prices, [(e.client_id or NO_CLIENT,) for e in events])


def build_group_rollups(
    events: Sequence[UsageEvent], prices: Sequence[EventPrice | None] | None,
    groups: Sequence[Sequence[str]],
) -> list[Rollup]:
    """Rollup deltas keyed by a group per event and dimension instead of the client: event i
    counts once in each of `groups[i]` (the attribution rollups). Sorted by key."""
    # Grouped by the ids' integers and the bucket's epoch second (`floor_bucket` before its
    # datetime): they hash and sort in C, in the same order as the UUIDs and datetimes.
    # Most attribution keys hold one event (one key per dimension for each event of a small
    # org): such a key gets that event's own stats, built once and shared by its dimensions
    # (stats are immutable); only keys with several events accumulate.
    price = [None] * len(events) if prices is None else prices
    first: dict[tuple[int, int, str, int], int] = {}  # key -> index of its first event
    accs: dict[tuple[int, int, str, int], _Accumulator] = {}  # keys with several events
    for i, e in enumerate(events):
        org, model = e.org_id.int, e.model_id.int
        second = int(e.occurred_at.timestamp() // _BUCKET_SECONDS) * _BUCKET_SECONDS
        for group in groups[i]:
            key = (org, model, group, second)
            j = first.setdefault(key, i)
            if j == i:
                continue
            acc = accs.get(key)
            if acc is None:
                acc = accs[key] = _Accumulator()
                acc.add_event(events[j], price[j])
            acc.add_event(e, price[i])
    alone: dict[int, RollupStats] = {}
    out = []
    for k in sorted(first):
        i = first[k]
        acc = accs.get(k)
        if acc is not None:
            stats = acc.freeze()
        elif i in alone:
            stats = alone[i]
        else:
            stats = alone[i] = stats_of((events[i],), (price[i],))
        e = events[i]
        out.append(Rollup(RollupKey(e.org_id, e.model_id, k[2],
                                    datetime.fromtimestamp(k[3], UTC)), stats))
    return out


GROUP_BY_VALUES = ("model", "client", "none")
AggregateCell = tuple[datetime, str | None, RollupStats]


def group_key(rollup: Rollup, group_by: str) -> str | None:
    """The series key of a rollup: model id as text, client id, or None."""
    if group_by == "model":
        return str(rollup.key.model_id)
    if group_by == "client":
        return rollup.key.client_id
    return None


def aggregate_rollups(
    rollups: Iterable[Rollup], boundaries: Sequence[datetime], group_by: str,
    latency: bool = True,
) -> list[AggregateCell]:
    """Merge rollups into (period, group) cells: period i holds the rollups with
    boundaries[i] <= bucket_start < boundaries[i+1]. Ordered by (period start, group); cells
    without data are omitted; with `latency=False` sketches and error codes are left empty.

    This is the reference semantics of `RollupStore.aggregate`.
    """
    if group_by not in GROUP_BY_VALUES:
        raise ValueError(f"group_by must be one of {GROUP_BY_VALUES}")
    cells: dict[tuple[int, str | None], list[RollupStats]] = {}
    last = len(boundaries) - 1
    for r in rollups:
        period = bisect.bisect_right(boundaries, r.key.bucket_start) - 1
        if 0 <= period < last:
            cells.setdefault((period, group_key(r, group_by)), []).append(r.stats)
    out: list[AggregateCell] = []
    for (period, group), stats in sorted(cells.items(), key=lambda c: (c[0][0], c[0][1] or "")):
        merged = merge_stats(stats)
        if not latency:
            merged = attrs.evolve(merged, sketch=LatencySketch(), error_codes={})
        out.append((boundaries[period], group, merged))
    return out
