"""FinOps FOCUS 1.2 rows of AI inference usage (SPEC §15, `kind=focus` exports).

One row per charge period (an hour, a day or a month of the export's zone, written as UTC
instants), org, model, token category, price version, client and attribution tags, built from
the raw events so that every row has exactly one price:

- **ConsumedQuantity** is the category's tokens (`Tokens`); **PricingQuantity** the same in
  millions (`1000000 Tokens`), and the unit prices are the catalog's USD per million tokens.
- **ContractedUnitPrice** is the price of the version that priced the events (the org's own
  line when it has one in effect: a negotiated rate, else the global line, SPEC §12);
  **ListUnitPrice** the global line's price at the same instant (the contracted one when the
  model has no global price). **ListCost** and **ContractedCost** are unit price x pricing
  quantity exactly, as FOCUS defines them.
- **BilledCost** and **EffectiveCost** are the catalog cost as the product computes it for every
  event (each event and category rounded half-even to 0.0001 cent), so their sum equals the
  usage API's `catalogCostCents` for the same window exactly; they differ from ContractedCost
  by that rounding only.
- Events no price covered have no unit price and are left out (FOCUS requires one on usage
  rows): the manifest counts them (`unpricedInvocations`).
- Amounts are exact decimals with at least one decimal place (the validator reads a column of
  bare integers as integers); null is an empty cell.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

import attrs

from analytics_core.events import UsageEvent
from analytics_core.prices import (
    CATEGORIES,
    Catalog,
    PriceCategory,
    PriceVersion,
    category_costs,
    category_tokens,
)
from analytics_core.timegrid import Grain, floor_bucket, period_end, period_start

FOCUS_COLUMNS: tuple[str, ...] = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "CommitmentDiscountStatus", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
    "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName", "ListCost",
    "ListUnitPrice", "PricingCategory", "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "ResourceId", "ResourceName",
    "ResourceType", "ServiceCategory", "ServiceName",
    "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId", "SubAccountId",
    "SubAccountName", "Tags", "x_ModelId", "x_ModelName", "x_TokenCategory",
    "x_PriceVersionId",
)
"""The columns, in file order (docs/exports.md has the dictionary)."""

APPLICABILITY = ("ACCOUNT_NAMING_SUPPORTED", "PUBLIC_PRICE_LIST_SUPPORTED",
                 "UNIT_PRICING_SUPPORTED", "USAGE_MEASUREMENT_SUPPORTED",
                 "NEGOTIATED_PRICING_SUPPORTED", "MULTIPLE_PRICING_CATEGORIES_SUPPORTED",
                 "SUB_ACCOUNT_SUPPORTED", "TAGGING_SUPPORTED",
                 "BILLING_BASED_ON_PROVISIONED_RESOURCES_SUPPORTED",
                 "RESOURCE_TYPE_ASSIGNMENT_SUPPORTED")
"""The FOCUS applicability criteria these files support (what a validator is told)."""

SERVICE_CATEGORY = "AI and Machine Learning"
SERVICE_SUBCATEGORY = "Generative AI"
PRICING_UNIT = "1000000 Tokens"
RESOURCE_TYPE = "Model"  # the resource a token is consumed on: the model, by id
METERS = {
    PriceCategory.INPUT: "Input Tokens", PriceCategory.CACHE_READ: "Cache Read Tokens",
    PriceCategory.CACHE_WRITE: "Cache Write Tokens",
    PriceCategory.AUDIO_INPUT: "Audio Input Tokens", PriceCategory.OUTPUT: "Output Tokens",
    PriceCategory.REASONING: "Reasoning Tokens",
    PriceCategory.AUDIO_OUTPUT: "Audio Output Tokens",
}
_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@attrs.frozen
class FocusContext:
    """What a file needs besides the events: who issues it, the names, the tags and the zone."""

    org_id: uuid.UUID
    start: datetime  # the export window; charge periods are cut to it
    end: datetime
    tz: tzinfo
    grain: Grain
    catalog: Catalog
    provider: str
    service: str
    model_names: Mapping[uuid.UUID, str] = attrs.Factory(dict)
    model_providers: Mapping[uuid.UUID, str] = attrs.Factory(dict)
    client_names: Mapping[str, str] = attrs.Factory(dict)
    tag_keys: tuple[str, ...] = ()


_Key = tuple[datetime, uuid.UUID, int, uuid.UUID, uuid.UUID, str | None, str]


@attrs.define
class _Sums:
    tokens: int = 0
    billed_units: int = 0


@attrs.define
class FocusSums:
    """Per-row sums of a file's events, the versions they used, and the totals."""

    rows: dict[_Key, _Sums] = attrs.Factory(dict)
    versions: dict[uuid.UUID, PriceVersion] = attrs.Factory(dict)
    priced_events: int = 0
    unpriced_events: int = 0

    @property
    def billed_units(self) -> int:
        """The billed (catalog) cost of every row, in 0.0001-cent units."""
        return sum(s.billed_units for s in self.rows.values())


def _dec(value: Decimal) -> str:
    text = f"{value:f}"
    if "." not in text:
        return text + ".0"
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text


def usd(units: int) -> str:
    """Money units (0.0001 cent) as exact USD with at least one decimal place."""
    return _dec(Decimal(units).scaleb(-6))


def unit_price(micros: int) -> str:
    """A price in micro-dollars per million tokens as USD per million tokens."""
    return _dec(Decimal(micros).scaleb(-6))


def _list_version(catalog: Catalog, event: UsageEvent, contracted: PriceVersion) -> PriceVersion:
    if contracted.org_id is None:
        return contracted
    listed = catalog.global_version(event.model_id, event.occurred_at)
    return contracted if listed is None else listed


def _tags(event: UsageEvent, keys: Sequence[str]) -> str:
    found = {k: event.metadata[k] for k in keys if k in event.metadata}
    return _JSON.encode(found) if found else ""


def aggregate(events: Iterable[UsageEvent], ctx: FocusContext,
              into: FocusSums | None = None) -> FocusSums:
    """Add events to the per-row sums (a new FocusSums unless `into` is given)."""
    out = FocusSums() if into is None else into
    sums, versions = out.rows, out.versions
    periods: dict[datetime, datetime] = {}
    for event in events:
        contracted = ctx.catalog.version_for(event.org_id, event.model_id, event.occurred_at)
        if contracted is None:
            out.unpriced_events += 1
            continue
        out.priced_events += 1
        listed = _list_version(ctx.catalog, event, contracted)
        versions[contracted.version_id] = contracted
        versions[listed.version_id] = listed
        bucket = floor_bucket(event.occurred_at)
        start = periods.get(bucket)
        if start is None:
            start = periods[bucket] = period_start(bucket, ctx.grain, ctx.tz)
        tags = _tags(event, ctx.tag_keys)
        costs = category_costs(event, contracted)
        for i, tokens in enumerate(category_tokens(event)):
            if not tokens:
                continue
            key = (start, event.model_id, i, contracted.version_id, listed.version_id,
                   event.client_id, tags)
            s = sums.get(key)
            if s is None:
                s = sums[key] = _Sums()
            s.tokens += tokens
            s.billed_units += costs[i]
    return out


def _billing_period(start: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    month = period_start(start, Grain.MONTH, tz)
    return month, period_end(month, Grain.MONTH, tz)


def focus_rows(sums: FocusSums, ctx: FocusContext) -> Iterator[list[str]]:
    """One row per key, ordered by charge period, model, category, version, client, tags."""
    versions = sums.versions
    for key in sorted(sums.rows, key=lambda k: (k[0], str(k[1]), k[2], str(k[3]), k[5] or "",
                                                k[6])):
        start, model_id, index, contracted_id, list_id, client, tags = key
        s = sums.rows[key]
        category = CATEGORIES[index]
        contracted, listed = versions[contracted_id], versions[list_id]
        c_micros, l_micros = contracted.price(category), listed.price(category)
        end = min(period_end(start, ctx.grain, ctx.tz), ctx.end)
        bill_start, bill_end = _billing_period(start, ctx.tz)
        start = max(start, ctx.start)
        quantity = Decimal(s.tokens).scaleb(-6)
        list_cost = _dec(Decimal(s.tokens * l_micros).scaleb(-6 - 6))
        contracted_cost = _dec(Decimal(s.tokens * c_micros).scaleb(-6 - 6))
        billed = usd(s.billed_units)
        name = ctx.model_names.get(model_id, str(model_id))
        meter = METERS[category]
        details = _JSON.encode({"x_ListPriceVersionId": str(list_id),
                                "x_PriceVersionId": str(contracted_id),
                                "x_TokenCategory": category.value})
        yield [
            billed, str(ctx.org_id), str(ctx.org_id), "USD", _utc(bill_end), _utc(bill_start),
            "Usage", "", f"{name} {meter.lower()}", "Usage-Based", _utc(end), _utc(start), "",
            f"{s.tokens}.0", "Tokens", contracted_cost, unit_price(c_micros), billed, "",
            ctx.provider, list_cost, unit_price(l_micros), "Standard", unit_price(c_micros),
            billed, unit_price(l_micros), _dec(quantity), PRICING_UNIT, ctx.provider,
            ctx.model_providers.get(model_id) or ctx.provider, str(model_id), name,
            RESOURCE_TYPE, SERVICE_CATEGORY, ctx.service,
            SERVICE_SUBCATEGORY, f"{model_id}:{category.value}", meter, details,
            f"{contracted_id}:{category.value}", client or "",
            "" if client is None else ctx.client_names.get(client, client), tags,
            str(model_id), name, category.value, str(contracted_id),
        ]


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
