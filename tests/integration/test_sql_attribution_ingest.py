"""Attribution at ingest on SQL backends against the in-memory reference: the same batches
give the same values past the daily cap (in `(other)`), the same overflow counts and the same
per-value series, whichever way the backend admits values (PostgreSQL admits them in one
statement and reads back only the values left out)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics_adapters.memory import (
    InMemoryStorage,
    ManualClock,
    SequentialIds,
    SynchronousPipeline,
    unit_of_work_factory,
)
from analytics_adapters.sql import pg_rollups
from analytics_core.attribution import OTHER, AttributionSettings
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.timegrid import Grain
from analytics_core.usecases.ingest import RawMessage, ingest_batch
from analytics_core.usecases.queries import AnalyticsQuery, GroupBy, query_analytics
from tests.integration.sql_support import fresh_storage

T0 = datetime(2026, 1, 5, tzinfo=UTC)
NOW = T0 + timedelta(days=3)
ORGS = [uuid.UUID(int=1), uuid.UUID(int=2)]
MODEL = uuid.UUID(int=10)
SETTINGS = AttributionSettings(("team",), value_cap=3)
# (batch, org index, day, team, actor): the first org's day 0 fills its 3 teams over two
# batches ("é" and "ß" sort after "Z" and "a" by code point), the second org and day 1 count
# apart, and an actor repeats across batches.
PLAN = [
    (0, 0, 0, "b", 1), (0, 0, 0, "a", 1), (0, 1, 0, "a", 2), (0, 0, 1, "z", None),
    (1, 0, 0, "é", 1), (1, 0, 0, "Z", 3), (1, 0, 0, "ß", 3), (1, 0, 0, "a", None),
    (1, 1, 0, "b", 2), (1, 1, 0, "c", 2), (1, 1, 0, "d", 4), (1, 1, 0, "e", 4),
    (2, 0, 0, "é", 5), (2, 0, 1, "y", 5), (2, 0, 1, "x", 5), (2, 0, 1, "w", 5), (2, 0, 1, "z", 1),
]


def _batches() -> list[list[RawMessage]]:
    batches: list[list[RawMessage]] = [[], [], []]
    for n, (batch, org, day, team, actor) in enumerate(PLAN):
        payload: dict[str, object] = {
            "eventId": str(uuid.UUID(int=1000 + n)), "orgId": str(ORGS[org]),
            "modelId": str(MODEL),
            "occurredAt": (T0 + timedelta(days=day, hours=2, minutes=n)).isoformat(),
            "status": "success", "latencyMs": 100 + n, "inputTokens": 10, "outputTokens": 5,
            "costEstimateCents": "0.25", "metadata": {"team": team}}
        if actor is not None:
            payload["actorId"] = str(uuid.UUID(int=actor))
        batches[batch].append(RawMessage(payload))
    return batches


def _run(uow_factory: UnitOfWorkFactory) -> tuple[list[int], list[object]]:
    clock = ManualClock(NOW)
    overflow = [ingest_batch(batch, source="test", uow_factory=uow_factory, clock=clock,
                             ids=SequentialIds(), attribution=SETTINGS).attribution_overflow
                for batch in _batches()]
    series: list[object] = []
    for org in ORGS:
        for group_by, tag in ((GroupBy.TAG, "team"), (GroupBy.ACTOR, None)):
            report = query_analytics(
                AnalyticsQuery(org, T0, NOW, Grain.DAY, "UTC", group_by=group_by, tag=tag),
                uow_factory=uow_factory, progress=SynchronousPipeline(), clock=clock,
                latency=True, attribution=SETTINGS)
            series.append([(p.bucket_start, p.group, p.stats) for p in report.series])
    return overflow, series


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                                  pytest.param("citus", marks=pytest.mark.citus)])
def test_attribution_at_ingest_equals_the_in_memory_reference(kind: str) -> None:
    """Same overflow per batch, same series per team and actor, as the in-memory store."""
    expected = _run(unit_of_work_factory(InMemoryStorage()))
    # batch 1: 'é' and 'ß' (only 'Z' fits), the second org's 'd' and 'e'; batch 2: 'é' again
    # and 'y' (day 1 had room for 'w' and 'x')
    assert expected[0] == [0, 4, 2]
    first_org_teams = {(p[0].day, p[1]) for p in expected[1][0]}  # type: ignore[index]
    assert (5, OTHER) in first_org_teams
    assert (5, "ß") not in first_org_teams
    with fresh_storage(kind) as storage:
        assert _run(storage.unit_of_work) == expected


@pytest.mark.postgres
@pytest.mark.parametrize("shared_at_most", [0.0, 10.0])
def test_staging_row_by_row_or_shared_stores_the_same(
        shared_at_most: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deltas staged one row each, or staged once per shared stats object with all their
    groups and expanded in PostgreSQL (forced either way here), store the same rollups."""
    monkeypatch.setattr(pg_rollups, "_SHARED_AT_MOST", shared_at_most)
    expected = _run(unit_of_work_factory(InMemoryStorage()))
    with fresh_storage("postgres") as storage:
        assert _run(storage.unit_of_work) == expected
