"""`analytics models import FILE` and `analytics models list`: the registry of model names."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from analytics_app.cli.lazy import lazy
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.registry import ModelEntry, model_entry

if TYPE_CHECKING:
    from analytics_app.config import Settings

CSV_COLUMNS = ("modelId", "name", "provider", "family", "aliases")
ALIAS_SEPARATOR = "|"


def register_model_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `models import` and `models list` to the `analytics` parser."""
    p = sub.add_parser("models", help="the registry of model names (import, list)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import", help="register model names and aliases from a CSV or JSON file",
        description="Register or rename every model of the file in one transaction (all or "
                    "nothing). JSON: a list of {modelId, name, provider, family, aliases[]} "
                    "(or the {\"models\": [...]} document GET /models returns). CSV: a header "
                    f"row {','.join(CSV_COLUMNS)}, aliases separated by '{ALIAS_SEPARATOR}'. "
                    "Names and aliases must be unique across models (case-insensitive).")
    imp.add_argument("file", help="a .json or .csv file, or - for JSON on standard input")
    imp.add_argument("--dry-run", action="store_true",
                     help="check the file and report what would change, store nothing")
    imp.set_defaults(handler=_lazy("import_command"))
    listing = actions.add_parser("list", help="list registered models by id")
    listing.add_argument("--json", action="store_true",
                         help="print the JSON document `models import` reads")
    listing.set_defaults(handler=_lazy("list_command"))


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    return lazy(__name__, name)


def _rows_of_json(text: str) -> list[Mapping[str, object]]:
    try:
        document = json.loads(text)
    except ValueError as e:
        raise ValidationFailed([FieldError("file", f"is not valid JSON: {e}")]) from None
    if isinstance(document, dict) and isinstance(document.get("models"), list):
        document = document["models"]
    if not isinstance(document, list) or not all(isinstance(r, dict) for r in document):
        raise ValidationFailed([FieldError("file", "must be a JSON list of model objects")])
    return document


def _rows_of_csv(text: str) -> list[Mapping[str, object]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("modelId", "name") if c not in (reader.fieldnames or ())]
    if missing:
        raise ValidationFailed([FieldError("file", f"the CSV header must name {', '.join(missing)} "
                                                   f"(columns: {','.join(CSV_COLUMNS)})")])
    rows: list[Mapping[str, object]] = []
    for row in reader:
        aliases = [a for a in (row.get("aliases") or "").split(ALIAS_SEPARATOR) if a.strip()]
        rows.append({**row, "aliases": aliases})
    return rows


def read_entries(path: str) -> list[ModelEntry]:
    """Every entry of the file, validated; ValidationFailed names each bad row and field."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ValidationFailed([FieldError("file", f"cannot read {path!r}: {e}")]) from None
    rows = _rows_of_csv(text) if path.lower().endswith(".csv") else _rows_of_json(text)
    entries: list[ModelEntry] = []
    errors: list[FieldError] = []
    for number, row in enumerate(rows, start=1):
        try:
            entries.append(_entry(row, f"row {number}: "))
        except ValidationFailed as e:
            errors.extend(e.errors)
    if errors:
        raise ValidationFailed(errors, "invalid model file")
    return entries


def _entry(row: Mapping[str, object], prefix: str) -> ModelEntry:
    raw = row.get("modelId")
    try:
        model_id = uuid.UUID(str(raw))
    except ValueError:
        raise ValidationFailed([FieldError(f"{prefix}modelId",
                                           f"must be a UUID, got {raw!r}")]) from None
    return model_entry(model_id, row, prefix=prefix)


def import_command(args: argparse.Namespace, settings: Settings) -> int:
    """Import a file; prints what changed (or would, with --dry-run)."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415

    entries = read_entries(args.file)
    with Application(settings) as app:
        app.preflight()
        uc = app.use_cases
        report = (uc.preview_models(entries) if args.dry_run else uc.import_models(entries))
    verb = "would import" if args.dry_run else "imported"
    print(f"{verb} {len(entries)} models: {report.created} new, {report.updated} renamed or "
          f"changed, {report.unchanged} unchanged")
    return 0


def list_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the registry, one model per line (or the JSON document)."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415

    with Application(settings) as app:
        app.preflight()
        entries = app.use_cases.list_models()
    if args.json:
        from analytics_app.http.render import model_body  # noqa: PLC0415  the API's shape

        print(json.dumps({"models": [model_body(e) for e in entries]}, indent=2,
                         ensure_ascii=False))
        return 0
    for line in _lines(entries):
        print(line)
    print(f"{len(entries)} models", file=sys.stderr)
    return 0


def _lines(entries: list[ModelEntry]) -> Iterator[str]:
    for e in entries:
        # json.dumps quotes free text and escapes control characters: one line per model.
        yield (f"{e.model_id}  name={json.dumps(e.name, ensure_ascii=False)}  "
               f"provider={json.dumps(e.provider, ensure_ascii=False)}  "
               f"family={json.dumps(e.family, ensure_ascii=False)}  "
               f"aliases={json.dumps(list(e.aliases), ensure_ascii=False)}")
