"""`analytics dead-letters list|show|raw|redrive` and `analytics audit`: what the
`/orgs/{orgId}/dead-letters` and `/orgs/{orgId}/audit` routes serve, for whoever holds the
database credentials (a platform admin, audited by name like every CLI write)."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from analytics_app.cli.lazy import lazy
from analytics_core.errors import FieldError, ValidationFailed

if TYPE_CHECKING:
    from analytics_app.bootstrap.application import Application
    from analytics_app.config import Settings
    from analytics_core.records import AuditEntry, DeadLetter

MAX_LIST = 10_000
T = TypeVar("T")
Cursor = tuple[datetime, uuid.UUID]


def register_support_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dead-letters list|show|raw|redrive` and `audit` to the `analytics` parser."""
    p = sub.add_parser("dead-letters", help="rejected events: list, show, raw, redrive")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", help="list dead letters, newest first",
        description="One line per letter: id, received (UTC), org, source, size, status "
                    "(open or redriven), reason.")
    listing.add_argument("--org", help="only this org's letters (UUID); default every org's, "
                                       "unattributed ones included")
    listing.add_argument("--reason", help="only letters whose reason contains this text")
    listing.add_argument("--source", help="only this source (http, stream:<name>, redrive)")
    listing.add_argument("--since", help="received at or after (RFC 3339)")
    listing.add_argument("--until", help="received before (RFC 3339)")
    listing.add_argument("--status", choices=("open", "redriven", "all"), default="all")
    listing.add_argument("--limit", type=int, default=100, help=f"at most (1-{MAX_LIST})")
    listing.add_argument("--json", action="store_true", help="print JSON lines, as the API")
    listing.set_defaults(handler=_lazy("list_command"))
    show = actions.add_parser("show", help="one letter with its message, as JSON")
    show.add_argument("letter", metavar="DEAD_LETTER_ID")
    show.set_defaults(handler=_lazy("show_command"))
    raw = actions.add_parser("raw", help="write a letter's message, byte for byte, to stdout")
    raw.add_argument("letter", metavar="DEAD_LETTER_ID")
    raw.set_defaults(handler=_lazy("raw_command"))
    redrive = actions.add_parser(
        "redrive", help="ingest letters' messages again (after a fix)",
        description="Validate each message again and ingest the valid ones exactly once; a "
                    "still-invalid message is reported and nothing of it is stored. Exit 1 "
                    "when any stays invalid.")
    redrive.add_argument("letters", metavar="DEAD_LETTER_ID", nargs="+")
    redrive.set_defaults(handler=_lazy("redrive_command"))
    audit = sub.add_parser(
        "audit", help="an org's audit log, newest first",
        description="Authorization decisions on one org's data (SPEC §6): time, outcome, "
                    "actor, action, resource, reason, request id.")
    audit.add_argument("--org", required=True, help="org id (UUID)")
    audit.add_argument("--actor", help="only this actor (e.g. apikey:ab12cd, cli:alice)")
    audit.add_argument("--action", help="only this action (e.g. analytics:usage:read)")
    audit.add_argument("--outcome", choices=("allowed", "denied"))
    audit.add_argument("--since", help="at or after (RFC 3339)")
    audit.add_argument("--until", help="before (RFC 3339)")
    audit.add_argument("--limit", type=int, default=100, help=f"at most (1-{MAX_LIST})")
    audit.add_argument("--json", action="store_true", help="print JSON lines, as the API")
    audit.set_defaults(handler=_lazy("audit_command"))


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    return lazy(__name__, name)


def _uuid(value: str | None, field: str, errors: list[FieldError]) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        errors.append(FieldError(field, "must be a UUID"))
        return None


def _instant(value: str | None, field: str, errors: list[FieldError]) -> datetime | None:
    from analytics_app.http.params import parse_instant  # noqa: PLC0415

    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as e:
        errors.append(FieldError(field, str(e)))
        return None


def _window(args: argparse.Namespace, errors: list[FieldError]
            ) -> tuple[datetime | None, datetime | None]:
    since = _instant(args.since, "--since", errors)
    until = _instant(args.until, "--until", errors)
    if since is not None and until is not None and until <= since:
        errors.append(FieldError("--until", "must be after --since"))
    if not 1 <= args.limit <= MAX_LIST:
        errors.append(FieldError("--limit", f"must be from 1 to {MAX_LIST}"))
    return since, until


def _open(settings: Settings) -> Application:
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415

    return Application(settings)


def _letters(app: Application, org: uuid.UUID | None, args: argparse.Namespace,
             since: datetime | None, until: datetime | None) -> list[DeadLetter]:
    from analytics_core.records import DeadLetterFilter  # noqa: PLC0415

    where = DeadLetterFilter(args.reason, args.source, since, until,
                             {"open": False, "redriven": True}.get(args.status))

    def page(size: int, cursor: Cursor | None) -> tuple[Sequence[DeadLetter], Cursor | None]:
        got = app.use_cases.list_dead_letters(org, where, size, cursor)
        return got.letters, got.next_cursor

    return _collect(page, args.limit)


def _collect(page: Callable[[int, Cursor | None], tuple[Sequence[T], Cursor | None]],
             limit: int) -> list[T]:
    """Up to `limit` items, following the cursor page by page (pages of at most 200)."""
    found: list[T] = []
    cursor: Cursor | None = None
    while len(found) < limit:
        items, cursor = page(min(200, limit - len(found)), cursor)
        found.extend(items)
        if cursor is None:
            break
    return found


def list_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print letters newest first; a count on stderr."""
    from analytics_app.http.render import dead_letter_body  # noqa: PLC0415

    errors: list[FieldError] = []
    org = _uuid(args.org, "--org", errors)
    since, until = _window(args, errors)
    if errors:
        raise ValidationFailed(errors)
    with _open(settings) as app:
        app.preflight()
        letters = _letters(app, org, args, since, until)
    for d in letters:
        if args.json:
            print(json.dumps(dead_letter_body(d), ensure_ascii=False))
            continue
        status = "open" if d.redriven_at is None else f"redriven ({d.redrive_outcome})"
        print(f"{d.dead_letter_id}  {d.received_at.isoformat()}  {d.org_id or '-'}  "
              f"{d.source}  {len(d.raw)} B  {status}  {json.dumps(d.reason, ensure_ascii=False)}")
    print(f"{len(letters)} dead letters", file=sys.stderr)
    return 0


def _letter_id(args: argparse.Namespace) -> uuid.UUID:
    errors: list[FieldError] = []
    letter = _uuid(args.letter, "DEAD_LETTER_ID", errors)
    if letter is None:
        raise ValidationFailed(errors)
    return letter


def show_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print one letter with its message as JSON (the API's document)."""
    from analytics_app.http.render import dead_letter_body  # noqa: PLC0415

    letter_id = _letter_id(args)
    with _open(settings) as app:
        app.preflight()
        letter = app.use_cases.get_dead_letter(None, letter_id)
    print(json.dumps(dead_letter_body(letter, raw=True), indent=2, ensure_ascii=False))
    return 0


def raw_command(args: argparse.Namespace, settings: Settings) -> int:
    """Write the message's bytes to stdout, unchanged."""
    letter_id = _letter_id(args)
    with _open(settings) as app:
        app.preflight()
        letter = app.use_cases.get_dead_letter(None, letter_id)
    sys.stdout.flush()
    sys.stdout.buffer.write(letter.raw)
    sys.stdout.buffer.flush()
    return 0


def redrive_command(args: argparse.Namespace, settings: Settings) -> int:
    """Re-drive each letter; one line each; exit 1 when any message is still invalid."""
    from analytics_app.cli.prices import cli_actor  # noqa: PLC0415

    errors: list[FieldError] = []
    ids = [i for text in args.letters
           if (i := _uuid(text, f"DEAD_LETTER_ID {text}", errors)) is not None]
    if errors:
        raise ValidationFailed(errors)
    invalid = 0
    with _open(settings) as app:
        app.preflight()
        for letter_id in ids:
            try:
                done = app.use_cases.redrive_dead_letter(None, letter_id,
                                                         cli_actor().subject, None)
            except ValidationFailed as e:
                invalid += 1
                reasons = "; ".join(f"{err.field}: {err.reason}" for err in e.errors)
                print(f"{letter_id}: still invalid, nothing stored ({reasons})")
                continue
            note = " (already re-driven)" if done.already else ""
            print(f"{letter_id}: {done.outcome}{note}")
    return 1 if invalid else 0


def audit_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the org's audit entries newest first; a count on stderr."""
    from analytics_app.http.render import audit_entry_body  # noqa: PLC0415
    from analytics_core.access import Outcome  # noqa: PLC0415
    from analytics_core.records import AuditFilter  # noqa: PLC0415

    errors: list[FieldError] = []
    org = _uuid(args.org, "--org", errors)
    since, until = _window(args, errors)
    if errors or org is None:
        raise ValidationFailed(errors)
    where = AuditFilter(args.actor, args.action,
                        None if args.outcome is None else Outcome(args.outcome), since, until)
    with _open(settings) as app:
        app.preflight()

        def page(size: int, cursor: Cursor | None
                 ) -> tuple[Sequence[AuditEntry], Cursor | None]:
            got = app.use_cases.list_audit(org, where, size, cursor)
            return got.entries, got.next_cursor

        entries = _collect(page, args.limit)
    for e in entries:
        if args.json:
            print(json.dumps(audit_entry_body(e), ensure_ascii=False))
            continue
        request = f"  request {e.request_id}" if e.request_id else ""
        cross = "  cross-org" if e.cross_org else ""
        print(f"{e.at.isoformat()}  {e.outcome.value:<7}  {e.actor}  {e.action}  "
              f"{e.resource}  {json.dumps(e.reason, ensure_ascii=False)}{request}{cross}")
    print(f"{len(entries)} audit entries", file=sys.stderr)
    return 0
