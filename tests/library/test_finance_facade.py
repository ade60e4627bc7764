"""The library's finance and support methods: audit filters, reconciliations read back, the
asyncio twins return what the synchronous methods do."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from analytics import Analytics, Outcome, ValidationFailed
from analytics_core.access import Action, Actor
from analytics_core.errors import Forbidden


def test_audit_lists_the_orgs_decisions_filtered_by_outcome() -> None:
    """An allowed and a denied decision; outcome filters; a bad outcome names the field."""
    org = uuid.uuid4()
    with Analytics.in_memory() as analytics:
        authorize = analytics._app.use_cases.authorize
        authorize(Actor("user:ann", org, frozenset({"analytics:usage:read"})),
                  Action.USAGE_READ, org)
        with pytest.raises(Forbidden):
            authorize(Actor("user:eve", uuid.uuid4(), frozenset({"org_admin"})),
                      Action.USAGE_READ, org)
        every = analytics.audit(org)
        denied = analytics.audit(str(org), outcome="denied")
        with pytest.raises(ValidationFailed) as bad:
            analytics.audit(org, outcome="maybe")
    assert [e.actor for e in every] == ["user:eve", "user:ann"]
    assert [(e.actor, e.outcome) for e in denied] == [("user:eve", Outcome.DENIED)]
    assert bad.value.errors[0].field == "outcome"


def test_reconciliations_are_kept_and_the_async_twins_agree() -> None:
    """A run made through aio is listed and read back by the synchronous methods."""
    org = uuid.uuid4()
    report = f"day,model,cost\n2024-03-01,{uuid.uuid4()},1.5\n"
    with Analytics.in_memory() as analytics:
        kept = asyncio.run(analytics.aio.reconcile(org, report, tolerance_percent="0.5"))
        listed = analytics.reconciliations(org)
        again = analytics.reconciliation(org, kept.run.reconciliation_id)
        letters = asyncio.run(analytics.aio.dead_letters(org))
    assert [r.reconciliation_id for r in listed] == [kept.run.reconciliation_id]
    assert again == kept
    assert kept.run.flagged_count == 1  # invoiced, nothing metered
    assert letters == []
