"""The `analytics` command line: serve, demo, apikey, validate, worker, alerts, export, migrate,
purge, models, prices, restatements, doctor, usage, reliability, dead-letters, audit, consume,
publish, replay, reconcile, rollups."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from collections.abc import Callable, Sequence

import attrs

from analytics_app.cli.doctor import register_doctor
from analytics_app.cli.models import register_model_commands
from analytics_app.cli.prices import register_price_commands
from analytics_app.cli.queries import register_query_commands
from analytics_app.cli.reconcile import register_reconcile_command
from analytics_app.cli.rollups import register_rollup_commands
from analytics_app.cli.stream import register_stream_commands
from analytics_app.cli.support import register_support_commands
from analytics_app.config import Settings, load_settings
from analytics_core.errors import (
    AnalyticsError,
    ConfigError,
    SchemaNotMigrated,
    StoreUnavailable,
    ValidationFailed,
)

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
PRIVATE_UMASK = 0o077  # files 0600, directories 0700
Handler = Callable[[argparse.Namespace], int]


def _command(name: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        # Imported on use: start-up stays light, and `serve` must set the metrics directory
        # before anything imports prometheus_client.
        from analytics_app.cli import commands  # noqa: PLC0415

        handler: Callable[[argparse.Namespace, Settings], int] = getattr(commands, name)
        return handler(args, _settings(args))

    return run


def _serve(args: argparse.Namespace) -> int:
    from analytics_app.cli.server import metrics_dir  # noqa: PLC0415  see _command

    settings = _settings(args)
    with metrics_dir():
        from analytics_app.cli import commands  # noqa: PLC0415  see _command

        return commands.serve(args, settings)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    overrides = {k: getattr(args, k) for k in ("host", "port", "workers")
                 if getattr(args, k, None) is not None}
    if settings.storage == "memory" and overrides.get("workers", 1) > 1:
        raise ConfigError("invalid configuration:\n  --workers: must be 1 with "
                          "ANALYTICS_DATABASE_URL=memory (each worker would hold its own data)")
    return attrs.evolve(settings, **overrides) if overrides else settings


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError("must be between 1 and 65535")
    return number


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the HTTP API under gunicorn",
                       description="Serve the API (defaults from ANALYTICS_* variables: "
                                   "127.0.0.1:8084, embedded SQLite, local export directory).")
    p.add_argument("--host", help="bind address (ANALYTICS_HOST)")
    p.add_argument("--port", type=_port, help="bind port (ANALYTICS_PORT)")
    p.add_argument("--workers", type=_positive, help="gunicorn worker processes")
    p.add_argument("--demo", action="store_true",
                   help="seed demo data first when the database is empty and print an API key "
                        "with example curl commands")
    p.add_argument("--seed", type=int, default=7, help="demo random seed (default 7)")
    p.set_defaults(handler=_serve)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="load realistic synthetic usage data and print an API key",
                       description="Ingest synthetic events (several orgs, ~10 models, diurnal "
                                   "traffic, an error/latency spike, late and duplicate events) "
                                   "through the real ingest use case.")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--events", type=_positive, default=20_000, help="about how many events")
    p.add_argument("--days", type=_positive, default=14, help="days of history (default 14)")
    p.add_argument("--force", action="store_true", help="add data even if some exists")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=_command("demo"))


def _add_apikey(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("apikey", help="manage API keys")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="create an API key (printed once on stdout)",
        description="Create an API key; only its hash is stored, so it is printed once.")
    create.add_argument("--org", help="org id (UUID); required unless --role admin")
    create.add_argument("--role", action="append", required=True, dest="roles",
                        help="repeatable: admin, org_admin, analytics:usage:read, "
                             "analytics:reliability:read, analytics:exports:create, "
                             "analytics:exports:read, analytics:exports:download, "
                             "analytics:events:write")
    create.add_argument("--name", default="", help="a label for the key")
    create.set_defaults(handler=_command("apikey_create"))
    listing = actions.add_parser(
        "list", help="list API keys (never their secrets)",
        description="One line per key, oldest first: key id, org, roles, name, created, "
                    "revoked. Secrets and their hashes are never shown.")
    listing.add_argument("--org", help="only this org's keys (UUID); default every key")
    listing.add_argument("--json", action="store_true", help="print a JSON array instead")
    listing.set_defaults(handler=_command("apikey_list"))
    revoke = actions.add_parser(
        "revoke", help="revoke an API key (it stops authenticating at once)",
        description="Revoke a key by its key id (see `analytics apikey list`); revoking a "
                    "revoked key changes nothing. An org's key revocation is audited.")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key id, not the whole key")
    revoke.set_defaults(handler=_command("apikey_revoke"))


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="validate usage events in a JSON or JSONL file",
                       description="Validate events (a JSON object, array, {\"events\": [...]}, "
                                   "or one JSON object per line). Exit 1 when any is invalid.")
    p.add_argument("file", help="path, or - for standard input")
    p.set_defaults(handler=_command("validate"))


def _add_worker(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run the export worker until SIGTERM")
    p.add_argument("--once", action="store_true", help="run due jobs and housekeeping, then exit")
    p.add_argument("--metrics-port", type=int, help="serve /metrics on this port "
                   "(ANALYTICS_WORKER_METRICS_PORT; 0 serves none)")
    p.set_defaults(handler=_command("worker"))


def _add_alerts(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "alerts", help="evaluate budgets until SIGTERM (the alerts worker)",
        description="Evaluates every budget every ANALYTICS_ALERTS_INTERVAL_SECONDS (default 30)"
                    " and fires the thresholds reached; safe beside other alerts workers and "
                    "the worker embedded in `serve`.")
    p.add_argument("--once", action="store_true",
                   help="one evaluation pass: print what fired, then exit")
    p.add_argument("--metrics-port", type=int, help="serve /metrics on this port "
                   "(ANALYTICS_WORKER_METRICS_PORT; 0 serves none)")
    p.set_defaults(handler=_command("alerts"))


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="create an export job (optionally run it now)")
    p.add_argument("--org", required=True, help="org id (UUID)")
    p.add_argument("--start", required=True, help="RFC 3339 start, e.g. 2025-01-01T00:00:00Z")
    p.add_argument("--end", required=True, help="RFC 3339 end (exclusive)")
    p.add_argument("--granularity", choices=("hourly", "daily", "monthly"), default="daily")
    p.add_argument("--tz", default="UTC", help="IANA time zone (default UTC)")
    p.add_argument("--model", action="append", default=[], dest="models",
                   help="model id (repeatable; default all)")
    p.add_argument("--kind", choices=("usage", "events", "focus"), default="usage",
                   help="usage rollups, raw events, or FinOps FOCUS 1.2 cost rows")
    p.add_argument("--close", action="store_true",
                   help="a close (usage only): later changes to the period's numbers get "
                        "adjustment files")
    p.add_argument("--idempotency-key", help="reuse returns the first job")
    p.add_argument("--wait", action="store_true",
                   help="run the job in this process and print where the file is")
    p.set_defaults(handler=_command("export"))


def _add_migrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("migrate", help="apply the database migrations (Alembic)",
                       description="Bring ANALYTICS_DATABASE_URL's schema to this version "
                                   "(creates the SQLite file when needed).")
    p.set_defaults(handler=_command("migrate"))


def _add_purge(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("purge", help="apply the retention settings (raw events, rollups, exports)",
                       description="Drop raw-event days older than ANALYTICS_RAW_RETENTION_DAYS "
                                   "(whole partitions on PostgreSQL), rollups older than "
                                   "ANALYTICS_ROLLUP_RETENTION_MONTHS, and long-expired export "
                                   "jobs. Safe to run from cron while the service runs.")
    p.set_defaults(handler=_command("purge"))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (only commands that exist are listed)."""
    parser = argparse.ArgumentParser(
        prog="analytics",
        description="Usage, spend and reliability analytics for AI inference platforms. "
                    "Configured by ANALYTICS_* environment variables (see README).")
    parser.add_argument("--version", action="version", version=f"analytics {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_serve, _add_demo, _add_apikey, _add_validate, _add_worker, _add_alerts,
                _add_export, _add_migrate, _add_purge):
        add(sub)
    register_model_commands(sub)  # models import, models list
    register_price_commands(sub)  # prices import, prices list, restatements run
    register_doctor(sub)
    register_rollup_commands(sub)  # rollups zones list|add|remove, rollups build
    register_query_commands(sub)  # usage, reliability
    register_support_commands(sub)  # dead-letters list|show|raw|redrive, audit
    register_reconcile_command(sub)  # reconcile FILE
    register_stream_commands(sub)  # consume, publish, replay (RabbitMQ streams)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("inference-analytics")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree, not installed
        return "unknown (not installed)"


def _fail(message: str, code: int) -> int:
    print(f"analytics: {message}", file=sys.stderr)
    return code


def _report(error: BaseException) -> int:
    """Exit code and message for an error the user can act on."""
    if isinstance(error, SchemaNotMigrated):
        hint = "" if "analytics migrate" in str(error) else "\nRun `analytics migrate` first."
        return _fail(f"{error}{hint}", EXIT_USAGE)
    if isinstance(error, ValidationFailed):
        lines = "\n".join(f"  {err.field}: {err.reason}" for err in error.errors)
        return _fail(f"invalid input:\n{lines}", EXIT_USAGE)
    if isinstance(error, StoreUnavailable):
        return _fail(f"unavailable: {error}", EXIT_UNAVAILABLE)
    return _fail(str(error), EXIT_USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (user errors print a message, never a traceback).

    Every file and directory the product creates is private to its user (SPEC §11): the
    SQLite database and its journals, local exports, metrics files of worker processes.
    """
    os.umask(PRIVATE_UMASK)
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except AnalyticsError as e:
        return _report(e)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `analytics demo | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
