"""`analytics reconcile FILE --org ORG`: reconcile a provider's cost report against the org's
usage (SPEC §15), keep the result, print the summary and the flagged lines."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from analytics_app.cli.lazy import lazy
from analytics_core.errors import FieldError, ValidationFailed

if TYPE_CHECKING:
    from analytics_app.config import Settings

MAP_FIELDS = ("day", "model", "cost", "inputTokens", "outputTokens")


def register_reconcile_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]
                               ) -> None:
    """Add `reconcile` to the `analytics` parser."""
    p = sub.add_parser(
        "reconcile", help="reconcile a provider's cost report (CSV) against metered usage",
        description="Match the report's rows by day and model in --tz against the org's usage "
                    "of the same days, keep the result (GET /orgs/{orgId}/reconciliations) "
                    "and print the totals and every flagged line. Exit 1 when any line is "
                    "flagged. Every bad row of the file is named (exit 2).")
    p.add_argument("file", help="the report, a CSV file with a header row (- for stdin)")
    p.add_argument("--org", required=True, help="org id (UUID)")
    p.add_argument("--tz", default="UTC", help="IANA zone of the report's days (default UTC)")
    p.add_argument("--tolerance", default="1",
                   help="flag lines whose variance exceeds this %% of metered (default 1)")
    p.add_argument("--basis", choices=("catalog", "reported"), default="catalog",
                   help="compare with the price catalog's cost (default) or the reported cost")
    p.add_argument("--map", action="append", default=[], metavar="FIELD=HEADER",
                   help="the header holding a field (repeatable); fields: "
                        + ", ".join(MAP_FIELDS) + " (defaults: day, model, cost; no tokens)")
    p.add_argument("--cost-unit", choices=("usd", "cents"), default="usd")
    p.add_argument("--day-format", default="iso",
                   help="iso (default) or a strptime pattern such as %%m/%%d/%%Y")
    p.add_argument("--name", help="a label kept with the run (default: the file's name)")
    p.add_argument("--output", help="also write the report as CSV to this file")
    p.add_argument("--json", action="store_true", help="print the API's JSON document")
    p.set_defaults(handler=_lazy("reconcile_command"))


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    return lazy(__name__, name)


def _mapping_fields(pairs: list[str], errors: list[FieldError]) -> dict[str, object]:
    fields: dict[str, object] = {}
    for pair in pairs:
        field, sep, header = pair.partition("=")
        if not sep or field not in MAP_FIELDS:
            errors.append(FieldError("--map", f"{pair!r} must be FIELD=HEADER with FIELD one "
                                              f"of {', '.join(MAP_FIELDS)}"))
            continue
        fields[field] = header
    return fields


def _read(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        raise ValidationFailed([FieldError("file", f"cannot read {path!r}: {e}")]) from None


def reconcile_command(args: argparse.Namespace, settings: Settings) -> int:
    """Reconcile, keep, print; exit 1 when a line is flagged."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415
    from analytics_app.cli.prices import cli_actor  # noqa: PLC0415
    from analytics_app.http.render import reconciliation_body  # noqa: PLC0415
    from analytics_core.reconciliation import ColumnMapping, usd_text  # noqa: PLC0415
    from analytics_core.reconciliation_runs import Basis  # noqa: PLC0415
    from analytics_core.usecases.reconciliations import ReconcileRequest  # noqa: PLC0415

    errors: list[FieldError] = []
    try:
        org = uuid.UUID(args.org)
    except ValueError:
        errors.append(FieldError("--org", "must be a UUID"))
    try:
        tolerance = Decimal(args.tolerance)
    except InvalidOperation:
        errors.append(FieldError("--tolerance", "must be a decimal number, e.g. 1 or 0.5"))
    fields = _mapping_fields(args.map, errors)
    if errors:
        raise ValidationFailed(errors)
    mapping = ColumnMapping.from_fields({**fields, "costUnit": args.cost_unit,
                                         "dayFormat": args.day_format})
    name = args.name if args.name is not None else ("" if args.file == "-"
                                                    else Path(args.file).name)
    request = ReconcileRequest(org, _read(args.file), mapping, args.tz, tolerance,
                               Basis(args.basis), name)
    with Application(settings) as app:
        app.preflight()
        kept = app.use_cases.reconcile_invoice(request, cli_actor().subject)
    if args.output:
        Path(args.output).write_bytes(kept.csv())
    run = kept.run
    if args.json:
        print(json.dumps(reconciliation_body(run, kept.lines), indent=2, ensure_ascii=False))
    else:
        print(f"reconciliation {run.reconciliation_id}: {run.first_day} to {run.last_day} "
              f"({run.tz}), {run.basis.value} cost, tolerance {run.tolerance_percent}%")
        print(f"metered {usd_text(run.metered_total)} USD, invoiced "
              f"{usd_text(run.invoiced_total)} USD, variance {usd_text(run.variance)} USD; "
              f"{run.line_count} lines, {run.flagged_count} flagged")
        for line in kept.lines:
            if line.flagged:
                percent = "" if line.variance_percent is None else f" ({line.variance_percent}%)"
                print(f"  {line.day}  {json.dumps(line.model, ensure_ascii=False)}  "
                      f"{line.status.value}  variance {usd_text(line.variance)} USD{percent}")
    return 1 if run.flagged_count else 0
