"""Kept invoice reconciliations (SPEC §15): one row per run, one per line, in report order;
and each org's own settings."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from analytics_adapters.sql.errors import translated
from analytics_adapters.sql.records import SqlRecordRepository
from analytics_adapters.sql.schema import org_settings, reconciliation_lines, reconciliations
from analytics_core.errors import Conflict
from analytics_core.money import Cents
from analytics_core.org_settings import OrgSettings
from analytics_core.reconciliation import ColumnMapping, LineStatus, ReconciliationLine
from analytics_core.reconciliation_runs import Basis, ReconciliationRun, mapping_fields

_LINE_BATCH = 1000


def _units(amount: Cents | None) -> str | None:
    return None if amount is None else str(amount.units)


def _cents(text: str | None) -> Cents | None:
    return None if text is None else Cents(int(text))


class SqlReconciliationStore(SqlRecordRepository):
    """Runs keyed by (org, id); lines keyed by (org, run, line number)."""

    @translated
    def add(self, run: ReconciliationRun, lines: Sequence[ReconciliationLine]) -> None:
        """Store a new run with its lines; Conflict when its id exists."""
        t = reconciliations
        stmt = self._insert(t).on_conflict_do_nothing().returning(t.c.reconciliation_id)
        row = {
            "org_id": run.org_id, "reconciliation_id": run.reconciliation_id,
            "created_at": run.created_at, "created_by": run.created_by, "name": run.name,
            "tz": run.tz, "basis": run.basis.value,
            "tolerance_percent": str(run.tolerance_percent),
            "mapping": mapping_fields(run.mapping), "first_day": run.first_day,
            "last_day": run.last_day, "metered_units": str(run.metered_total.units),
            "invoiced_units": str(run.invoiced_total.units), "line_count": run.line_count,
            "flagged_count": run.flagged_count, "complete_through": run.complete_through,
        }
        connection = self._write()
        if connection.execute(stmt, row).first() is None:
            raise Conflict(f"reconciliation {run.reconciliation_id} already exists")
        rows = [_line_row(run, number, line) for number, line in enumerate(lines)]
        for start in range(0, len(rows), _LINE_BATCH):
            connection.execute(reconciliation_lines.insert(), rows[start:start + _LINE_BATCH])

    @translated
    def get(self, org_id: uuid.UUID, reconciliation_id: uuid.UUID
            ) -> ReconciliationRun | None:
        """One run of the org."""
        t = reconciliations.c
        row = self._read().execute(sa.select(reconciliations).where(
            t.org_id == org_id, t.reconciliation_id == reconciliation_id)).one_or_none()
        return None if row is None else _run(row)

    @translated
    def page(self, org_id: uuid.UUID, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None) -> builtins.list[ReconciliationRun]:
        """The org's runs, newest first by (created_at, id)."""
        t = reconciliations.c
        stmt = sa.select(reconciliations).where(t.org_id == org_id)
        if before is not None:
            stmt = stmt.where(sa.tuple_(t.created_at, t.reconciliation_id) < sa.tuple_(
                sa.literal(before[0], t.created_at.type), sa.literal(before[1], sa.Uuid())))
        stmt = stmt.order_by(t.created_at.desc(), t.reconciliation_id.desc()).limit(
            max(limit, 0))
        return [_run(r) for r in self._read().execute(stmt)]

    @translated
    def lines(self, org_id: uuid.UUID, reconciliation_id: uuid.UUID
              ) -> builtins.list[ReconciliationLine]:
        """A run's lines in report order."""
        t = reconciliation_lines.c
        stmt = sa.select(reconciliation_lines).where(
            t.org_id == org_id, t.reconciliation_id == reconciliation_id).order_by(t.line_no)
        return [_line(r) for r in self._read().execute(stmt)]


def _line_row(run: ReconciliationRun, number: int, line: ReconciliationLine) -> dict[str, Any]:
    return {
        "org_id": run.org_id, "reconciliation_id": run.reconciliation_id, "line_no": number,
        "day": line.day, "model_id": line.model_id, "model": line.model,
        "status": line.status.value, "metered_units": _units(line.metered),
        "invoiced_units": _units(line.invoiced), "variance_units": str(line.variance.units),
        "variance_percent": None if line.variance_percent is None
        else str(line.variance_percent),
        "flagged": line.flagged, "metered_input_tokens": line.metered_input_tokens,
        "metered_output_tokens": line.metered_output_tokens,
        "metered_invocations": line.metered_invocations,
        "invoiced_input_tokens": line.invoiced_input_tokens,
        "invoiced_output_tokens": line.invoiced_output_tokens,
        "invoice_rows": list(line.rows),
    }


def _run(r: sa.Row[Any]) -> ReconciliationRun:
    return ReconciliationRun(
        r.reconciliation_id, r.org_id, r.created_at, r.created_by, r.name, r.tz,
        Basis(r.basis), Decimal(r.tolerance_percent), ColumnMapping.from_fields(r.mapping),
        r.first_day, r.last_day, Cents(int(r.metered_units)), Cents(int(r.invoiced_units)),
        r.line_count, r.flagged_count, r.complete_through,
    )


def _line(r: sa.Row[Any]) -> ReconciliationLine:
    return ReconciliationLine(
        r.day, r.model_id, r.model, LineStatus(r.status), _cents(r.metered_units),
        _cents(r.invoiced_units), Cents(int(r.variance_units)),
        None if r.variance_percent is None else Decimal(r.variance_percent), r.flagged,
        r.metered_input_tokens, r.metered_output_tokens, r.metered_invocations,
        r.invoiced_input_tokens, r.invoiced_output_tokens, tuple(r.invoice_rows),
    )


class SqlOrgSettingsStore(SqlRecordRepository):
    """One row per org that set anything."""

    @translated
    def get(self, org_id: uuid.UUID) -> OrgSettings | None:
        """The org's settings."""
        row = self._read().execute(sa.select(org_settings).where(
            org_settings.c.org_id == org_id)).one_or_none()
        return None if row is None else OrgSettings(row.org_id, row.tz, row.updated_at,
                                                     row.updated_by)

    @translated
    def put(self, settings: OrgSettings) -> None:
        """Store or replace (one upsert)."""
        values = {"org_id": settings.org_id, "tz": settings.tz,
                  "updated_at": settings.updated_at, "updated_by": settings.updated_by or ""}
        stmt = self._insert(org_settings).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["org_id"],
            set_={"tz": stmt.excluded.tz, "updated_at": stmt.excluded.updated_at,
                  "updated_by": stmt.excluded.updated_by})
        self._write().execute(stmt)

    @translated
    def zones(self) -> dict[uuid.UUID, str]:
        """Every org's zone."""
        rows = self._read().execute(sa.select(org_settings.c.org_id, org_settings.c.tz))
        return {r.org_id: r.tz for r in rows}
