"""`analytics doctor`: check the configuration and every backing service, one line each, with
the fix for each failure. Exit 0 when nothing failed, 1 otherwise (warnings do not fail)."""

from __future__ import annotations

import argparse
import stat
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from analytics_core.errors import AnalyticsError, SchemaNotMigrated, StoreUnavailable

if TYPE_CHECKING:
    from analytics_app.bootstrap.application import Application
    from analytics_app.config import Settings

MAX_CLOCK_SKEW = timedelta(seconds=5)
OK, WARN, FAIL = "ok", "warn", "FAIL"


@attrs.frozen
class Finding:
    """One check's outcome: status, what was checked, what was found, and the fix."""

    status: str
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        """`ok   database: ...` or `FAIL redis: ... (fix: ...)`."""
        fix = f" -> fix: {self.fix}" if self.fix and self.status != OK else ""
        return f"{self.status:<4} {self.name}: {self.detail}{fix}"


def register_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `doctor` to the `analytics` parser."""
    p = sub.add_parser(
        "doctor", help="check configuration, database, broker, Redis, S3, keys, clock, files",
        description="Check the ANALYTICS_* configuration and every configured backing service; "
                    "print one line per check with the fix for each failure. Exit 0 when "
                    "nothing failed, 1 otherwise, 2 when the configuration itself is invalid.")
    p.set_defaults(handler=doctor_command)


def doctor_command(_args: argparse.Namespace) -> int:
    """Run every check and print the findings."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415  on use
    from analytics_app.config import load_settings  # noqa: PLC0415

    settings = load_settings()  # a ConfigError exits 2 naming each bad value
    print(f"{OK:<4} configuration: every ANALYTICS_* value is valid")
    failed = False
    with Application(settings) as app:
        for finding in _findings(settings, app):
            print(finding.line())
            failed = failed or finding.status == FAIL
    print("some checks failed" if failed else "all checks passed", file=sys.stderr)
    return 1 if failed else 0


def _findings(settings: Settings, app: Application) -> Iterator[Finding]:
    database = _database(settings, app)
    yield database
    if database.status == OK:
        yield _clock(app)
    ports = app.ports
    for check in (*ports.health_checks, *ports.degraded_checks):
        if check.name != "database":
            yield _probe(check.name, check.check, _FIXES.get(check.name, ""))
    if settings.s3 is not None:
        yield _encryption(app)
    yield _jwt(settings)
    yield from _files(settings)


def _database(settings: Settings, app: Application) -> Finding:
    from analytics_app.config.env import masked_url  # noqa: PLC0415

    where = masked_url(settings.database_url)
    if settings.storage == "memory":
        return Finding(WARN, "database", "memory: nothing is kept after the process exits",
                       "set ANALYTICS_DATABASE_URL to sqlite:///FILE or postgresql://...")
    try:
        app.preflight()
    except SchemaNotMigrated as e:
        return Finding(FAIL, "database", f"{where}: {e}", "run `analytics migrate`")
    except StoreUnavailable as e:
        return Finding(FAIL, "database", f"{where}: {e}",
                       "start the database or correct ANALYTICS_DATABASE_URL")
    return Finding(OK, "database", f"{where}: reachable, schema current")


def _clock(app: Application) -> Finding:
    try:
        skew = app.database_clock_skew()
    except AnalyticsError as e:
        return Finding(FAIL, "clock", f"cannot read the database's clock: {e}")
    if skew is None:
        return Finding(OK, "clock", "one clock (the database runs on this host's)")
    seconds = skew.total_seconds()
    if abs(skew) > MAX_CLOCK_SKEW:
        return Finding(FAIL, "clock", f"this host is {seconds:+.1f} s off the database's clock",
                       "synchronise both clocks with NTP (freshness and lag depend on them)")
    return Finding(OK, "clock", f"{seconds:+.3f} s from the database's clock")


_FIXES = {
    "object_store": "create the export directory or bucket and grant write access "
                    "(ANALYTICS_EXPORT_DIR, ANALYTICS_S3_*)",
    "redis": "start Redis or correct ANALYTICS_REDIS_URL (queries still work without it)",
    "rabbitmq": "start RabbitMQ with the stream plugin (rabbitmq-plugins enable "
                "rabbitmq_stream) and run `analytics consume` once to declare the streams",
}


def _probe(name: str, check: Callable[[], None], fix: str) -> Finding:
    try:
        check()
    except Exception as e:
        return Finding(FAIL, name, f"{e.__class__.__name__}: {e}", fix)
    return Finding(OK, name, "answers")


def _encryption(app: Application) -> Finding:
    try:
        mode = app.object_store_encryption()
    except AnalyticsError as e:
        return Finding(FAIL, "s3 encryption", f"an encrypted probe upload failed: {e}",
                       "check ANALYTICS_S3_SSE / ANALYTICS_S3_KMS_KEY_ID and that the "
                       "credentials may write the bucket (and use the KMS key)")
    return Finding(OK, "s3 encryption", f"a probe upload was stored encrypted ({mode})")


def _jwt(settings: Settings) -> Finding:
    if settings.jwt_key is None:
        return Finding(WARN, "jwt", "no ANALYTICS_JWT_KEY: bearer tokens are refused, API keys "
                                    "work", "set ANALYTICS_JWT_KEY (or _FILE) to accept tokens")
    return Finding(OK, "jwt", f"{', '.join(settings.jwt_algorithms)} key configured")


def _files(settings: Settings) -> Iterator[Finding]:
    paths = [("data directory", settings.data_dir, 0o700)]
    if settings.database_url.startswith("sqlite:///"):
        paths.append(("database file", Path(settings.database_url[len("sqlite:///"):]), 0o600))
    if settings.s3 is None:
        paths.append(("export directory", settings.export_dir, 0o700))
    for name, path, private in paths:
        if not path.exists():
            continue  # created (privately) on first use
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            yield Finding(FAIL, name, f"{path} is mode {mode:o}: others may read it",
                          f"chmod {private:o} {path}")
        else:
            yield Finding(OK, name, f"{path} is private (mode {mode:o})")
