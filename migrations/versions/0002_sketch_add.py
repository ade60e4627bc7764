"""PostgreSQL: a cheaper sketch merge for the rollup upserts (`analytics_sketch_add`).

`analytics_merge_sketch` (0001) returns OUT parameters, so the upserts call it as a function scan
(a tuplestore per row). `analytics_sketch_sum` is the same fold returning the `analytics_sketch`
composite, called as a scalar; `analytics_sketch_add` is an inlinable SQL function that adds a
one-bin delta (about half the conflicting rows of a live batch) with plain array expressions
and hands every other delta to `analytics_sketch_sum`. Both give exactly the bins and counts, in
the same order, of `analytics_merge_sketch`, which stays for the `analytics_sketch_agg`
aggregate. SQLite is untouched (its merge functions are registered in Python).

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The body of 0001's analytics_merge_sketch, returning the composite instead of OUT params.
SKETCH_SUM = """
CREATE FUNCTION analytics_sketch_sum(
  a_bins int4[], a_counts int8[], b_bins int4[], b_counts int8[]
) RETURNS analytics_sketch LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  j int;
  p int;
  n int := coalesce(cardinality(b_bins), 0);
  bins int4[] := coalesce(a_bins, '{}');
  counts int8[] := coalesce(a_counts, '{}');
BEGIN
  IF n = 0 THEN
    RETURN ROW(bins, counts);
  END IF;
  IF n > 32 THEN
    SELECT coalesce(array_agg(i ORDER BY i), '{}'), coalesce(array_agg(c ORDER BY i), '{}')
      INTO bins, counts
      FROM (SELECT i, sum(c)::int8 AS c
              FROM (SELECT * FROM unnest(bins, counts)
                    UNION ALL SELECT * FROM unnest(b_bins, b_counts)) AS x(i, c)
             GROUP BY i) AS y;
    RETURN ROW(bins, counts);
  END IF;
  FOR j IN 1 .. n LOOP
    p := array_position(bins, b_bins[j]);
    IF p IS NULL THEN
      bins := bins || b_bins[j];
      counts := counts || b_counts[j];
    ELSE
      counts[p] := counts[p] + b_counts[j];
    END IF;
  END LOOP;
  RETURN ROW(bins, counts);
END $$"""

# A single SELECT of one expression, so the planner inlines it into the calling statement: a
# one-bin delta never enters plpgsql (~0.6 µs instead of ~3 µs per row).
SKETCH_ADD = """
CREATE FUNCTION analytics_sketch_add(
  a_bins int4[], a_counts int8[], b_bins int4[], b_counts int8[]
) RETURNS analytics_sketch LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN cardinality(b_bins) = 1 AND a_bins IS NOT NULL AND a_counts IS NOT NULL THEN
      CASE WHEN array_position(a_bins, b_bins[1]) IS NULL
        THEN ROW(a_bins || b_bins[1], a_counts || b_counts[1])::analytics_sketch
        ELSE ROW(a_bins, a_counts[1 : array_position(a_bins, b_bins[1]) - 1]
                         || (a_counts[array_position(a_bins, b_bins[1])] + b_counts[1])
                         || a_counts[array_position(a_bins, b_bins[1]) + 1:])::analytics_sketch
      END
    ELSE analytics_sketch_sum(a_bins, a_counts, b_bins, b_counts)
  END
$$"""

# Dropped in this order by the downgrade.
OBJECTS = (
    "analytics_sketch_add(int4[], int8[], int4[], int8[])",
    "analytics_sketch_sum(int4[], int8[], int4[], int8[])",
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgres():
        op.execute(SKETCH_SUM)
        op.execute(SKETCH_ADD)


def downgrade() -> None:
    if _postgres():
        for name in OBJECTS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}")
