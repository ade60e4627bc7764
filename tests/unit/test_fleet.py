"""The admin's fleet summary: every active org, this window against the one before."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics_adapters.memory import (
    InMemoryStorage,
    ManualClock,
    SequentialIds,
    unit_of_work_factory,
)
from analytics_core.errors import ValidationFailed
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.usecases.fleet import FleetWindow, fleet_summary
from analytics_core.usecases.ingest import RawMessage, ingest_batch

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
WINDOW = FleetWindow(datetime(2024, 3, 8, tzinfo=UTC), datetime(2024, 3, 15, tzinfo=UTC))


def _ingest(uow_factory: UnitOfWorkFactory, org: uuid.UUID, at: datetime, cents: str,
            status: str = "success") -> None:
    message = RawMessage(json.dumps({
        "eventId": str(uuid.uuid4()), "orgId": str(org), "modelId": str(uuid.uuid4()),
        "occurredAt": at.isoformat(), "status": status, "latencyMs": 10, "inputTokens": 1,
        "outputTokens": 1, "costEstimateCents": cents,
        **({"errorCode": "e"} if status == "error" else {}),
    }).encode())
    result = ingest_batch([message], source="http", uow_factory=uow_factory,
                          clock=ManualClock(NOW), ids=SequentialIds())
    assert result.accepted == 1


@pytest.fixture
def uow_factory() -> UnitOfWorkFactory:
    """Units of work over a fresh in-memory database."""
    return unit_of_work_factory(InMemoryStorage())


def test_each_org_gets_its_window_and_the_one_before(uow_factory: UnitOfWorkFactory) -> None:
    """Costs split at the window's start; an org active only before still appears."""
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    _ingest(uow_factory, a, datetime(2024, 3, 10, tzinfo=UTC), "3.5")
    _ingest(uow_factory, a, datetime(2024, 3, 10, 1, tzinfo=UTC), "1", status="error")
    _ingest(uow_factory, a, datetime(2024, 3, 2, tzinfo=UTC), "2")
    _ingest(uow_factory, b, datetime(2024, 3, 7, 23, 45, tzinfo=UTC), "7")
    rows = fleet_summary(WINDOW, uow_factory=uow_factory)
    assert [r.org_id for r in rows] == [a, b]
    assert rows[0].current.cost.exact_str() == "4.5000"
    assert rows[0].current.invocations == 2
    assert rows[0].current.failures == 1
    assert rows[0].previous.cost.exact_str() == "2.0000"
    assert rows[1].current.invocations == 0
    assert rows[1].previous.cost.exact_str() == "7.0000"


def test_orgs_outside_both_windows_are_left_out(uow_factory: UnitOfWorkFactory) -> None:
    """Usage older than the previous window or after the window lists no org."""
    _ingest(uow_factory, uuid.UUID(int=3), datetime(2024, 2, 1, tzinfo=UTC), "1")
    _ingest(uow_factory, uuid.UUID(int=4), datetime(2024, 3, 15, 1, tzinfo=UTC), "1")
    assert fleet_summary(WINDOW, uow_factory=uow_factory) == []


def test_the_previous_window_has_the_same_length() -> None:
    """Edges are on 15-minute boundaries, the previous window as long as the window."""
    window = FleetWindow(datetime(2024, 3, 8, 0, 5, tzinfo=UTC),
                         datetime(2024, 3, 8, 1, 0, tzinfo=UTC))
    assert window.edges == [datetime(2024, 3, 7, 23, 0, tzinfo=UTC),
                            datetime(2024, 3, 8, 0, 0, tzinfo=UTC),
                            datetime(2024, 3, 8, 1, 0, tzinfo=UTC)]
    assert window.edges[1] - window.edges[0] == timedelta(hours=1)


def test_an_empty_window_is_refused() -> None:
    """end must be after start."""
    with pytest.raises(ValidationFailed):
        FleetWindow(NOW, NOW)
