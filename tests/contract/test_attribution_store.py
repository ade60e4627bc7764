"""AttributionStore contract on every backend: values admitted under a cap per (org, day,
dimension), additive attribution rollups, and aggregates per value of one dimension equal to
the reference merge, in every tier, never mixing dimensions or orgs."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from analytics_core.attribution import group_of
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.rollups import Rollup, RollupKey, aggregate_rollups
from analytics_core.timegrid import BUCKET as STEP
from tests.contract.factories import BUCKET, make_rollup, new_id

DAY = date(2026, 3, 1)


def test_values_are_admitted_up_to_the_cap_first_come(uow_factory: UnitOfWorkFactory) -> None:
    """A key admits new values while it holds fewer than the cap; values admitted before stay
    admitted; other days, dimensions and orgs have their own count."""
    org, other = new_id(), new_id()
    key = (org, DAY, "tag:team")
    with uow_factory() as uow:
        first = uow.attribution.admit({key: {"a", "b"}}, 3)
        uow.commit()
    with uow_factory() as uow:
        second = uow.attribution.admit({key: {"b", "c", "d", "e"},
                                        (org, DAY + timedelta(days=1), "tag:team"): {"z"},
                                        (org, DAY, "actor"): {"x"},
                                        (other, DAY, "tag:team"): {"q"}}, 3)
        uow.commit()
    assert first == {key: {"a", "b"}}
    assert second[key] == {"b", "c"}  # one room left: the first new value in sorted order
    assert second[(org, DAY + timedelta(days=1), "tag:team")] == {"z"}
    assert second[(org, DAY, "actor")] == {"x"}
    assert second[(other, DAY, "tag:team")] == {"q"}
    with uow_factory() as uow:
        assert uow.attribution.admit({key: {"a", "d", "クライアント"}}, 3) == {key: {"a"}}


def test_the_cap_admits_new_values_in_code_point_order(uow_factory: UnitOfWorkFactory) -> None:
    """At the cap, the new values admitted are the first in code point order (as Python sorts
    str), not in a locale's order, on every backend; one batch repeating a held value gets it."""
    key = (new_id(), DAY, "tag:team")
    with uow_factory() as uow:
        assert uow.attribution.admit({key: {"é", "Z", "a", "ß"}}, 2) == {key: {"Z", "a"}}
        uow.commit()
    with uow_factory() as uow:
        assert uow.attribution.admit({key: {"é", "ß", "a"}}, 3) == {key: {"a", "ß"}}
        uow.commit()
    with uow_factory() as uow:
        assert uow.attribution.admit({key: {"é", "ß", "Z"}}, 3) == {key: {"Z", "ß"}}


def test_an_uncommitted_admission_is_rolled_back(uow_factory: UnitOfWorkFactory) -> None:
    """Leaving the unit without commit admits nothing."""
    key = (new_id(), DAY, "actor")
    with uow_factory() as uow:
        uow.attribution.admit({key: {"a"}}, 1)
    with uow_factory() as uow:
        assert uow.attribution.admit({key: {"b"}}, 1) == {key: {"b"}}


def _spread(org: uuid.UUID) -> list[Rollup]:
    models = [new_id(), new_id()]
    groups = [group_of("tag:team", "search"), group_of("tag:team", ""),
              group_of("tag:team", "(other)"), group_of("actor", "u1"),
              group_of("tag:teamX", "search")]
    return [
        Rollup(RollupKey(org, models[i % 2], groups[i % 5], BUCKET + STEP * (i * 7)),
               make_rollup(org, n=2 + i % 4).stats)
        for i in range(40)
    ]


def test_aggregate_per_value_equals_the_reference_merge_in_every_tier(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Cells of one dimension equal aggregate_rollups over that dimension's rows (groups as
    values), for edges on days, on hours and on 15 minutes; other dimensions (even one whose
    name extends this one's) and other orgs never count."""
    org = new_id()
    rollups = _spread(org)
    with uow_factory() as uow:
        uow.attribution.add(rollups)
        uow.attribution.add([Rollup(RollupKey(new_id(), r.key.model_id, r.key.client_id,
                                              r.key.bucket_start), r.stats) for r in rollups])
        uow.commit()
    mine = [r for r in rollups if r.key.client_id.startswith(group_of("tag:team", ""))]
    for edges in (
        [BUCKET, BUCKET + timedelta(days=1), BUCKET + timedelta(days=3)],
        [BUCKET + timedelta(hours=2), BUCKET + timedelta(hours=30), BUCKET + timedelta(days=3)],
        [BUCKET + STEP * 3, BUCKET + timedelta(days=1, minutes=45), BUCKET + timedelta(days=3)],
    ):
        with uow_factory() as uow:
            got = uow.attribution.aggregate(org, edges, dimension="tag:team")
        expected = [(start, group.split("\x1f", 1)[1] if group else group, stats)
                    for start, group, stats in aggregate_rollups(mine, edges, "client")]
        assert got == expected
        assert {value for _, value, _ in got} <= {"search", "", "(other)"}


def test_aggregate_filters_by_model_and_adds_repeated_deltas(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """A model filter keeps its rows only; adding the same delta twice counts twice."""
    org = new_id()
    rollups = _spread(org)
    model = rollups[0].key.model_id
    with uow_factory() as uow:
        uow.attribution.add(rollups)
        uow.attribution.add(rollups[:1])
        uow.commit()
    edges = [BUCKET, BUCKET + timedelta(days=4)]
    with uow_factory() as uow:
        got = uow.attribution.aggregate(org, edges, dimension="actor", model_ids=[model])
    wanted = [r for r in [*rollups, rollups[0]]
              if r.key.client_id.startswith("actor\x1f") and r.key.model_id == model]
    assert sum(c[2].invocations for c in got) == sum(r.stats.invocations for r in wanted) > 0


def test_catalog_adjustments_change_existing_rows_only_in_every_tier(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """adjust_catalog adds catalog costs and priced counts to rows that exist (read back
    through the day tier and the base alike) and never creates a row."""
    from analytics_core.rollups import RollupStats  # noqa: PLC0415

    org = new_id()
    row = _spread(org)[0]
    missing = RollupKey(org, row.key.model_id, group_of("tag:team", "nobody"),
                        row.key.bucket_start)
    with uow_factory() as uow:
        uow.attribution.add([row])
        uow.commit()
    delta = RollupStats(catalog_costs=(5, -1, 0, 0, 7, 0, 0), priced=1)
    with uow_factory() as uow:
        uow.attribution.adjust_catalog([Rollup(row.key, delta), Rollup(missing, delta)])
        uow.commit()
    day = row.key.bucket_start.replace(hour=0, minute=0)
    for edges in ([day, day + timedelta(days=1)],
                  [row.key.bucket_start, row.key.bucket_start + STEP]):
        with uow_factory() as uow:
            cells = uow.attribution.aggregate(org, edges, dimension="tag:team")
        assert [(value, stats.catalog_costs, stats.priced) for _, value, stats in cells] == [
            ("search", tuple(a + b for a, b in zip(row.stats.catalog_costs,
                                                   delta.catalog_costs, strict=True)),
             row.stats.priced + 1)]
