"""Zone day tiers on PostgreSQL (and Citus): rollups summed per whole local day of a named zone.

A day in America/New_York, Asia/Kolkata or Asia/Kathmandu is not a UTC day, so without this
tier a read by day in such a zone sums hour rows and 15-minute rows (`rollup_query.read_plan`):
24 rows of wide sketches per day and group where UTC reads one. For each zone listed in
`rollup_zones` (`analytics rollups zones add`), `build` writes one row per (org, local day,
model, client) into `rollups_zone_1d`, and per (org, local day, model, group) of the
attribution rollups into `attribution_zone_1d` (`FAMILIES`, same transactions), and
`zone_day_progress` records per org and zone the local midnight before which every day of
both is built. Readers use those rows for the local days that
lie inside one period and before that midnight, and read the rest as before.

Keeping the built days exact. Any write to the rollups (ingest, a late event, a restatement)
goes through `follow` in the same transaction, after the rollup upserts: it takes a shared
transaction-level advisory lock per org of the batch, then reads the orgs' progress, and adds
the deltas of buckets before an org's built midnight to that zone's day rows. `build` (and
`remove_zone`) take the same lock exclusively, per org, before reading anything, and write the
new days and the new progress in one transaction. So a builder either starts after a writer
committed (and reads its rollups), or commits before the writer reads the progress (and the
writer adds its delta to the new days): a delta is never lost nor counted twice. The progress
must be read by a statement that starts after the lock is granted (READ COMMITTED takes each
statement's snapshot at its start), hence the two statements.

Readers try the shared lock without waiting (`try_zone_spans`): while a build or removal holds
an org, its reads skip the tier for that transaction instead of waiting, and a removal never
deletes rows under a reader that chose to use them.

Days are built once they ended `LAG` ago, so live ingest almost never adds to built days.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

import attrs
import sqlalchemy as sa

from analytics_adapters.sql import pg_rollups
from analytics_adapters.sql.base import add_to_rows
from analytics_adapters.sql.convert import ROLLUP_COLUMNS
from analytics_adapters.sql.pg_stage import driver
from analytics_adapters.sql.rollup_query import ZoneSpans, read_plan
from analytics_adapters.sql.schema import (
    ATTRIBUTION,
    EXTRA_COUNTER_COLUMNS,
    ROLLUPS,
    RollupFamily,
)
from analytics_core.rollups import Rollup
from analytics_core.timegrid import (
    Grain,
    PeriodIndex,
    day_starts,
    floor_bucket,
    period_start,
    zone,
)

FAMILIES = (ROLLUPS, ATTRIBUTION)
"""The rollup families with a zone day tier, built and followed together (one progress)."""
LAG = timedelta(hours=1)
"""How long after a local day ends it is built (late events within it add to the built day)."""
DAYS_PER_TRANSACTION = 14
"""Local days of one org built per transaction: the org's writers wait at most that long."""

_SHORTEST_DAY = timedelta(hours=20)  # no real local day is shorter (timegrid.period_end)


def _lock_class() -> int:
    digest = hashlib.blake2b(b"analytics-zone-days", digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


LOCK_CLASS = _lock_class()


def org_lock_key(org_id: uuid.UUID) -> int:
    """The second int4 key of an org's zone-day lock (collisions only make peers wait)."""
    return int.from_bytes(org_id.bytes[:4], "big", signed=True)


VALUE_COLUMNS = ROLLUP_COLUMNS[4:]
"""The columns of a rollup row after its key, as the day sums read them."""
_SUMMED = pg_rollups.ADDED_COLUMNS
_COLUMNS = ("org_id", "zone", *ROLLUP_COLUMNS[1:])
_KEY = _COLUMNS[:5]  # org_id, zone, bucket_start, model_id, client_id

# Sums rows of `src` (org_id, zone, day, model_id, client_id and the rollup columns) per day
# row: counters summed, sketch bins summed per bin index, error codes summed per code.
_SUM_DAYS = """
WITH src AS (@source),
c AS (
  SELECT org_id, zone, day, model_id, client_id, @sums,
         min(latency_min) AS latency_min, max(latency_max) AS latency_max
  FROM src GROUP BY 1, 2, 3, 4, 5
),
b AS (
  SELECT org_id, zone, day, model_id, client_id, array_agg(bin) AS bins,
         array_agg(n) AS counts
  FROM (SELECT org_id, zone, day, model_id, client_id, bin, sum(n)::int8 AS n
        FROM (SELECT org_id, zone, day, model_id, client_id, unnest(lat_bins) AS bin,
                     unnest(lat_counts) AS n FROM src) AS u
        GROUP BY 1, 2, 3, 4, 5, 6) AS v
  GROUP BY 1, 2, 3, 4, 5
),
e AS (
  SELECT org_id, zone, day, model_id, client_id, jsonb_object_agg(code, n) AS codes
  FROM (SELECT s.org_id, s.zone, s.day, s.model_id, s.client_id, x.key AS code,
               sum(x.value::int8)::int8 AS n
        FROM src AS s, jsonb_each_text(s.error_codes) AS x
        WHERE s.error_codes <> '{}'::jsonb GROUP BY 1, 2, 3, 4, 5, 6) AS w
  GROUP BY 1, 2, 3, 4, 5
)
INSERT INTO @zone_table AS r (@columns)
SELECT c.org_id, c.zone, c.day, c.model_id, c.client_id, @picked, c.latency_min,
       c.latency_max, c.lat_zeros, coalesce(b.bins, '{}'), coalesce(b.counts, '{}'),
       coalesce(e.codes, '{}'::jsonb), @details
FROM c LEFT JOIN b USING (org_id, zone, day, model_id, client_id)
       LEFT JOIN e USING (org_id, zone, day, model_id, client_id)
ORDER BY c.org_id, c.zone, c.day, c.model_id, c.client_id
@conflict""".replace("@columns", ", ".join(_COLUMNS)).replace(
    "@sums", ", ".join(f"sum({c})::int8 AS {c}" for c in _SUMMED)).replace(
    "@picked", ", ".join(f"c.{c}" for c in _SUMMED[:9])).replace(
    "@details", ", ".join(f"c.{c}" for c in EXTRA_COUNTER_COLUMNS))

_CONFLICT = "ON CONFLICT (org_id, zone, bucket_start, model_id, client_id)"
_ADD = pg_rollups.merge_clause(_CONFLICT)
# A build replaces (it read every row of the day); a writer adds its delta.
_REPLACE = f"{_CONFLICT} DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in VALUE_COLUMNS)
_FOLLOW = _SUM_DAYS.replace("@source", """
SELECT s.org_id, m.zone, m.day, s.model_id, s.client_id, @values
FROM analytics_stage_rollups AS s
JOIN unnest(%(orgs)s::uuid[], %(zones)s::text[], %(buckets)s::timestamptz[],
            %(days)s::timestamptz[]) AS m(org_id, zone, bucket, day)
  ON m.org_id = s.org_id AND m.bucket = s.bucket_start""").replace(
    "@values", ", ".join(f"s.{c}" for c in VALUE_COLUMNS))

_LOCK_SHARED = ("SELECT count(pg_advisory_xact_lock_shared(%s, k)) "
                "FROM unnest(%s::int4[]) AS k")
_TRY_SHARED = "SELECT pg_try_advisory_xact_lock_shared(%s, %s)"
_LOCK = "SELECT pg_advisory_xact_lock(%s, %s)"
_PROGRESS = "SELECT org_id, zone, built_through FROM zone_day_progress WHERE org_id = ANY(%s)"


def _exec(conn: sa.Connection, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with driver(conn).cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description is not None else []


def _built_days(conn: sa.Connection, keys: Sequence[tuple[uuid.UUID, datetime]]
                ) -> set[tuple[uuid.UUID, str, datetime, datetime]]:
    """(org, zone, bucket, local day) of each (org, bucket) that lies in a built day of a
    zone, after taking the orgs' shared locks (then reading their progress; see the module
    docstring)."""
    orgs = sorted({org for org, _ in keys})
    _exec(conn, _LOCK_SHARED, (LOCK_CLASS, [org_lock_key(o) for o in orgs]))
    built: dict[uuid.UUID, list[tuple[str, datetime]]] = {}
    for org, name, through in _exec(conn, _PROGRESS, (orgs,)):
        built.setdefault(org, []).append((name, through))
    mapping: set[tuple[uuid.UUID, str, datetime, datetime]] = set()
    if not built:
        return mapping
    indexes: dict[str, PeriodIndex] = {}
    for org, start in keys:
        for name, through in built.get(org, ()):
            if start < through:
                index = indexes.get(name)
                if index is None:
                    index = indexes[name] = PeriodIndex(Grain.DAY, zone(name))
                mapping.add((org, name, start, index.start_of(start)))
    return mapping


def follow(conn: sa.Connection, rollups: Sequence[Rollup],
           family: RollupFamily = ROLLUPS) -> int:
    """Add the deltas of `family` just staged in `analytics_stage_rollups` (by
    `pg_rollups.upsert_rollups`, same transaction) to the built zone days they fall in;
    returns the day-row deltas added."""
    mapping = _built_days(conn, [(r.key.org_id, r.key.bucket_start) for r in rollups])
    if not mapping:
        return 0
    rows = sorted(mapping)
    _exec(conn, _FOLLOW.replace("@zone_table", family.zone.name).replace("@conflict", _ADD), {
        "orgs": [m[0] for m in rows], "zones": [m[1] for m in rows],
        "buckets": [m[2] for m in rows], "days": [m[3] for m in rows]})
    return len(rows)


def add_to_existing(conn: sa.Connection, family: RollupFamily, columns: Sequence[str],
                    deltas: Mapping[tuple[uuid.UUID, datetime, uuid.UUID, str], Sequence[int]],
                    ) -> int:
    """Add `deltas` (per base key: org, 15-minute bucket, model, client; one value per column
    of `columns`) to the built zone day rows of `family` that already hold those keys, as
    the restatements adjust the other tiers (rows are never created here); returns the
    day rows updated."""
    mapping = _built_days(conn, sorted({(k[0], k[1]) for k in deltas}))
    if not mapping:
        return 0
    days: dict[tuple[uuid.UUID, datetime], list[tuple[str, datetime]]] = {}
    for org, name, bucket, day in mapping:
        days.setdefault((org, bucket), []).append((name, day))
    summed: dict[tuple[uuid.UUID, str, datetime, uuid.UUID, str], list[int]] = {}
    for (org, bucket, model, client), values in deltas.items():
        for name, day in days.get((org, bucket), ()):
            acc = summed.setdefault((org, name, day, model, client), [0] * len(columns))
            for i, n in enumerate(values):
                acc[i] += n
    if not summed:
        return 0
    add_to_rows(conn, family.zone, _KEY, columns, summed)
    return len(summed)


def try_zone_spans(conn: sa.Connection, org_id: uuid.UUID,
                   boundaries: Sequence[datetime]) -> ZoneSpans | None:
    """The zone whose built days serve the most periods of a read over `boundaries` (a day
    serves when no boundary falls strictly inside it), or None: no zone has built days in the
    window, or a build or removal holds the org right now (the read then skips the tier)."""
    first, last = boundaries[0], boundaries[-1]
    if all(int(b.timestamp()) % 86400 == 0 for b in boundaries):
        return None  # the UTC day tier already serves every day
    # Periods shorter than a day (hours), or of another zone (they start at no local midnight
    # of a zone), take none of its days: such reads take no lock.
    if max(b - a for a, b in itertools.pairwise(boundaries)) < _SHORTEST_DAY:
        return None
    candidates = [name for name in listed_zones(conn)
                  if len(boundaries) <= 2 or _midnight(boundaries[1], zone(name))]
    if not candidates:
        return None
    if not _exec(conn, _TRY_SHARED, (LOCK_CLASS, org_lock_key(org_id)))[0][0]:
        return None
    best: ZoneSpans | None = None
    inner = sorted(boundaries)
    for _, name, through in _exec(conn, _PROGRESS, ([org_id],)):
        if name not in candidates:
            continue
        starts = day_starts(first, min(last, through), zone(name))
        spans = tuple((a, b) for a, b in itertools.pairwise(starts)
                      if not _cut(inner, a, b))
        if spans and (best is None or len(spans) > len(best.spans)):
            best = ZoneSpans(name, spans)
    return best


LISTED_FOR = 60.0
"""Seconds a process keeps the list of zones with a day tier (add and remove clear it)."""
_LISTED: weakref.WeakKeyDictionary[sa.Engine, tuple[float, tuple[str, ...]]] = (
    weakref.WeakKeyDictionary())


def listed_zones(conn: sa.Connection) -> tuple[str, ...]:
    """The zones with a day tier, as read at most `LISTED_FOR` seconds ago by this process: a
    zone added elsewhere serves reads here within that time (until then reads are as
    without it); a zone removed stops serving as its orgs' rows are deleted."""
    now = time.monotonic()
    kept = _LISTED.get(conn.engine)
    if kept is not None and kept[0] > now:
        return kept[1]
    names = tuple(row[0] for row in _exec(conn, "SELECT zone FROM rollup_zones ORDER BY zone"))
    _LISTED[conn.engine] = (now + LISTED_FOR, names)
    return names


def _midnight(instant: datetime, tz: tzinfo) -> bool:
    local = instant.astimezone(tz)
    return local.hour == local.minute == 0


def _cut(boundaries: Sequence[datetime], start: datetime, end: datetime) -> bool:
    """Whether a boundary falls strictly inside (start, end)."""
    i = bisect.bisect_right(boundaries, start)
    return i < len(boundaries) and boundaries[i] < end


# -- building and managing zones ----------------------------------------------------------

_ORGS = """
SELECT DISTINCT org_id FROM rollups_1d ORDER BY org_id"""


@attrs.frozen
class BuildReport:
    """What one `build` did; `finished` is False when its time budget ended it early."""

    zones: int
    orgs: int
    days: int
    transactions: int
    finished: bool = True


def zones(conn: sa.Connection) -> list[tuple[str, datetime, int, datetime | None]]:
    """(zone, added at, orgs with progress, least built midnight over them), by zone."""
    rows = conn.execute(sa.text(
        "SELECT z.zone, z.added_at, count(p.org_id), min(p.built_through) "
        "FROM rollup_zones z LEFT JOIN zone_day_progress p ON p.zone = z.zone "
        "GROUP BY z.zone, z.added_at ORDER BY z.zone"))
    return [(str(name), added, int(n), least) for name, added, n, least in rows]


def add_zone(engine: sa.Engine, name: str, now: datetime) -> bool:
    """List a zone (its days are built by the next `build`); False when already listed."""
    zone(name)  # ValueError for an unknown name (callers validate it with timegrid.zone_error)
    with engine.begin() as conn:
        added = conn.execute(sa.text(
            "INSERT INTO rollup_zones (zone, added_at) VALUES (:z, :at) "
            "ON CONFLICT (zone) DO NOTHING"), {"z": name, "at": now}).rowcount
    _LISTED.pop(engine, None)
    return bool(added)


def remove_zone(engine: sa.Engine, name: str) -> int:
    """Unlist a zone and delete its day rows, one org per transaction under the org's lock;
    returns the rows deleted."""
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM rollup_zones WHERE zone = :z"), {"z": name})
        orgs = [row[0] for row in conn.execute(sa.text(
            "SELECT org_id FROM zone_day_progress WHERE zone = :z ORDER BY org_id"),
            {"z": name})]
    _LISTED.pop(engine, None)
    deleted = 0
    for org in orgs:
        with engine.begin() as conn:
            _exec(conn, _LOCK, (LOCK_CLASS, org_lock_key(org)))
            conn.execute(sa.text(
                "DELETE FROM zone_day_progress WHERE org_id = :o AND zone = :z"),
                {"o": org, "z": name})
            for family in FAMILIES:
                deleted += conn.execute(sa.text(
                    f"DELETE FROM {family.zone.name} "  # noqa: S608  fixed names
                    "WHERE org_id = :o AND zone = :z"), {"o": org, "z": name}).rowcount
    return deleted


def build(engine: sa.Engine, now: datetime, *,
          progress: Callable[[str, int, int], None] | None = None,
          budget_seconds: float | None = None) -> BuildReport:
    """Build every listed zone's local days that ended `LAG` before `now`, for every org with
    rollups, from the oldest rollup on (a new zone backfills all history); `progress(zone,
    orgs done, orgs)` after each org. Safe beside ingest, reads and other builders. With
    `budget_seconds`, no building transaction starts after that many seconds (at least one
    runs): the report says `finished=False`, and the next build goes on from there."""
    with engine.connect() as conn:
        names = [row[0] for row in conn.execute(sa.text(
            "SELECT zone FROM rollup_zones ORDER BY zone"))]
        orgs = [row[0] for row in conn.execute(sa.text(_ORGS))]
        conn.rollback()
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    days = transactions = 0
    for name in names:
        tz = zone(name)
        bound = period_start(floor_bucket(now - LAG), Grain.DAY, tz)
        for done, org in enumerate(orgs, 1):
            while True:
                if transactions and deadline is not None and time.monotonic() >= deadline:
                    return BuildReport(len(names), len(orgs), days, transactions, False)
                with engine.begin() as conn:
                    _exec(conn, _LOCK, (LOCK_CLASS, org_lock_key(org)))
                    built = _built(conn, org, name, tz)
                    if built is None or built >= bound:
                        break
                    starts = day_starts(built, bound, tz)[:DAYS_PER_TRANSACTION + 1]
                    for family in FAMILIES:
                        source, params = build_source(org, name, starts, family)
                        _exec(conn, _SUM_DAYS.replace("@source", source).replace(
                            "@zone_table", family.zone.name).replace(
                            "@conflict", _REPLACE), params)
                    _set_built(conn, org, name, starts[-1])
                    days += len(starts) - 1
                    transactions += 1
            if progress is not None:
                progress(name, done, len(orgs))
    return BuildReport(len(names), len(orgs), days, transactions)


def build_source(org: uuid.UUID, name: str, starts: Sequence[datetime],
                 family: RollupFamily = ROLLUPS) -> tuple[str, dict[str, Any]]:
    """The SELECT of every rollup row of `family` of an org in [starts[0], starts[-1]) with
    the local day it falls in (the tiers of `read_plan`, so whole UTC days and hours come
    from their tiers), and its parameters."""
    params: dict[str, Any] = {"org": org, "zone": name, "bounds": list(starts)}
    parts = []
    for i, (table, _, ranges) in enumerate(read_plan(starts, family)):
        runs = []
        for j, (lo, hi) in enumerate(ranges):
            params[f"lo{i}_{j}"], params[f"hi{i}_{j}"] = lo, hi
            runs.append(f"(bucket_start >= %(lo{i}_{j})s AND bucket_start < %(hi{i}_{j})s)")
        where = f"WHERE org_id = %(org)s AND ({' OR '.join(runs)})"
        parts.append(
            "SELECT org_id, %(zone)s::text AS zone, (%(bounds)s::timestamptz[])["  # noqa: S608
            "width_bucket(bucket_start, %(bounds)s::timestamptz[])] AS day, model_id, "
            f"client_id, {', '.join(VALUE_COLUMNS)} FROM {table.name} {where}")
    return " UNION ALL ".join(parts), params


def _built(conn: sa.Connection, org: uuid.UUID, name: str, tz: tzinfo) -> datetime | None:
    """The org's built midnight in a zone; set to the start of its first day when new (None:
    the org has no rollups, or the zone was removed meanwhile: nothing to build)."""
    if conn.execute(sa.text("SELECT count(*) FROM rollup_zones WHERE zone = :z"),
                    {"z": name}).scalar() == 0:
        return None
    found = conn.execute(sa.text(
        "SELECT built_through FROM zone_day_progress WHERE org_id = :o AND zone = :z"),
        {"o": org, "z": name}).scalar()
    if found is not None:
        return found  # type: ignore[no-any-return]
    first = conn.execute(sa.text(
        "SELECT min(bucket_start) FROM rollups_15m WHERE org_id = :o"), {"o": org}).scalar()
    if first is None:
        return None
    start = period_start(first, Grain.DAY, tz)
    _set_built(conn, org, name, start)
    return start


def _set_built(conn: sa.Connection, org: uuid.UUID, name: str, through: datetime) -> None:
    conn.execute(sa.text(
        "INSERT INTO zone_day_progress (org_id, zone, built_through) VALUES (:o, :z, :t) "
        "ON CONFLICT (org_id, zone) DO UPDATE SET built_through = excluded.built_through"),
        {"o": org, "z": name, "t": through})

