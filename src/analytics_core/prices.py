"""The price catalog (SPEC §12): effective-dated, immutable price versions and catalog cost.

A price version gives, for one model, a price per token category in USD per million tokens,
effective from an instant until the next version of the same line. A line is the global
prices of a model, or one org's override of them (negotiated rates). Versions never change:
a correction is a new version that `supersedes` an earlier one of the same line.

Money stays exact. A price is held as an integer count of micro-dollars per million tokens
(at most 6 decimal places of USD), and 1 USD per million tokens is exactly 1 unit (0.0001
cent) per token, so the catalog cost of `n` tokens at price `p` micro-dollars is `n * p / 10**6`
units, rounded half-even to a whole unit per event and category. An event's catalog cost is the
sum of its category costs, so category totals always add up to the total.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum

import attrs

from analytics_core.events import UsageEvent, as_utc

PRICE_SCALE = 10**6
MAX_PRICE_MICROS = 10**6 * PRICE_SCALE  # USD 1,000,000 per million tokens


class PriceCategory(StrEnum):
    """The priced token categories, in `category_tokens` order."""

    INPUT = "input"  # input tokens that are none of the three input parts
    CACHE_READ = "cacheRead"
    CACHE_WRITE = "cacheWrite"
    AUDIO_INPUT = "audioInput"
    OUTPUT = "output"  # output tokens that are neither reasoning nor audio
    REASONING = "reasoning"
    AUDIO_OUTPUT = "audioOutput"


CATEGORIES = tuple(PriceCategory)
REQUIRED = (PriceCategory.INPUT, PriceCategory.OUTPUT)
# A category a version leaves out costs what its side's plain tokens cost.
FALLBACK = {
    PriceCategory.CACHE_READ: PriceCategory.INPUT,
    PriceCategory.CACHE_WRITE: PriceCategory.INPUT,
    PriceCategory.AUDIO_INPUT: PriceCategory.INPUT,
    PriceCategory.REASONING: PriceCategory.OUTPUT,
    PriceCategory.AUDIO_OUTPUT: PriceCategory.OUTPUT,
}
ZERO_COSTS = (0,) * len(CATEGORIES)


def price_micros(value: object) -> int:
    """A price in USD per million tokens (int, Decimal or decimal string) as micro-dollars.

    ValueError for negatives, floats, more than 6 decimal places or more than USD 1,000,000.
    """
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValueError("must be a decimal number of USD per million tokens")
    try:
        amount = Decimal(value)
    except InvalidOperation as e:
        raise ValueError("must be a decimal number of USD per million tokens") from e
    if not amount.is_finite() or amount < 0:
        raise ValueError("must be a decimal number >= 0")
    scaled = amount * PRICE_SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError("must have at most 6 decimal places")
    micros = int(scaled)
    if micros > MAX_PRICE_MICROS:
        raise ValueError("must be at most 1000000 (USD per million tokens)")
    return micros


def price_text(micros: int) -> str:
    """Micro-dollars as the shortest exact decimal string of USD, e.g. '0.15'."""
    text = f"{Decimal(micros) / PRICE_SCALE:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@attrs.frozen
class PriceVersion:
    """One immutable version of a line's prices."""

    version_id: uuid.UUID
    model_id: uuid.UUID
    org_id: uuid.UUID | None  # None: the global line
    effective_from: datetime = attrs.field(converter=as_utc)
    prices: Mapping[PriceCategory, int]  # micro-dollars per million tokens
    created_at: datetime = attrs.field(converter=as_utc)
    created_by: str
    supersedes: uuid.UUID | None = None
    note: str = ""

    def price(self, category: PriceCategory) -> int:
        """The price of a category, falling back to its side's plain price."""
        found = self.prices.get(category)
        if found is None:
            found = self.prices[FALLBACK[category]]
        return found

    @property
    def line(self) -> tuple[uuid.UUID | None, uuid.UUID]:
        """(org_id or None, model_id)."""
        return (self.org_id, self.model_id)


def category_tokens(event: UsageEvent) -> tuple[int, ...]:
    """The event's tokens per category, in `CATEGORIES` order (they add up to its totals)."""
    d = event.token_details
    return (
        event.input_tokens - d.input_parts, d.cache_read, d.cache_write, d.audio_input,
        event.output_tokens - d.output_parts, d.reasoning, d.audio_output,
    )


def _units(tokens: int, micros: int) -> int:
    """tokens * micros / 10**6 units, rounded half-even."""
    q, r = divmod(tokens * micros, PRICE_SCALE)
    twice = 2 * r
    if twice > PRICE_SCALE or (twice == PRICE_SCALE and q % 2):
        q += 1
    return q


def category_costs(event: UsageEvent, version: PriceVersion) -> tuple[int, ...]:
    """Catalog cost per category in units of 0.0001 cent, in `CATEGORIES` order."""
    return tuple(
        _units(tokens, version.price(category)) if tokens else 0
        for tokens, category in zip(category_tokens(event), CATEGORIES, strict=True)
    )


def decimal_cost(event: UsageEvent, version: PriceVersion) -> Decimal:
    """The reference computation of an event's catalog cost, in cents, with Decimal (tests and
    docs hold `category_costs` to it): each category rounded half-even to 0.0001 cent."""
    total = Decimal(0)
    for tokens, category in zip(category_tokens(event), CATEGORIES, strict=True):
        usd = Decimal(tokens) * Decimal(version.price(category)) / PRICE_SCALE / PRICE_SCALE
        total += (usd * 100).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)
    return total


@attrs.frozen
class Catalog:
    """The live versions of every line, resolved by instant.

    A version is live unless a later one supersedes it. At instant `t` an org's event is priced
    by its org's own line when that line has a version in effect at `t` (the latest live one
    with effective_from <= t), else by the global line; with neither, it is unpriced.
    """

    versions: tuple[PriceVersion, ...] = ()
    _lines: dict[tuple[uuid.UUID | None, uuid.UUID], tuple[list[datetime], list[PriceVersion]]] = (
        attrs.field(init=False, eq=False, repr=False)
    )

    def __attrs_post_init__(self) -> None:
        superseded = {v.supersedes for v in self.versions if v.supersedes is not None}
        lines: dict[tuple[uuid.UUID | None, uuid.UUID], list[PriceVersion]] = {}
        for v in self.versions:
            if v.version_id not in superseded:
                lines.setdefault(v.line, []).append(v)
        resolved = {}
        for line, items in lines.items():
            items.sort(key=lambda v: (v.effective_from, v.created_at))
            resolved[line] = ([v.effective_from for v in items], items)
        object.__setattr__(self, "_lines", resolved)

    @classmethod
    def of(cls, versions: Iterable[PriceVersion]) -> Catalog:
        """The catalog of these versions."""
        return cls(tuple(versions))

    def live(self, line: tuple[uuid.UUID | None, uuid.UUID]) -> Sequence[PriceVersion]:
        """The live versions of a line by effective_from."""
        found = self._lines.get(line)
        return found[1] if found else ()

    def _in_line(self, line: tuple[uuid.UUID | None, uuid.UUID], at: datetime
                 ) -> PriceVersion | None:
        found = self._lines.get(line)
        if found is None:
            return None
        i = bisect.bisect_right(found[0], at) - 1
        return found[1][i] if i >= 0 else None

    def version_for(self, org_id: uuid.UUID, model_id: uuid.UUID, at: datetime
                    ) -> PriceVersion | None:
        """The version pricing an event of `org_id` and `model_id` at `at`, or None."""
        own = self._in_line((org_id, model_id), at)
        return own if own is not None else self._in_line((None, model_id), at)

    def global_version(self, model_id: uuid.UUID, at: datetime) -> PriceVersion | None:
        """The global line's version in effect for a model at `at` (its list price), or None."""
        return self._in_line((None, model_id), at)

    def price(self, event: UsageEvent) -> EventPrice | None:
        """The event's catalog price, or None when no version covers it."""
        version = self.version_for(event.org_id, event.model_id, event.occurred_at)
        if version is None:
            return None
        return EventPrice(version.version_id, category_costs(event, version))

    def overlapping(self, org_id: uuid.UUID, model_id: uuid.UUID, start: datetime,
                    end: datetime) -> list[PriceVersion]:
        """The versions in effect for an org's model at some instant of [start, end)."""
        out: list[PriceVersion] = []
        for line in ((org_id, model_id), (None, model_id)):
            items = self.live(line)
            for i, v in enumerate(items):
                until = items[i + 1].effective_from if i + 1 < len(items) else None
                if v.effective_from < end and (until is None or until > start):
                    out.append(v)
        return out


@attrs.frozen
class EventPrice:
    """How one event was priced: the version and the cost per category (units)."""

    version_id: uuid.UUID
    costs: tuple[int, ...]

    @property
    def total(self) -> int:
        """The event's catalog cost in units of 0.0001 cent."""
        return sum(self.costs)
