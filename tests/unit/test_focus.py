"""FOCUS rows (analytics_core.focus) without the validator: exact FOCUS relations, billed cost
equal to the per-event catalog cost, negotiated and list prices, tags, clipping, unpriced
events left out and counted."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from analytics_adapters.localfs.object_store import LocalDirectoryObjectStore
from analytics_adapters.memory import (
    InMemoryStorage,
    ManualClock,
    SynchronousPipeline,
    unit_of_work_factory,
)
from analytics_adapters.system import RandomIds
from analytics_core.events import Status, TokenDetails, UsageEvent
from analytics_core.exports import ExportGranularity, ExportKind, ExportRequest
from analytics_core.focus import FOCUS_COLUMNS, FocusContext, aggregate, focus_rows
from analytics_core.money import Cents
from analytics_core.prices import Catalog, PriceCategory, PriceVersion
from analytics_core.timegrid import Grain
from analytics_core.usecases.export_runner import ExportRunner, ExportSettings
from analytics_core.usecases.exports import create_export
from tests.focus_validator import row_problems

ORG, MODEL, OTHER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
T0 = datetime(2024, 3, 10, tzinfo=UTC)


def version(org: uuid.UUID | None, input_micros: int, output_micros: int,
            model: uuid.UUID = MODEL) -> PriceVersion:
    """A version effective from long before T0."""
    return PriceVersion(uuid.uuid4(), model, org, T0 - timedelta(days=30),
                        {PriceCategory.INPUT: input_micros, PriceCategory.OUTPUT: output_micros},
                        T0 - timedelta(days=30), "test")


def usage(at: datetime, tokens_in: int, tokens_out: int, model: uuid.UUID = MODEL,
          **extra: object) -> UsageEvent:
    """A successful event of ORG."""
    return UsageEvent(uuid.uuid4(), ORG, model, at, Status.SUCCESS, 10, tokens_in, tokens_out,
                      Cents(0), **extra)  # type: ignore[arg-type]


def context(catalog: Catalog, tz: str = "UTC", tags: tuple[str, ...] = ()) -> FocusContext:
    """A daily file over [T0, T0 + 3 days)."""
    return FocusContext(ORG, T0, T0 + timedelta(days=3), ZoneInfo(tz), Grain.DAY, catalog,
                        "P", "S", tag_keys=tags)


def rendered(events: list[UsageEvent], ctx: FocusContext) -> tuple[bytes, list[dict[str, str]]]:
    """The CSV and its rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(FOCUS_COLUMNS)
    writer.writerows(focus_rows(aggregate(events, ctx), ctx))
    body = buffer.getvalue().encode()
    return body, list(csv.DictReader(io.StringIO(buffer.getvalue())))


@given(st.lists(st.tuples(st.integers(0, 3 * 86_399), st.integers(0, 10**7),
                          st.integers(0, 10**7)), min_size=1, max_size=30),
       st.integers(1, 10**9), st.integers(1, 10**9))
def test_relations_hold_and_billed_cost_is_the_per_event_catalog_cost(
    specs: list[tuple[int, int, int]], input_micros: int, output_micros: int,
) -> None:
    """ListCost = ListUnitPrice x PricingQuantity exactly, and the billed total is the sum of
    each event's catalog cost (rounded per event and category, as the rollups hold it)."""
    catalog = Catalog.of([version(None, input_micros, output_micros)])
    events = [usage(T0 + timedelta(seconds=s), i, o) for s, i, o in specs]
    body, rows = rendered(events, context(catalog))
    if rows:
        assert row_problems(body) == []
    prices = [catalog.price(e) for e in events]
    expected = sum(p.total for p in prices if p is not None)
    assert sum((Decimal(r["BilledCost"]) for r in rows), Decimal(0)) * 10**6 == expected


def test_a_negotiated_price_is_contracted_and_the_global_one_listed() -> None:
    """The org's line prices the events; ListUnitPrice is the global line's."""
    catalog = Catalog.of([version(None, 3_000_000, 15_000_000),
                          version(ORG, 2_400_000, 12_000_000)])
    _, rows = rendered([usage(T0, 1000, 10)], context(catalog))
    assert {(r["x_TokenCategory"], r["ContractedUnitPrice"], r["ListUnitPrice"],
             r["ContractedCost"], r["ListCost"]) for r in rows} == {
        ("input", "2.4", "3.0", "0.0024", "0.003"), ("output", "12.0", "15.0", "0.00012",
                                                     "0.00015")}


def test_unpriced_events_are_left_out_and_counted_and_tags_use_the_keys() -> None:
    """No row for a model without a price; Tags hold only the attribution keys."""
    catalog = Catalog.of([version(None, 1, 1)])
    events = [usage(T0, 5, 0, metadata={"team": "x", "secret": "y"}),
              usage(T0, 5, 0, model=OTHER)]
    ctx = context(catalog, tags=("team",))
    sums = aggregate(events, ctx)
    assert (sums.priced_events, sums.unpriced_events) == (1, 1)
    [row] = [dict(zip(FOCUS_COLUMNS, r, strict=True)) for r in focus_rows(sums, ctx)]
    assert row["Tags"] == '{"team":"x"}'


def test_charge_periods_are_local_days_cut_to_the_window() -> None:
    """In Asia/Kolkata a day starts at 18:30 UTC; the first period starts at the window."""
    catalog = Catalog.of([version(None, 1, 1)])
    _, rows = rendered([usage(T0 + timedelta(hours=1), 1, 0),
                        usage(T0 + timedelta(hours=20), 1, 0)], context(catalog, "Asia/Kolkata"))
    assert [(r["ChargePeriodStart"], r["ChargePeriodEnd"]) for r in rows] == [
        ("2024-03-10T00:00:00Z", "2024-03-10T18:30:00Z"),
        ("2024-03-10T18:30:00Z", "2024-03-11T18:30:00Z")]
    assert rows[0]["BillingPeriodStart"] == "2024-02-29T18:30:00Z"


def test_token_details_make_one_row_per_category() -> None:
    """Cache reads are their own SKU and meter, out of the plain input tokens."""
    catalog = Catalog.of([version(None, 1_000_000, 1_000_000)])
    event = usage(T0, 100, 0, token_details=TokenDetails(cache_read=40))
    _, rows = rendered([event], context(catalog))
    assert {(r["SkuMeter"], r["ConsumedQuantity"]) for r in rows} == {
        ("Input Tokens", "60.0"), ("Cache Read Tokens", "40.0")}


class Ticking(ManualClock):
    """Every reading is 20 seconds after the one before."""

    def now(self) -> datetime:
        self.advance(timedelta(seconds=20))
        return super().now()


def test_a_long_focus_scan_keeps_its_lease(tmp_path: Path) -> None:
    """FOCUS rows come only after every event is read: the runner renews its lease per batch
    of events, so a scan longer than the lease is not reclaimed by another worker."""

    storage, clock = InMemoryStorage(), Ticking(T0 + timedelta(days=4))
    uow_factory = unit_of_work_factory(storage)
    catalog = [version(None, 1, 1)]
    with uow_factory() as uow:
        uow.prices.add(catalog)
        uow.events.add_new([usage(T0 + timedelta(seconds=i), 1, 1) for i in range(5000)])
        uow.commit()
    request = ExportRequest(ORG, T0, T0 + timedelta(days=3), ExportGranularity.DAILY,
                            kind=ExportKind.FOCUS)
    create_export(request, initiated_by="test", idempotency_key=None, uow_factory=uow_factory,
                  clock=clock, ids=RandomIds())
    runner = ExportRunner("w", uow_factory, LocalDirectoryObjectStore(tmp_path), clock,
                          SynchronousPipeline(), ExportSettings(lease=timedelta(seconds=60)))
    done = runner.run_next()
    assert done is not None
    assert done.status.value == "succeeded"
    # Each clock reading is 20 s on and a lease is renewed once less than 30 s remain, so the
    # five 1,000-event batches renew it at least twice before any row is written: created (1),
    # claimed (2), renewed during the scan (>= 2 more), while writing (1), succeeded (1).
    assert done.version >= 6
