"""What each `analytics` command does (argument parsing lives in `analytics_app.cli`)."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import FrameType

from analytics_app.bootstrap.application import Application
from analytics_app.cli.demo_data import (
    DEFAULT_EVENTS,
    ORGS,
    demo_client_names,
    demo_model_names,
    demo_price_drafts,
)
from analytics_app.cli.prices import cli_actor
from analytics_app.cli.seeding import (
    SeedResult,
    describe,
    instructions,
    mint_demo_key,
    seed_demo,
)
from analytics_app.cli.server import require_free_port, run_server
from analytics_app.config import Settings
from analytics_app.config.env import masked_url
from analytics_app.observability.setup import configure_process
from analytics_app.observability.status_server import serve_metrics
from analytics_app.workers.export import Loop
from analytics_core.budgets import BudgetPeriod, period_bounds
from analytics_core.errors import FieldError, NotFound, ValidationFailed
from analytics_core.event_parsing import parse_time
from analytics_core.exports import (
    ExportGranularity,
    ExportJob,
    ExportKind,
    ExportRequest,
    ExportStatus,
)
from analytics_core.money import Cents
from analytics_core.records import ApiKeyRecord
from analytics_core.timegrid import isoformat, zone, zone_error
from analytics_core.usecases.access import API_KEY_PREFIX
from analytics_core.usecases.ingest import validate_event
from analytics_core.usecases.queries import AnalyticsQuery, GroupBy

MEMORY_NOTE = ("note: ANALYTICS_DATABASE_URL=memory keeps data only inside this process; "
               "use `analytics serve --demo` or a database URL to keep it")


def _base_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.port}"


def _seed_and_key(
    application: Application, *, seed: int, events: int = DEFAULT_EVENTS, days: int = 14,
    force: bool = False, progress: bool = True,
) -> str:
    """Seed unless data exists (or when forced); return the instructions with a fresh key."""
    uc = application.use_cases
    result = SeedResult(None, None)
    if not uc.list_prices(cli_actor()):  # before the events: they are priced at ingest
        uc.add_prices(cli_actor(), demo_price_drafts())
    if force or not uc.has_usage_data():
        result = seed_demo(uc.ingest_demo, now=uc.now(), seed=seed, events=events, days=days,
                           progress=progress)
    print(describe(result))
    uc.import_models(demo_model_names())  # names people recognise, in every response
    for client in demo_client_names():
        uc.put_client(client)
    org = ORGS[0]
    _demo_budgets(application, org.org_id, org.tz)
    key, revoked = mint_demo_key(uc.create_api_key, org.org_id, list_api_keys=uc.list_api_keys,
                                 revoke_api_key=uc.revoke_api_key)
    if revoked:
        print(f"Revoked the previous demo key ({revoked}); the new one is below.")
    return instructions(_base_url(application.settings), org.org_id, org.name, key, uc.now(),
                        tags=application.settings.attribution_keys)


def _demo_budgets(application: Application, org_id: uuid.UUID, tz: str) -> None:
    """Two budgets for the demo org, unless it has some: this month's catalog cost with 25 %
    headroom (50 % and 80 % fire on the first evaluation, and the forecast likely does), and
    today's invocations at 90 % of what the demo sent today (100 % fires)."""
    uc = application.use_cases
    if uc.list_budgets(org_id):
        return
    now = uc.now()
    month_start, month_end = period_bounds(now, BudgetPeriod.MONTH, zone(tz))
    day_start, day_end = period_bounds(now, BudgetPeriod.DAY, zone(tz))
    month = uc.usage(AnalyticsQuery(org_id, month_start, month_end, tz=tz,
                                    group_by=GroupBy.NONE)).totals
    today = uc.usage(AnalyticsQuery(org_id, day_start, day_end, tz=tz,
                                    group_by=GroupBy.NONE)).totals
    actor = cli_actor()
    spend = max(month.catalog_cost.units * 5 // 4, 10_000)  # units of 0.0001 cent
    uc.create_budget(actor, org_id, {
        "name": "Monthly model spend", "measure": "catalogCost", "period": "month", "tz": tz,
        "amount": Cents(spend).exact_str()})
    uc.create_budget(actor, org_id, {
        "name": "Daily invocations", "measure": "invocations", "period": "day", "tz": tz,
        "amount": max(today.invocations * 9 // 10, 1), "thresholds": [80, 100],
        "forecast": False})


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the API under gunicorn (seeding demo data first with --demo)."""
    require_free_port(settings)  # before any seeding: a second `make run` says so at once
    if not args.demo:
        with Application(settings) as application:
            application.prepare()
            if settings.storage == "sqlite" and not application.use_cases.has_usage_data():
                print(_empty_database_note(settings), file=sys.stderr)
        return run_server(settings)
    application = Application(settings)
    try:
        application.prepare()
        banner = _seed_and_key(application, seed=args.seed)
    except BaseException:
        application.shutdown()
        raise
    if settings.storage == "memory":
        # The single worker is forked from this process and keeps serving the seeded data.
        return run_server(settings, banner=banner, inherited=application)
    application.shutdown()
    return run_server(settings, banner=banner)


def _empty_database_note(settings: Settings) -> str:
    """Why a SQLite database may be empty: the data directory follows the working directory."""
    where = ("ANALYTICS_DATA_DIR" if os.environ.get("ANALYTICS_DATA_DIR")
             else f"./data of the working directory {Path.cwd()}")
    return (f"note: the database {masked_url(settings.database_url)} has no usage data yet; "
            f"its location comes from {where}. If you expected data, run from the directory "
            "you used before or set ANALYTICS_DATA_DIR (`analytics serve --demo` loads demo "
            "data).")


def demo(args: argparse.Namespace, settings: Settings) -> int:
    """Load demo data (unless some exists) and print an API key with curl commands."""
    with _storage_app(settings) as application:
        print(_seed_and_key(application, seed=args.seed, events=args.events, days=args.days,
                            force=args.force, progress=not args.no_progress))
    return 0


@contextlib.contextmanager
def _storage_app(settings: Settings) -> Iterator[Application]:
    """The application after its preflight, shut down afterwards; warns that a memory store
    keeps nothing once this command exits."""
    if settings.storage == "memory":
        print(MEMORY_NOTE, file=sys.stderr)
    with Application(settings) as application:
        application.preflight()
        yield application


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed([FieldError(field, f"must be a UUID, got {value!r}")]) from None


def apikey_create(args: argparse.Namespace, settings: Settings) -> int:
    """Create an API key; the key goes to stdout alone (scriptable), details to stderr."""
    org_id = _uuid(args.org, "org") if args.org else None
    with _storage_app(settings) as application:
        key, record = application.use_cases.create_api_key(org_id, args.roles, args.name)
    print(f"Created API key {record.key_id} (org {record.org_id or 'all (admin)'}, roles "
          f"{', '.join(sorted(record.roles))}). It is shown once; store it now:", file=sys.stderr)
    print(key)
    return 0


def _key_line(record: ApiKeyRecord) -> str:
    # json.dumps quotes the free-text name and escapes control characters: one line per key.
    return (f"{record.key_id}  org={record.org_id or 'all'}  "
            f"roles={','.join(sorted(record.roles))}  "
            f"name={json.dumps(record.name, ensure_ascii=False)}  "
            f"created={isoformat(record.created_at, UTC)}  "
            f"revoked={'yes' if record.revoked else 'no'}")


def _key_json(record: ApiKeyRecord) -> dict[str, object]:
    return {"keyId": record.key_id, "orgId": None if record.org_id is None else str(record.org_id),
            "roles": sorted(record.roles), "name": record.name,
            "createdAt": isoformat(record.created_at, UTC), "revoked": record.revoked}


def apikey_list(args: argparse.Namespace, settings: Settings) -> int:
    """List keys oldest first (one line each, or a JSON array); never a secret or its hash."""
    org_id = _uuid(args.org, "org") if args.org else None
    with _storage_app(settings) as application:
        records = application.use_cases.list_api_keys(org_id)
    if args.json:
        print(json.dumps([_key_json(r) for r in records], indent=2, ensure_ascii=False))
        return 0
    for record in records:
        print(_key_line(record))
    revoked = sum(r.revoked for r in records)
    print(f"{len(records)} API keys ({revoked} revoked)", file=sys.stderr)
    return 0


def _key_id(value: str) -> str:
    parts = value.split("_")
    if len(parts) == 3 and parts[0] == API_KEY_PREFIX:
        # Never echo it: the argument holds a secret.
        raise ValidationFailed([FieldError("KEY_ID", "this is a whole API key; pass only its "
                                           "key id, the part between 'ak_' and the next '_'")])
    return value


def apikey_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke one key by id and say what changed; an unknown id is a usage error."""
    key_id = _key_id(args.key_id)
    with _storage_app(settings) as application:
        try:
            result = application.use_cases.revoke_api_key(key_id, f"cli:{getpass.getuser()}")
        except NotFound as e:
            raise NotFound(f"{e}; `analytics apikey list` shows the key ids") from None
    record = result.record
    if result.already_revoked:
        print(f"API key {record.key_id} was already revoked; nothing changed")
        return 0
    print(f"Revoked API key {record.key_id} (org {record.org_id or 'all (admin)'}, roles "
          f"{', '.join(sorted(record.roles))}, name {json.dumps(record.name, ensure_ascii=False)})"
          ": it no longer authenticates")
    if record.org_id is None:
        print("note: not audited: the audit log is kept per org and an admin key has none",
              file=sys.stderr)
    return 0


def migrate(_args: argparse.Namespace, settings: Settings) -> int:
    """Apply the migrations and say where the database now stands."""
    with Application(settings) as application:
        revision = application.migrate()
    print(f"database {masked_url(settings.database_url)} is at revision {revision}")
    return 0


def purge(_args: argparse.Namespace, settings: Settings) -> int:
    """Apply retention and print what went."""
    with Application(settings) as application:
        report = application.purge()
    print(f"raw events before {report.raw_cutoff:%Y-%m-%d}: {report.raw_events} rows deleted, "
          f"{len(report.dropped_partitions)} partitions dropped, "
          f"{report.event_keys} dedupe keys deleted")
    print(f"rollups before {report.rollup_cutoff:%Y-%m-%d}: {report.rollups} deleted")
    print(f"expired export jobs: {report.export_jobs}, audit entries: {report.audit_entries}, "
          f"dead letters: {report.dead_letters}, dedupe conflicts: {report.dedupe_conflicts}")
    return 0


class _WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _documents(path: str) -> Iterator[tuple[str, object]]:
    """(where, payload) for each event of a JSON document or JSON Lines file."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        document = json.loads(text, parse_float=Decimal)
    except ValueError:
        document = None
    else:
        if isinstance(document, dict) and isinstance(document.get("events"), list):
            document = document["events"]
        items = document if isinstance(document, list) else [document]
        for index, item in enumerate(items):
            yield f"event {index}", item
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield f"line {number}", json.loads(line, parse_float=Decimal)
            except ValueError:
                yield f"line {number}", line  # validation reports why it is not JSON


def validate(args: argparse.Namespace, settings: Settings) -> int:
    """Print every invalid event with its reasons; exit 1 when any is invalid."""
    try:
        documents = list(_documents(args.file))
    except (OSError, UnicodeDecodeError) as e:
        raise ValidationFailed([FieldError("file", f"cannot read {args.file!r}: {e}")]) from None
    retention = timedelta(days=settings.raw_retention_days)
    clock, invalid = _WallClock(), 0
    for where, payload in documents:
        try:
            validate_event(payload, clock=clock, raw_retention=retention)
        except ValidationFailed as e:
            invalid += 1
            event_id = payload.get("eventId") if isinstance(payload, dict) else None
            label = f"{where} ({event_id})" if isinstance(event_id, str) else where
            for err in e.errors:
                print(f"{label}: {err.field}: {err.reason}")
    print(f"{len(documents) - invalid} valid, {invalid} invalid of {len(documents)} events",
          file=sys.stderr)
    return 1 if invalid or not documents else 0


def worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the export worker; SIGTERM/SIGINT finish the job in hand, then exit 0."""
    configure_process(settings)
    port = settings.worker_metrics_port if args.metrics_port is None else args.metrics_port
    server = serve_metrics(settings.host, port, "worker-metrics") if port else None
    try:
        with Application(settings) as application:
            return _run_worker(application, once=args.once)
    finally:
        if server is not None:
            server.shutdown()


def _run_worker(application: Application, *, once: bool) -> int:
    """Prepare storage, then run the loop once or until SIGTERM/SIGINT."""
    application.prepare()
    loop = application.export_worker()
    if once:
        loop.run_round()
        return 0
    return _until_signalled(loop, "the job in hand")


def _until_signalled(loop: Loop, work: str) -> int:
    """Run a worker loop until SIGTERM or SIGINT, which let it finish `work` first."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        print(f"signal {signal.Signals(signum).name}: finishing {work}", file=sys.stderr)
        loop.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.run_forever()
    return 0


def alerts(args: argparse.Namespace, settings: Settings) -> int:
    """Run the alerts worker; SIGTERM/SIGINT end it after the pass in hand."""
    configure_process(settings)
    port = settings.worker_metrics_port if args.metrics_port is None else args.metrics_port
    server = serve_metrics(settings.host, port, "alerts-metrics") if port else None
    try:
        with Application(settings) as application:
            application.prepare()
            loop = application.alert_worker()
            if args.once:
                result = loop.run_round(closed=True)
                sent = loop.deliver()
                if result.deferred is not None:
                    print(f"deferred: freshness is {result.deferred.status.value} (complete "
                          f"through {result.deferred.complete_through.isoformat()}); "
                          f"{result.budgets} budgets not evaluated")
                for a in result.fired:
                    print(f"fired: budget {a.budget_id} ({a.budget_name}) {a.kind.value} "
                          f"{a.threshold}% of the period from {a.period_start.isoformat()}"
                          + (" (late)" if a.late else ""))
                for t in result.transitions:
                    print(f"rule: {t.rule_id} ({t.rule_name}) "
                          f"{'fired' if t.state.value == 'firing' else 'resolved'}")
                print(f"{result.budgets} budgets, {len(result.fired)} alerts fired, "
                      f"{result.rules} rules, {len(result.transitions)} rule transitions, "
                      f"{sent} webhook attempts", file=sys.stderr)
                return 0
            return _until_signalled(loop, "the pass in hand")
    finally:
        if server is not None:
            server.shutdown()


def _export_request(args: argparse.Namespace) -> ExportRequest:
    errors: list[FieldError] = []
    times: dict[str, datetime] = {}
    for name in ("start", "end"):
        try:
            times[name] = parse_time(getattr(args, name))
        except ValueError as e:
            errors.append(FieldError(name, str(e)))
    org = _uuid(args.org, "org")
    models = tuple(_uuid(m, "model") for m in args.models)
    zone_problem = zone_error(args.tz)
    if zone_problem is not None:
        errors.append(FieldError("--tz", f"{zone_problem}; valid names are listed by "
                                          "`python3 -c 'import zoneinfo; "
                                          "print(*sorted(zoneinfo.available_timezones()))'`"))
    if errors:
        raise ValidationFailed(errors, "invalid export request")
    return ExportRequest(org, times["start"], times["end"], ExportGranularity(args.granularity),
                         args.tz, models, ExportKind(args.kind), args.close)


def _print_job(job: ExportJob, settings: Settings) -> None:
    print(f"job {job.job_id}: {job.status} (attempts {job.attempts})")
    if job.object_key is not None:
        where = (f"s3://{settings.s3.bucket}/{job.object_key}" if settings.s3
                 else str(settings.export_dir / job.object_key))
        print(f"rows {job.row_count}, sha256 {job.checksum}\nfile {where}")
    if job.error:
        print(f"error: {job.error}")


def export(args: argparse.Namespace, settings: Settings) -> int:
    """Create an export job; with --wait run it here and print where the CSV is."""
    request = _export_request(args)
    if settings.storage == "memory" and not args.wait:
        print(MEMORY_NOTE + " (pass --wait)", file=sys.stderr)
    with Application(settings) as application:
        application.preflight()
        job, created = application.use_cases.create_export(
            request, f"cli:{getpass.getuser()}", args.idempotency_key)
        if not created:
            print(f"Idempotency-Key already used: job {job.job_id}", file=sys.stderr)
        if args.wait:
            job = _run_until_done(application, job)
    _print_job(job, settings)
    return 0 if job.status in (ExportStatus.PENDING, ExportStatus.SUCCEEDED) else 1


def _run_until_done(application: Application, job: ExportJob) -> ExportJob:
    runner = application.export_worker().runner
    uc = application.use_cases
    while job.status in (ExportStatus.PENDING, ExportStatus.RUNNING):
        ran = runner.run_next()
        job = uc.get_export(job.org_id, job.job_id)
        if ran is None and job.status is ExportStatus.PENDING:
            delay = (job.next_attempt_at - uc.now()) if job.next_attempt_at else None
            if delay is not None and delay.total_seconds() > 0:
                time.sleep(min(delay.total_seconds(), 5))
            elif ran is None:
                time.sleep(0.2)
    return job
