"""Invoice reconciliation (SPEC §15): read a provider's cost report, meter the same days in a
zone, compare by day and model, keep the result, and serve it again as lines or CSV.

The metered side is the usage report (`Usage`, the very use case behind GET /usage) for whole
local days from the invoice's first to its last day, grouped by model: the same numbers the
API shows for that window and zone. Invoice model texts resolve through the model registry
(display names and aliases, compared as the registry compares labels) or as a model id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import attrs

from analytics_core.errors import FieldError, NotFound, ValidationFailed
from analytics_core.ports import Clock, IdGenerator, UnitOfWorkFactory
from analytics_core.reconciliation import (
    ColumnMapping,
    Metered,
    Reconciliation,
    ReconciliationLine,
    parse_invoice,
    reconcile,
    report_csv,
)
from analytics_core.reconciliation_runs import Basis, ReconciliationRun
from analytics_core.registry import label_key, label_owners
from analytics_core.timegrid import Grain, zone, zone_error
from analytics_core.usecases.paging import cut
from analytics_core.usecases.queries import AnalyticsQuery, AnalyticsReport, GroupBy

Usage = Callable[[AnalyticsQuery], AnalyticsReport]
Cursor = tuple[datetime, uuid.UUID]
MAX_PAGE = 200
MAX_NAME = 200
MAX_TOLERANCE = Decimal(1000)
DEFAULT_TOLERANCE = Decimal(1)


@attrs.frozen
class ReconcileRequest:
    """What to reconcile: the report's bytes, how to read them, and how to compare."""

    org_id: uuid.UUID
    data: bytes
    mapping: ColumnMapping = attrs.Factory(ColumnMapping)
    tz: str = "UTC"
    tolerance_percent: Decimal = DEFAULT_TOLERANCE
    basis: Basis = Basis.CATALOG
    name: str = ""

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        reason = zone_error(self.tz)
        if reason is not None:
            errors.append(FieldError("tz", reason))
        t = self.tolerance_percent
        if not t.is_finite() or not Decimal(0) <= t <= MAX_TOLERANCE:
            errors.append(FieldError("tolerancePercent",
                                     f"must be a number from 0 to {MAX_TOLERANCE}"))
        if len(self.name) > MAX_NAME or not self.name.isprintable():
            errors.append(FieldError("name", f"must be at most {MAX_NAME} printable characters"))
        if errors:
            raise ValidationFailed(errors, "invalid reconciliation")


@attrs.frozen
class RunPage:
    """Runs newest first, and the cursor of the next page (None on the last)."""

    runs: tuple[ReconciliationRun, ...]
    next_cursor: Cursor | None


@attrs.frozen
class KeptReconciliation:
    """A kept run with its lines, in report order."""

    run: ReconciliationRun
    lines: tuple[ReconciliationLine, ...]

    def csv(self) -> bytes:
        """The report as CSV (analytics_core.reconciliation.report_csv)."""
        report = Reconciliation(self.lines, self.run.metered_total, self.run.invoiced_total,
                                self.run.tolerance_percent)
        return report_csv(report, timezone=self.run.tz)


def _local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone(tz))


def metered_days(request: ReconcileRequest, first: date, last: date, usage: Usage
                 ) -> tuple[dict[tuple[date, uuid.UUID], Metered], AnalyticsReport]:
    """The org's usage per (local day, model) from `first` to `last`, both included."""
    query = AnalyticsQuery(request.org_id, _local_midnight(first, request.tz),
                           _local_midnight(last + timedelta(days=1), request.tz),
                           grain=Grain.DAY, tz=request.tz, group_by=GroupBy.MODEL)
    report = usage(query)
    local = zone(request.tz)
    metered: dict[tuple[date, uuid.UUID], Metered] = {}
    for point in report.series:
        if point.group is None:
            continue
        s = point.stats
        cost = s.catalog_cost if request.basis is Basis.CATALOG else s.cost
        key = (point.bucket_start.astimezone(local).date(), uuid.UUID(point.group))
        metered[key] = Metered(cost, s.input_tokens, s.output_tokens, s.invocations)
    return metered, report


def reconcile_invoice(request: ReconcileRequest, created_by: str, *,
                      uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator,
                      usage: Usage) -> KeptReconciliation:
    """Parse, meter, compare and keep; ValidationFailed names every bad row or field (and
    nothing is kept)."""
    lines = parse_invoice(request.data, request.mapping)
    first, last = min(line.day for line in lines), max(line.day for line in lines)
    metered, report = metered_days(request, first, last, usage)
    with uow_factory() as uow:
        entries = uow.models.all()
    owners = label_owners(entries)
    names = {e.model_id: e.name for e in entries}

    def resolve(text: str) -> uuid.UUID | None:
        found = owners.get(label_key(text))
        if found is not None:
            return found
        try:
            return uuid.UUID(text)
        except ValueError:
            return None

    result = reconcile(lines, metered, resolve=resolve,
                       label=lambda model_id: names.get(model_id, str(model_id)),
                       tolerance_percent=request.tolerance_percent)
    run = ReconciliationRun(
        ids.new_id(), request.org_id, clock.now(), created_by, request.name, request.tz,
        request.basis, request.tolerance_percent, request.mapping, first, last,
        result.metered_total, result.invoiced_total, len(result.lines), len(result.flagged),
        report.freshness.complete_through,
    )
    with uow_factory() as uow:
        uow.reconciliations.add(run, result.lines)
        uow.commit()
    return KeptReconciliation(run, result.lines)


def list_reconciliations(org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory,
                         limit: int = 50, before: Cursor | None = None) -> RunPage:
    """A page of the org's runs, newest first."""
    limit = max(1, min(limit, MAX_PAGE))
    with uow_factory() as uow:
        found = uow.reconciliations.page(org_id, limit=limit + 1, before=before)
    return RunPage(*cut(found, limit, lambda r: (r.created_at, r.reconciliation_id)))


def get_reconciliation(org_id: uuid.UUID, reconciliation_id: uuid.UUID, *,
                       uow_factory: UnitOfWorkFactory) -> KeptReconciliation:
    """One kept run with its lines; NotFound outside the org."""
    with uow_factory() as uow:
        run = uow.reconciliations.get(org_id, reconciliation_id)
        lines = uow.reconciliations.lines(org_id, reconciliation_id) if run else []
    if run is None:
        raise NotFound(f"reconciliation {reconciliation_id} not found")
    return KeptReconciliation(run, tuple(lines))
