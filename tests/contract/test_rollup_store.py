"""RollupStore contract: additive merges, ordered filtered queries, active orgs."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import attrs

from analytics_core.money import Cents
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.rollups import (
    NO_CLIENT,
    Rollup,
    RollupKey,
    RollupStats,
    aggregate_rollups,
    merge_stats,
)
from analytics_core.timegrid import BUCKET as STEP
from tests.contract.factories import BUCKET, make_rollup, new_id

FAR = timedelta(days=400)


def add(uow_factory: UnitOfWorkFactory, rollups: list[Rollup]) -> None:
    """rollups.add in its own committed unit of work."""
    with uow_factory() as uow:
        uow.rollups.add(rollups)
        uow.commit()


def query(
    uow_factory: UnitOfWorkFactory, org_id: uuid.UUID, start: datetime = BUCKET - FAR,
    end: datetime = BUCKET + FAR, **filters: list[uuid.UUID] | list[str],
) -> list[Rollup]:
    """rollups.query in its own unit of work."""
    with uow_factory() as uow:
        return uow.rollups.query(org_id, start, end, **filters)  # type: ignore[arg-type]


def test_add_creates_missing_rollups(uow_factory: UnitOfWorkFactory) -> None:
    """A delta for a key never stored is stored as it is."""
    delta = make_rollup(new_id())
    add(uow_factory, [delta])
    assert query(uow_factory, delta.key.org_id) == [delta]


def test_add_merges_deltas_into_the_stored_rollup(uow_factory: UnitOfWorkFactory) -> None:
    """Adding to an existing key stores the exact merge of every delta."""
    first = make_rollup(new_id(), n=12)
    second = Rollup(first.key, make_rollup(first.key.org_id, first.key.model_id, n=7).stats)
    add(uow_factory, [first])
    add(uow_factory, [second])
    assert query(uow_factory, first.key.org_id) == [
        Rollup(first.key, merge_stats([first.stats, second.stats]))
    ]


def test_add_merges_repeated_keys_within_one_call(uow_factory: UnitOfWorkFactory) -> None:
    """Several deltas for one key in one call all count."""
    delta = make_rollup(new_id())
    add(uow_factory, [delta, delta, delta])
    (stored,) = query(uow_factory, delta.key.org_id)
    assert stored.stats == merge_stats([delta.stats] * 3)
    assert stored.stats.invocations == 3 * delta.stats.invocations


def test_rollups_round_trip_every_statistic_exactly(uow_factory: UnitOfWorkFactory) -> None:
    """Counts, exact cost, latency extremes, sketch bins and error codes survive storage."""
    org = new_id()
    rich = make_rollup(org, client_id="クライアント-1", n=40)
    empty_client = make_rollup(org, rich.key.model_id, client_id=NO_CLIENT, n=1)
    add(uow_factory, [rich, empty_client])
    found = {r.key: r.stats for r in query(uow_factory, org)}
    assert found == {rich.key: rich.stats, empty_client.key: empty_client.stats}
    assert found[rich.key].sketch.zero_count > 0
    assert found[rich.key].error_codes


def test_rollup_with_no_latency_round_trips(uow_factory: UnitOfWorkFactory) -> None:
    """Empty statistics (no latency min/max, empty sketch) are stored as they are."""
    key = RollupKey(new_id(), new_id(), "c", BUCKET)
    add(uow_factory, [Rollup(key, RollupStats())])
    assert query(uow_factory, key.org_id) == [Rollup(key, RollupStats())]


def test_query_is_start_inclusive_and_end_exclusive(uow_factory: UnitOfWorkFactory) -> None:
    """Buckets starting at `start` are included, at `end` excluded."""
    org, model = new_id(), new_id()
    rollups = [make_rollup(org, model, bucket_start=BUCKET + i * STEP, n=2) for i in range(-1, 3)]
    add(uow_factory, rollups)
    assert query(uow_factory, org, BUCKET, BUCKET + 2 * STEP) == rollups[1:3]


def test_query_orders_by_bucket_then_model_then_client(uow_factory: UnitOfWorkFactory) -> None:
    """Results come sorted by (bucket_start, model_id, client_id)."""
    org = new_id()
    models = [new_id() for _ in range(3)]
    rollups = [
        make_rollup(org, m, client_id=c, bucket_start=BUCKET + b * STEP, n=1)
        for b in (1, 0) for m in models for c in ("b", NO_CLIENT, "a")
    ]
    add(uow_factory, rollups)
    expected = sorted(
        rollups, key=lambda r: (r.key.bucket_start, r.key.model_id, r.key.client_id)
    )
    assert query(uow_factory, org) == expected


def test_query_filters_by_models_and_clients(uow_factory: UnitOfWorkFactory) -> None:
    """Non-empty model and client lists filter; empty lists mean all."""
    org, m1, m2 = new_id(), new_id(), new_id()
    rollups = [make_rollup(org, m, client_id=c, n=1) for m in (m1, m2) for c in ("x", "y")]
    add(uow_factory, rollups)

    def keys(**filters: list[uuid.UUID] | list[str]) -> set[tuple[uuid.UUID, str]]:
        return {(r.key.model_id, r.key.client_id) for r in query(uow_factory, org, **filters)}

    assert keys(model_ids=[m1]) == {(m1, "x"), (m1, "y")}
    assert keys(client_ids=["y"]) == {(m1, "y"), (m2, "y")}
    assert keys(model_ids=[m2], client_ids=["x"]) == {(m2, "x")}
    assert len(keys(model_ids=[], client_ids=[])) == 4


def test_query_never_returns_other_orgs_rollups(uow_factory: UnitOfWorkFactory) -> None:
    """Only the requested org's rollups are returned."""
    mine, theirs = make_rollup(new_id()), make_rollup(new_id())
    add(uow_factory, [mine, theirs])
    assert query(uow_factory, mine.key.org_id) == [mine]


def test_active_orgs_lists_orgs_with_rollups_in_range(uow_factory: UnitOfWorkFactory) -> None:
    """Orgs with a bucket in [start, end) are listed, sorted; others are not."""
    inside = [new_id() for _ in range(4)]
    at_end, before = new_id(), new_id()
    end = BUCKET + 4 * STEP
    add(uow_factory, [make_rollup(org, n=1, bucket_start=BUCKET + i * STEP)
                      for i, org in enumerate(inside)])
    add(uow_factory, [make_rollup(at_end, n=1, bucket_start=end),
                      make_rollup(before, n=1, bucket_start=BUCKET - STEP)])
    with uow_factory() as uow:
        active = uow.rollups.active_orgs(BUCKET, end)
    assert active == sorted(active)
    assert set(inside) <= set(active)
    assert at_end not in active
    assert before not in active


def test_active_orgs_lists_each_org_once(uow_factory: UnitOfWorkFactory) -> None:
    """An org with many rollups in range appears once."""
    org = new_id()
    add(uow_factory, [make_rollup(org, n=1, bucket_start=BUCKET + i * STEP) for i in range(3)])
    with uow_factory() as uow:
        assert uow.rollups.active_orgs(BUCKET, BUCKET + 3 * STEP).count(org) == 1


def _spread(org_id: uuid.UUID) -> list[Rollup]:
    """Rollups over three days, two models and two clients (one the empty client)."""
    models = [new_id(), new_id()]
    return [
        make_rollup(org_id, models[i % 2], ["client-a", NO_CLIENT][i % 3 == 0],
                    BUCKET + STEP * (i * 7), n=3 + i % 5)
        for i in range(40)
    ]


def aggregate(uow_factory: UnitOfWorkFactory, org_id: uuid.UUID, edges: list[datetime],
              **options: object) -> list[tuple[datetime, str | None, RollupStats]]:
    """rollups.aggregate in its own unit of work."""
    with uow_factory() as uow:
        return uow.rollups.aggregate(org_id, edges, **options)  # type: ignore[arg-type]


def test_aggregate_equals_the_reference_merge_of_the_queried_rollups(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Per (period, group) cells equal aggregate_rollups over query(), for every grouping."""
    org = new_id()
    rollups = _spread(org)
    add(uow_factory, rollups)
    # Day edges starting mid-day, an hour edge, and one not on a day: every tier must agree.
    edges = [BUCKET + STEP * 3, BUCKET + timedelta(days=1), BUCKET + timedelta(days=1, hours=5),
             BUCKET + timedelta(days=2), BUCKET + timedelta(days=3)]
    stored = query(uow_factory, org)
    for group_by in ("model", "client", "none"):
        got = aggregate(uow_factory, org, edges, group_by=group_by)
        assert got == aggregate_rollups(stored, edges, group_by)
        assert sum(cell[2].invocations for cell in got) == sum(
            r.stats.invocations for r in stored if edges[0] <= r.key.bucket_start < edges[-1]
        )


def test_aggregate_filters_by_model_and_client(uow_factory: UnitOfWorkFactory) -> None:
    """Model and client filters restrict the cells exactly as they restrict query()."""
    org = new_id()
    rollups = _spread(org)
    add(uow_factory, rollups)
    model = rollups[1].key.model_id
    edges = [BUCKET, BUCKET + timedelta(days=4)]
    got = aggregate(uow_factory, org, edges, group_by="client", model_ids=[model],
                    client_ids=["client-a"])
    expected = aggregate_rollups(
        query(uow_factory, org, model_ids=[model], client_ids=["client-a"]), edges, "client"
    )
    assert got == expected
    assert [cell[1] for cell in got] == ["client-a"]


def test_aggregate_without_latency_leaves_sketches_and_error_codes_empty(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """latency=False keeps every additive field and empties the sketch and the error codes."""
    org = new_id()
    add(uow_factory, _spread(org))
    edges = [BUCKET, BUCKET + timedelta(days=4)]
    full = aggregate(uow_factory, org, edges, group_by="none")
    bare = aggregate(uow_factory, org, edges, group_by="none", latency=False)
    assert [(c[0], c[1], c[2].invocations, c[2].cost) for c in bare] == [
        (c[0], c[1], c[2].invocations, c[2].cost) for c in full
    ]
    assert all(c[2].sketch.count == 0 and not c[2].error_codes for c in bare)
    assert full[0][2].sketch.count == full[0][2].invocations


def test_aggregate_of_an_empty_window_or_other_org_is_empty(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """No rollups in the edges (or another org's only) gives no cells."""
    org = new_id()
    add(uow_factory, _spread(org))
    assert aggregate(uow_factory, new_id(), [BUCKET, BUCKET + timedelta(days=4)]) == []
    before = [BUCKET - timedelta(days=9), BUCKET - timedelta(days=8)]
    assert aggregate(uow_factory, org, before) == []
    assert aggregate(uow_factory, org, [BUCKET]) == []


def test_sums_past_the_64_bit_range_read_back_as_exact_integers(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Rows already holding the int64 limit (as an older release could store) still read: a
    merge of two such days is the exact integer, never an overflow error or a float."""
    org, big = new_id(), 2**63 - 1
    day = BUCKET.replace(hour=0, minute=0, second=0, microsecond=0)
    model = new_id()
    rows = [make_rollup(org, model, bucket_start=day + timedelta(days=d)) for d in (0, 1)]
    rows = [Rollup(r.key, attrs.evolve(r.stats, input_tokens=big, cost=Cents(big),
                                        latency_sum=big)) for r in rows]
    add(uow_factory, rows)
    [(_, _, stats)] = aggregate(uow_factory, org, [day, day + timedelta(days=2)],
                                group_by="none", latency=False)
    assert (stats.input_tokens, stats.cost.units, stats.latency_sum) == (2 * big,) * 3
    assert all(type(v) is int for v in (stats.input_tokens, stats.cost.units,
                                         stats.latency_sum, stats.invocations))
