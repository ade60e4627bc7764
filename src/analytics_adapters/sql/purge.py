"""Retention (SPEC §9): drop old raw-event partitions and delete old rows by policy.

PostgreSQL never DELETEs from `usage_events`: whole days are detached and dropped. The narrow
`event_keys` dedupe index is trimmed with one DELETE guided by a BRIN index; rollups are
deleted org by org through their primary key, in short transactions. SQLite (the embedded
mode) has no partitions and deletes old raw events in batches.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import attrs
import sqlalchemy as sa

from analytics_adapters.sql import partitions
from analytics_adapters.sql.errors import translate_errors
from analytics_adapters.sql.records import revise_history
from analytics_adapters.sql.rollups import orgs_with_rollups
from analytics_adapters.sql.schema import (
    ATTRIBUTION,
    ATTRIBUTION_TABLES,
    ROLLUP_TABLES,
    ROLLUPS,
    attribution_values,
    audit_log,
    dead_letters,
    dedupe_conflicts,
    event_keys,
    export_jobs,
    rollups_15m,
    usage_events,
)
from analytics_adapters.sql.types import EPOCH

DEFAULT_RAW_RETENTION = timedelta(days=400)
DEFAULT_ROLLUP_MONTHS = 13
DEFAULT_EXPORT_RETENTION = timedelta(days=90)
DEFAULT_AUDIT_RETENTION = timedelta(days=400)
SQLITE_BATCH = 10_000


@attrs.frozen
class PurgeReport:
    """What one purge removed."""

    raw_cutoff: datetime
    rollup_cutoff: datetime
    dropped_partitions: tuple[str, ...] = ()
    raw_events: int = 0  # rows deleted (SQLite only; PostgreSQL drops partitions)
    event_keys: int = 0
    rollups: int = 0  # 15-minute rows deleted (hour and day tiers go with them)
    export_jobs: int = 0
    audit_entries: int = 0
    dead_letters: int = 0
    dedupe_conflicts: int = 0


def months_before(now: datetime, months: int) -> datetime:
    """Start (UTC) of the calendar month `months` before the month holding `now`."""
    index = now.year * 12 + (now.month - 1) - months
    return now.replace(year=index // 12, month=index % 12 + 1, day=1, hour=0, minute=0,
                       second=0, microsecond=0)


def raw_cutoff_day(now: datetime, raw_retention: timedelta) -> date:
    """First UTC day kept: days entirely older than `now - raw_retention` go."""
    return (now - raw_retention).date()


def purge(
    engine: sa.Engine, now: datetime, *, raw_retention: timedelta = DEFAULT_RAW_RETENTION,
    rollup_months: int = DEFAULT_ROLLUP_MONTHS,
    export_retention: timedelta = DEFAULT_EXPORT_RETENTION,
    audit_retention: timedelta | None = DEFAULT_AUDIT_RETENTION,
    dead_letter_retention: timedelta | None = None,
) -> PurgeReport:
    """Apply every retention rule at `now` and create the raw partitions ahead of it.

    - raw events (and their dedupe keys) of the UTC days wholly before `now - raw_retention`;
    - rollups of the calendar months before the last `rollup_months` (UTC);
    - export jobs that expired (files already deleted by the export worker) more than
      `export_retention` ago, so the API answers 410 Gone for that long before 404;
    - audit entries older than `audit_retention` (None keeps them forever);
    - dead letters and dedupe conflicts older than `dead_letter_retention` (default: the raw
      retention, since they hold raw payloads).
    """
    cut_day = raw_cutoff_day(now, raw_retention)
    raw_cut = datetime(cut_day.year, cut_day.month, cut_day.day, tzinfo=now.tzinfo)
    rollup_cut = months_before(now, rollup_months)
    letters_cut = now - (dead_letter_retention or raw_retention)
    with translate_errors():
        dropped, raw_rows = _purge_raw(engine, now, cut_day, raw_cut)
        return PurgeReport(
            raw_cutoff=raw_cut, rollup_cutoff=rollup_cut, dropped_partitions=dropped,
            raw_events=raw_rows,
            event_keys=_delete(engine, event_keys.delete().where(
                event_keys.c.occurred_at < raw_cut)),
            rollups=_purge_rollups(engine, rollup_cut),
            export_jobs=_delete(engine, export_jobs.delete().where(
                export_jobs.c.status == "expired",
                export_jobs.c.expires_at < now - export_retention)),
            audit_entries=0 if audit_retention is None else _delete(
                engine, audit_log.delete().where(audit_log.c.at < now - audit_retention)),
            dead_letters=_delete(engine, dead_letters.delete().where(
                dead_letters.c.received_at < letters_cut)),
            dedupe_conflicts=_delete(engine, dedupe_conflicts.delete().where(
                dedupe_conflicts.c.detected_at < letters_cut)),
        )


def _purge_raw(
    engine: sa.Engine, now: datetime, cut_day: date, raw_cut: datetime
) -> tuple[tuple[str, ...], int]:
    if engine.dialect.name == "postgresql":
        dropped = tuple(partitions.drop_partitions_before(engine, cut_day))
        with engine.begin() as conn:
            partitions.ensure_days_ahead(conn, now.date())
        return dropped, 0
    deleted = 0
    t = usage_events.c
    while True:
        keys = sa.select(t.org_id, t.occurred_at, t.event_id).where(
            t.occurred_at < raw_cut).limit(SQLITE_BATCH)
        stmt = usage_events.delete().where(
            sa.tuple_(t.org_id, t.occurred_at, t.event_id).in_(keys))
        batch = _delete(engine, stmt)
        deleted += batch
        if batch < SQLITE_BATCH:
            return (), deleted


def _purge_rollups(engine: sa.Engine, cutoff: datetime) -> int:
    with engine.connect() as conn:
        orgs = orgs_with_rollups(conn, EPOCH, cutoff)
        conn.rollback()
    deleted = 0
    for org in orgs:
        # Attribution rollups and their admitted values age out with the rollups they label.
        # So do the zone days that start before the cutoff (their days are cut anyway).
        for table in (*ROLLUP_TABLES, ROLLUPS.zone, *ATTRIBUTION_TABLES, ATTRIBUTION.zone):
            t = table.c
            removed = _delete(engine, table.delete().where(t.org_id == org,
                                                           t.bucket_start < cutoff))
            deleted += removed if table is rollups_15m else 0
        v = attribution_values.c
        _delete(engine, attribution_values.delete().where(v.org_id == org,
                                                          v.day < cutoff.date()))
        with engine.begin() as conn:  # past days changed: budget values kept are read again
            revise_history(conn, [org])
    return deleted


def _delete(engine: sa.Engine, stmt: sa.Delete) -> int:
    with engine.begin() as conn:
        return int(conn.execute(stmt).rowcount)
