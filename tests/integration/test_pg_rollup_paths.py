"""PostgreSQL rollup upserts: both tier statements and the sketch merge equal the core's merges."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_adapters.sql import SqlStorage, downgrade, migrate_to_head, pg_rollups
from analytics_adapters.sql.convert import ROLLUP_COLUMNS, rollup_from_values
from analytics_adapters.sql.schema import rollups_1d, rollups_1h, rollups_15m
from analytics_adapters.sql.sqlite_rollups import coarsen, floor_day, floor_hour
from analytics_core.events import Status, UsageEvent
from analytics_core.rollups import Rollup, build_rollups
from tests.integration.sql_support import T0, event, fresh_storage

pytestmark = pytest.mark.postgres

MODEL_A, MODEL_B = uuid.UUID(int=1), uuid.UUID(int=2)


@pytest.fixture(scope="module", params=[pytest.param("postgres", marks=pytest.mark.postgres),
                                        pytest.param("citus", marks=pytest.mark.citus)])
def storage(request: pytest.FixtureRequest) -> Iterator[SqlStorage]:
    """A fresh migrated PostgreSQL database (single node, then the Citus cluster)."""
    with fresh_storage(request.param) as s:
        yield s


def at(org: uuid.UUID, when: datetime, model: uuid.UUID = MODEL_A, latency: int = 120,
       status: Status = Status.SUCCESS, client: str = "c") -> UsageEvent:
    """One event of `org` at `when` (error code E_<latency % 3> when it failed)."""
    e = event(org, when, latency_ms=latency, model_id=model, status=status)
    code = None if status is Status.SUCCESS else f"E_{latency % 3}"
    return attrs.evolve(e, client_id=client, error_code=code)


def deltas(batch: list[UsageEvent]) -> list[Rollup]:
    """The base deltas of a batch."""
    return build_rollups(batch)


def test_distinct_tier_keys_tells_batches_that_share_a_tier_key() -> None:
    """Two buckets of one hour share the hour key; other models or hours do not."""
    org = uuid.uuid4()
    same_hour = deltas([at(org, T0 + timedelta(minutes=5)), at(org, T0 + timedelta(minutes=20))])
    next_hour = deltas([at(org, T0 + timedelta(minutes=5)), at(org, T0 + timedelta(minutes=65))])
    other_model = deltas([at(org, T0 + timedelta(minutes=5)),
                          at(org, T0 + timedelta(minutes=20), MODEL_B)])
    one_bucket = deltas([at(org, T0), at(org, T0, MODEL_B), at(org, T0, client="d")])
    assert not pg_rollups.distinct_tier_keys(same_hour, floor_hour)
    assert pg_rollups.distinct_tier_keys(next_hour, floor_hour)
    assert not pg_rollups.distinct_tier_keys(next_hour, floor_day)
    assert pg_rollups.distinct_tier_keys(other_model, floor_hour)
    assert pg_rollups.distinct_tier_keys(other_model, floor_day)
    assert pg_rollups.distinct_tier_keys(one_bucket, floor_day)


def stored(storage: SqlStorage, table: sa.Table, org: uuid.UUID) -> dict[object, object]:
    """Rows of one org in a rollup table, by key."""
    t = table.c
    with storage.engine.connect() as conn:
        rows = conn.execute(sa.select(*(t[c] for c in ROLLUP_COLUMNS)).where(t.org_id == org))
        return {r.key: r.stats for r in map(rollup_from_values, rows)}


def batches(org: uuid.UUID) -> list[list[UsageEvent]]:
    """Batches taking either tier statement, landing on stored rows and on new ones."""
    wide = [at(org, T0 + timedelta(minutes=1), latency=int(3 * 1.3 ** i)) for i in range(45)]
    failed = [at(org, T0 + timedelta(minutes=2), latency=n, status=Status.ERROR)
              for n in (7, 8, 9)]
    return [
        # one bucket: distinct keys, all rows new
        [at(org, T0, latency=10), at(org, T0, MODEL_B, latency=0), *failed],
        # two buckets of one hour, same model: shared hour and day keys
        [at(org, T0, latency=11), at(org, T0 + timedelta(minutes=20), latency=12),
         at(org, T0 + timedelta(minutes=20), MODEL_B, status=Status.TIMEOUT)],
        # two hours, other models: distinct keys on both tiers, stored and new rows
        [at(org, T0 + timedelta(minutes=3), latency=10),
         at(org, T0 + timedelta(minutes=70), MODEL_B, latency=500, status=Status.ERROR)],
        # more than 32 new bins into a stored bucket, plus a one-bin delta onto a stored bin
        [*wide, at(org, T0 + timedelta(minutes=70), MODEL_B, latency=500)],
        # same hour, different models (hour and day distinct) and a second day
        [at(org, T0 + timedelta(minutes=4), latency=13),
         at(org, T0 + timedelta(minutes=31), MODEL_B, latency=14, status=Status.ERROR),
         at(org, T0 + timedelta(days=1), latency=15)],
    ]


def test_tier_rows_equal_core_merges_whichever_statement_runs(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After every batch, hour and day rows equal the core's merge of all base deltas."""
    seen: list[bool] = []
    check = pg_rollups.distinct_tier_keys

    def spy(rollups: list[Rollup], floor: Any) -> bool:
        seen.append(check(rollups, floor))
        return seen[-1]

    monkeypatch.setattr(pg_rollups, "distinct_tier_keys", spy)
    org = uuid.uuid4()
    ingested: list[UsageEvent] = []
    for batch in batches(org):
        with storage.unit_of_work() as uow:
            uow.rollups.add(deltas(batch))
            uow.commit()
        ingested += batch
        base = build_rollups(ingested)
        assert stored(storage, rollups_15m, org) == {r.key: r.stats for r in base}
        for table, floor in ((rollups_1h, floor_hour), (rollups_1d, floor_day)):
            assert stored(storage, table, org) == {r.key: r.stats
                                                   for r in coarsen(base, floor)}
    assert set(seen) == {True, False}


def merge_both(conn: sa.Connection, a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[Any, Any]:
    """(analytics_merge_sketch, analytics_sketch_add) of the same arguments."""
    args = "%s::int4[], %s::int8[], %s::int4[], %s::int8[]"
    row = conn.exec_driver_sql(
        f"SELECT m.bins, m.counts, (n.s).bins, (n.s).counts "
        f"FROM analytics_merge_sketch({args}) AS m, "
        f"(SELECT analytics_sketch_add({args}) AS s OFFSET 0) AS n",
        (*a, *b, *a, *b),
    ).one()
    return (row[0], row[1]), (row[2], row[3])


BINS = st.integers(-20, 300)
COUNTS = st.integers(1, 2**40)


@st.composite
def sketch_pairs(draw: st.DrawFn) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """A stored sketch (or NULLs) and a delta of 0-2 or up to 40 bins, often on stored bins."""
    stored = draw(st.dictionaries(BINS, COUNTS, max_size=60))
    bins = st.one_of(st.sampled_from(sorted(stored)), BINS) if stored else BINS
    delta = draw(st.dictionaries(bins, COUNTS, max_size=draw(st.sampled_from([1, 2, 40]))))
    a = (None, None) if draw(st.integers(0, 9)) == 0 else (list(stored), list(stored.values()))
    return a, (list(delta), list(delta.values()))


@settings(max_examples=min(60, settings().max_examples))
@given(pair=sketch_pairs())
def test_sketch_add_equals_the_merge_of_0001_exactly(
    storage: SqlStorage, pair: tuple[tuple[Any, Any], tuple[Any, Any]],
) -> None:
    """Same bins and counts in the same order as analytics_merge_sketch, and the exact sum."""
    with storage.engine.connect() as conn:
        old, new = merge_both(conn, *pair)
    assert new == old
    expected: dict[int, int] = {}
    for bins, counts in pair:
        for i, c in zip(bins or [], counts or [], strict=True):
            expected[i] = expected.get(i, 0) + c
    assert len(new[0]) == len(set(new[0]))
    assert dict(zip(*new, strict=True)) == expected


def sketch_functions(storage: SqlStorage) -> set[str]:
    """Names of the analytics_sketch_* functions in the database."""
    with storage.engine.connect() as conn:
        return set(conn.exec_driver_sql(
            "SELECT proname FROM pg_proc WHERE starts_with(proname, 'analytics_sketch_')"
        ).scalars())


def test_migration_0002_downgrades_and_upgrades_again() -> None:
    """Down to 0001 drops the new merge functions and leaves the rest; up adds them back."""
    with fresh_storage("postgres") as storage:
        assert {"analytics_sketch_add", "analytics_sketch_sum"} <= sketch_functions(storage)
        downgrade(storage.engine, "0001")
        assert sketch_functions(storage) == {"analytics_sketch_acc", "analytics_sketch_agg"}
        migrate_to_head(storage.engine)
        assert {"analytics_sketch_add", "analytics_sketch_sum"} <= sketch_functions(storage)
        org = uuid.uuid4()
        with storage.unit_of_work() as uow:
            uow.rollups.add(deltas([at(org, T0)]))
            uow.rollups.add(deltas([at(org, T0)]))
            uow.commit()
        assert [s.invocations for s in stored(storage, rollups_1d, org).values()] == [2]
