"""Invoice reconciliations (SPEC §15): upload a provider's cost report as CSV, list the kept
runs, read one with its lines, download it as CSV. Finance grants: exports:create to run one,
exports:read to read them, exports:download for the CSV."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation

import falcon

from analytics_app.http.auth import Guard, actor_of
from analytics_app.http.bodies import read_csv
from analytics_app.http.params import QueryReader, path_uuid
from analytics_app.http.render import reconciliation_body
from analytics_app.http.resources.exports import cursor_param, encode_cursor
from analytics_app.http.routes import PREFIX
from analytics_core.access import Action
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.reconciliation import ColumnMapping
from analytics_core.reconciliation_runs import Basis
from analytics_core.usecases.reconciliations import (
    DEFAULT_TOLERANCE,
    MAX_PAGE,
    KeptReconciliation,
    ReconcileRequest,
    RunPage,
)

Cursor = tuple[datetime, uuid.UUID]
Reconcile = Callable[[ReconcileRequest, str], KeptReconciliation]
ListRuns = Callable[[uuid.UUID, int, Cursor | None], RunPage]
GetRun = Callable[[uuid.UUID, uuid.UUID], KeptReconciliation]

DEFAULT_PAGE = 50
MAPPING_PARAMS = {"map.day": "day", "map.model": "model", "map.cost": "cost",
                  "map.inputTokens": "inputTokens", "map.outputTokens": "outputTokens",
                  "costUnit": "costUnit", "dayFormat": "dayFormat"}
_BASES = {b.value: b for b in Basis}


def _mapping(reader: QueryReader) -> ColumnMapping | None:
    fields: dict[str, object] = {}
    for param, field in MAPPING_PARAMS.items():
        value = reader.one(param)
        if value is not None:
            fields[field] = value
    try:
        return ColumnMapping.from_fields(fields)
    except ValidationFailed as e:
        inverse = {field: param for param, field in MAPPING_PARAMS.items()}
        for error in e.errors:
            reader.fail(inverse.get(error.field, error.field), error.reason)
        return None


def _tolerance(reader: QueryReader) -> Decimal:
    text = reader.one("tolerancePercent")
    if text is None:
        return DEFAULT_TOLERANCE
    try:
        value = Decimal(text)
    except InvalidOperation:
        reader.fail("tolerancePercent", "must be a decimal number, e.g. 1 or 0.5")
        return DEFAULT_TOLERANCE
    return value


class ReconciliationsResource:
    """POST (a report, as text/csv) and GET (the kept runs) /orgs/{orgId}/reconciliations."""

    def __init__(self, guard: Guard, reconcile: Reconcile, list_runs: ListRuns, *,
                 max_body_bytes: int) -> None:
        self._guard, self._reconcile, self._list = guard, reconcile, list_runs
        self._max_body = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Reconcile the body (`Content-Type: text/csv`); options in the query string:
        `tz`, `tolerancePercent` (default 1), `basis` (catalog or reported), `name`, and the
        column mapping `map.day`, `map.model`, `map.cost`, `map.inputTokens`,
        `map.outputTokens`, `costUnit` (usd or cents), `dayFormat` (iso or a strptime
        pattern). 201 with the run and every line."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.EXPORTS_CREATE, org_id,
                            resource=f"reconciliations:{org_id}")
        reader = QueryReader(req.params)
        tz = reader.tz()
        tolerance = _tolerance(reader)
        basis = reader.choice("basis", _BASES, Basis.CATALOG)
        name = reader.one("name") or ""
        mapping = _mapping(reader)
        reader.done()
        assert mapping is not None  # done() raised otherwise
        data = read_csv(req, self._max_body)
        if not data.strip():
            raise ValidationFailed([FieldError("body", "is required: the report as CSV")])
        request = ReconcileRequest(org_id, data, mapping, tz, tolerance, basis, name)
        kept = self._reconcile(request, actor_of(req).subject)
        resp.status = falcon.HTTP_201
        resp.location = (f"{PREFIX}/orgs/{org_id}/reconciliations/"
                         f"{kept.run.reconciliation_id}")
        resp.media = reconciliation_body(kept.run, kept.lines)

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """The org's runs newest first (without lines): `limit` (1-200), `cursor`."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.EXPORTS_READ, org_id,
                            resource=f"reconciliations:{org_id}")
        reader = QueryReader(req.params)
        limit = reader.integer("limit", 1, MAX_PAGE, DEFAULT_PAGE)
        before = cursor_param(reader)
        reader.done()
        page = self._list(org_id, limit, before)
        resp.media = {
            "orgId": str(org_id),
            "reconciliations": [reconciliation_body(r) for r in page.runs],
            "nextCursor": encode_cursor(page.next_cursor) if page.next_cursor else None,
        }


class ReconciliationResource:
    """GET /orgs/{orgId}/reconciliations/{reconciliationId}: the run and its lines."""

    def __init__(self, guard: Guard, get_run: GetRun) -> None:
        self._guard, self._get = guard, get_run

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Every line, or only the flagged ones with `flagged=true`."""
        org_id = path_uuid(path["orgId"], "orgId")
        run_id = path_uuid(path["reconciliationId"], "reconciliationId")
        self._guard.require(req, Action.EXPORTS_READ, org_id,
                            resource=f"reconciliation:{run_id}")
        reader = QueryReader(req.params)
        flagged = reader.choice("flagged", {"true": True, "false": False}, False)
        reader.done()
        kept = self._get(org_id, run_id)
        lines = tuple(line for line in kept.lines if line.flagged) if flagged else kept.lines
        resp.media = reconciliation_body(kept.run, lines)


class ReconciliationCsvResource:
    """GET /orgs/{orgId}/reconciliations/{reconciliationId}/csv: the report as CSV."""

    def __init__(self, guard: Guard, get_run: GetRun) -> None:
        self._guard, self._get = guard, get_run

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """An attachment, one row per line (docs/reconciliation.md has the columns)."""
        org_id = path_uuid(path["orgId"], "orgId")
        run_id = path_uuid(path["reconciliationId"], "reconciliationId")
        self._guard.require(req, Action.EXPORTS_DOWNLOAD, org_id,
                            resource=f"reconciliation:{run_id}")
        QueryReader(req.params).done()
        kept = self._get(org_id, run_id)
        resp.content_type = "text/csv; charset=utf-8"
        resp.downloadable_as = f"reconciliation-{run_id}.csv"
        resp.data = kept.csv()
