"""Attribution rollups on SQL: the rollup machinery over the `attribution_*` tables, whose
`client_id` column holds the group key (dimension, separator, value), and the admitted values
per (org, UTC day, dimension)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime

import sqlalchemy as sa

from analytics_adapters.sql import zone_days
from analytics_adapters.sql.base import add_to_rows
from analytics_adapters.sql.errors import translated
from analytics_adapters.sql.pg_stage import Stage, copy_rows, fetch_all
from analytics_adapters.sql.records import SqlRecordRepository
from analytics_adapters.sql.rollup_query import Cell, merge_in_postgres, table_for
from analytics_adapters.sql.rollups import add_deltas, rollup_rows
from analytics_adapters.sql.schema import ATTRIBUTION, attribution_values
from analytics_adapters.sql.sqlite_rollups import floor_day, floor_hour
from analytics_core.attribution import SEPARATOR, group_of, value_of
from analytics_core.rollups import EXTRA_COUNTER_NAMES, Rollup, aggregate_rollups

AdmitKey = tuple[uuid.UUID, date, str]
_KEYS_PER_READ = 300
_CATALOG = (*EXTRA_COUNTER_NAMES[5:12], "priced_invocations")  # catalog costs, priced
_KEY = ("org_id", "bucket_start", "model_id", "client_id")

_WANTED = Stage("analytics_stage_values", """
CREATE TEMP TABLE IF NOT EXISTS analytics_stage_values (
  org_id uuid, day date, dimension text, value text COLLATE "C"
) ON COMMIT DELETE ROWS""", ["uuid", "date", "text", "text"])

# New values of each staged key, ranked in code point order, go in while the key holds fewer
# than the cap (the count read once per key); in key order, so concurrent admitters lock the
# same rows in one order. Citus plans the staged (local) rows against the distributed table.
_ADMIT = """
INSERT INTO attribution_values (org_id, day, dimension, value)
SELECT org_id, day, dimension, value FROM (
  SELECT w.org_id, w.day, w.dimension, w.value,
         row_number() OVER (PARTITION BY w.org_id, w.day, w.dimension ORDER BY w.value)
           AS rank,
         coalesce(h.n, 0) AS held
  FROM analytics_stage_values w
  LEFT JOIN attribution_values a
    ON a.org_id = w.org_id AND a.day = w.day AND a.dimension = w.dimension
       AND a.value = w.value
  LEFT JOIN (
    SELECT org_id, day, dimension, count(*) AS n FROM attribution_values
    WHERE (org_id, day, dimension) IN (
      SELECT DISTINCT org_id, day, dimension FROM analytics_stage_values)
    GROUP BY org_id, day, dimension
  ) h ON h.org_id = w.org_id AND h.day = w.day AND h.dimension = w.dimension
  WHERE a.org_id IS NULL
) AS fresh
WHERE rank <= %(cap)s - held
ORDER BY org_id, day, dimension, value
ON CONFLICT DO NOTHING"""

# What is left out: staged values that no transaction committed before this statement, nor this
# one, admitted (usually none: the cap is rarely reached).
_LEFT_OUT = """
SELECT w.org_id, w.day, w.dimension, w.value FROM analytics_stage_values w
LEFT JOIN attribution_values a
  ON a.org_id = w.org_id AND a.day = w.day AND a.dimension = w.dimension AND a.value = w.value
WHERE a.org_id IS NULL"""


class SqlAttributionStore(SqlRecordRepository):
    """Attribution rollups (additive, every tier) and admitted values under a cap."""

    @translated
    def admit(self, wanted: Mapping[AdmitKey, set[str]], cap: int) -> dict[AdmitKey, set[str]]:
        """The admitted subset of each wanted set; new values are admitted (stored) while the
        key has fewer than `cap`. One read per few hundred keys and one insert; concurrent
        writers each see the values committed before them (so under concurrency a key can
        end a little above the cap: by at most what the concurrent batches admitted)."""
        if not wanted:
            return {}
        if self._postgres:
            return self._admit_in_postgres(wanted, cap)
        write = self._write()
        t = attribution_values.c
        keys = sorted(wanted)
        known: dict[AdmitKey, set[str]] = {}
        for start in range(0, len(keys), _KEYS_PER_READ):  # one read per few hundred keys
            chunk = keys[start:start + _KEYS_PER_READ]
            rows = write.execute(sa.select(t.org_id, t.day, t.dimension, t.value).where(
                sa.tuple_(t.org_id, t.day, t.dimension).in_(chunk)))
            for org, day, dimension, value in rows:
                known.setdefault((org, day, dimension), set()).add(value)
        out: dict[AdmitKey, set[str]] = {}
        fresh_rows: list[dict[str, object]] = []
        for key in keys:
            have = known.get(key, set())
            fresh = sorted(wanted[key] - have)[:max(cap - len(have), 0)]
            fresh_rows.extend({"org_id": key[0], "day": key[1], "dimension": key[2],
                               "value": v} for v in fresh)
            out[key] = (wanted[key] & have) | set(fresh)
        if fresh_rows:  # in key order: concurrent admitters lock the same rows in one order
            write.execute(self._insert(attribution_values).on_conflict_do_nothing(),
                          fresh_rows)
        return out

    def _admit_in_postgres(self, wanted: Mapping[AdmitKey, set[str]], cap: int
                           ) -> dict[AdmitKey, set[str]]:
        """`admit` inside PostgreSQL: the wanted values staged by COPY, admitted by one
        statement, and only the values left out read back (not every value a key holds)."""
        write = self._write()
        copy_rows(self._unit, write, _WANTED, (
            (*key, value) for key, values in wanted.items() for value in values))
        write.exec_driver_sql(_ADMIT, {"cap": cap})
        out = {key: set(values) for key, values in wanted.items()}
        for org, day, dimension, value in fetch_all(write, _LEFT_OUT):
            out[(org, day, dimension)].discard(value)
        return out

    @translated
    def add(self, rollups: Sequence[Rollup]) -> None:
        """Merge deltas into the stored attribution rollups of every tier."""
        add_deltas(self, rollups, ATTRIBUTION)

    @translated
    def aggregate(
        self, org_id: uuid.UUID, boundaries: Sequence[datetime], *, dimension: str,
        model_ids: Sequence[uuid.UUID] = (), latency: bool = True,
    ) -> list[Cell]:
        """Stats merged per (period, value of `dimension`), ordered by (period, value)."""
        if len(boundaries) < 2:
            return []
        prefix = group_of(dimension, "")
        conn = self._read()
        if self._postgres:
            cells = merge_in_postgres(conn, ATTRIBUTION, org_id, boundaries, group_by="client",
                                      model_ids=model_ids, client_ids=(), latency=latency,
                                      client_prefix=prefix,
                                      zoned=zone_days.try_zone_spans(conn, org_id, boundaries))
        else:
            rows = rollup_rows(conn, table_for(boundaries, ATTRIBUTION), org_id,
                               boundaries[0], boundaries[-1], model_ids=model_ids,
                               client_ids=(), client_prefix=prefix)
            cells = aggregate_rollups(rows, boundaries, "client", latency)
        return [(start, value_of(group or SEPARATOR), stats) for start, group, stats in cells]

    @translated
    def adjust_catalog(self, deltas: Sequence[Rollup]) -> None:
        """Add catalog costs and priced counts to the existing rows of every tier, in the key
        order of the ingest upserts (org, bucket, model, group), so the two never deadlock
        (one UPDATE per row and tier: restatement batches are small); both take the orgs'
        history revisions after these rows."""
        if not deltas:
            return
        write = self._write()
        for table, floor in ((ATTRIBUTION.base, None), (ATTRIBUTION.hour, floor_hour),
                             (ATTRIBUTION.day, floor_day)):
            rows: dict[tuple[uuid.UUID, datetime, uuid.UUID, str], list[int]] = {}
            for d in deltas:
                k = d.key
                start = k.bucket_start if floor is None else floor(k.bucket_start)
                acc = rows.setdefault((k.org_id, start, k.model_id, k.client_id),
                                      [0] * len(_CATALOG))
                for i, n in enumerate((*d.stats.catalog_costs, d.stats.priced)):
                    acc[i] += n
            add_to_rows(write, table, _KEY, _CATALOG, rows)
            if floor is None and self._postgres:  # the built zone days hold these rows too
                zone_days.add_to_existing(write, ATTRIBUTION, _CATALOG, rows)
