"""`analytics prices import FILE`, `analytics prices list` and `analytics restatements run`."""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from analytics_app.cli.lazy import lazy
from analytics_core.access import ADMIN, Actor
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.prices import CATEGORIES, PriceVersion, price_text

if TYPE_CHECKING:
    from analytics_app.config import Settings
    from analytics_core.restatements import Restatement
    from analytics_core.usecases.prices import Drafts

CSV_COLUMNS = ("model", "modelId", "orgId", "effectiveFrom",
               *(c.value for c in CATEGORIES), "supersedes", "note", "restate")


def register_price_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `prices import|list` and `restatements run` to the `analytics` parser."""
    p = sub.add_parser("prices", help="the price catalog (import, list)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import", help="add price versions from a CSV or JSON file (all or nothing)",
        description="Add every version of the file in one transaction, or none: every bad row "
                    "is reported. JSON: a list of versions (or {\"versions\": [...]}) as POST "
                    "/prices takes them. CSV: a header row with model (a registered name or "
                    "alias) or modelId, effectiveFrom, input, output, and optionally orgId, "
                    "cacheRead, cacheWrite, audioInput, reasoning, audioOutput, supersedes, "
                    "note, restate (true/false). Prices are USD per million tokens.")
    imp.add_argument("file", help="a .json or .csv file, or - for JSON on standard input")
    imp.set_defaults(handler=_lazy("import_command"))
    listing = actions.add_parser("list", help="list live price versions (--history: all)")
    listing.add_argument("--history", action="store_true", help="superseded versions too")
    listing.add_argument("--json", action="store_true", help="print GET /prices' document")
    listing.set_defaults(handler=_lazy("list_command"))
    r = sub.add_parser("restatements", help="repricing jobs (run)")
    r_actions = r.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = r_actions.add_parser(
        "run", help="carry out open restatements now (the worker also runs them)",
        description="Reprice the events of every open restatement in batches, printing "
                    "progress; safe beside running workers and resumable after a crash.")
    run.add_argument("--batch", type=int, default=2000, help="events per transaction")
    run.set_defaults(handler=_lazy("run_command"))


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    return lazy(__name__, name)


def cli_actor() -> Actor:
    """Whoever runs the CLI holds the database credentials: a platform admin, audited by name."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(f"cli:{user}", None, frozenset({ADMIN}), "cli")


def _rows_of_csv(text: str) -> list[Mapping[str, object]]:
    reader = csv.DictReader(io.StringIO(text))
    header = set(reader.fieldnames or ())
    unknown = sorted(header - set(CSV_COLUMNS))
    if unknown:
        raise ValidationFailed([FieldError("file", f"unknown CSV columns {', '.join(unknown)} "
                                                   f"(columns: {','.join(CSV_COLUMNS)})")])
    rows: list[Mapping[str, object]] = []
    for row in reader:
        prices = {c.value: row[c.value] for c in CATEGORIES if (row.get(c.value) or "").strip()}
        out: dict[str, object] = {k: v for k, v in row.items()
                                  if k in ("model", "modelId", "orgId", "effectiveFrom",
                                           "supersedes", "note") and (v or "").strip()}
        out["prices"] = {k: v.strip() for k, v in prices.items() if isinstance(v, str)}
        flag = (row.get("restate") or "").strip().lower()
        if flag:
            out["restate"] = {"true": True, "false": False}.get(flag, flag)
        rows.append(out)
    return rows


def _rows_of_json(text: str) -> list[object]:
    from decimal import Decimal  # noqa: PLC0415

    try:
        document = json.loads(text, parse_float=Decimal)
    except ValueError as e:
        raise ValidationFailed([FieldError("file", f"is not valid JSON: {e}")]) from None
    if isinstance(document, dict) and isinstance(document.get("versions"), list):
        document = document["versions"]
    if not isinstance(document, list):
        raise ValidationFailed([FieldError("file", "must be a JSON list of price versions")])
    return document


def read_file(path: str) -> Drafts:
    """Every version of the file read (the errors of bad rows kept, for the use case to report
    with its own checks)."""
    from analytics_core.usecases.prices import read_drafts  # noqa: PLC0415

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ValidationFailed([FieldError("file", f"cannot read {path!r}: {e}")]) from None
    rows = _rows_of_csv(text) if path.lower().endswith(".csv") else _rows_of_json(text)
    if not rows:
        raise ValidationFailed([FieldError("file", "holds no price versions")])
    return read_drafts(rows, lambda i: f"row {i + 1}: ")


def import_command(args: argparse.Namespace, settings: Settings) -> int:
    """Import a file; prints the versions added and the restatements they started."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415

    drafts = read_file(args.file)
    with Application(settings) as app:
        app.preflight()
        added = app.use_cases.add_prices(cli_actor(), drafts)
    print(f"added {len(added.versions)} price versions")
    for r in added.restatements:
        print(f"restatement {r.restatement_id}: model {r.model_id}, "
              f"{r.window_start.isoformat()} to {r.window_end.isoformat()} "
              "(the worker runs it; or `analytics restatements run`)")
    return 0


def list_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the catalog, one version per line (or GET /prices' JSON document)."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415

    with Application(settings) as app:
        app.preflight()
        versions = app.use_cases.list_prices(cli_actor(), history=args.history)
        names = {e.model_id: e.name for e in app.use_cases.list_models()}
    if args.json:
        from analytics_app.http.render import price_version_body  # noqa: PLC0415

        print(json.dumps({"versions": [price_version_body(v) for v in versions]}, indent=2))
        return 0
    for v in versions:
        print(_line(v, names))
    print(f"{len(versions)} price versions (USD per million tokens)", file=sys.stderr)
    return 0


def _line(v: PriceVersion, names: Mapping[uuid.UUID, str]) -> str:
    prices = " ".join(f"{c.value}={price_text(n)}" for c, n in v.prices.items())
    scope = f"org {v.org_id}" if v.org_id else "global"
    model = json.dumps(names.get(v.model_id, str(v.model_id)), ensure_ascii=False)
    return (f"{v.version_id}  {model}  {scope}  from {v.effective_from.isoformat()}  "
            f"{prices}")


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run open restatements to the end, one progress line per batch on stderr."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415

    if args.batch < 1:
        raise ValidationFailed([FieldError("--batch", "must be at least 1")])

    def show(r: Restatement) -> None:
        print(f"restatement {r.restatement_id}: {r.status.value}, "
              f"{r.events_repriced:,} events repriced", file=sys.stderr)

    with Application(settings) as app:
        app.preflight()
        batches = app.use_cases.run_restatements(batch=args.batch, progress=show)
    print(f"ran {batches} restatement batches; none is open"
          if batches else "no restatement is open (or due yet)")
    return 0
