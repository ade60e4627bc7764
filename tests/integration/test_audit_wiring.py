"""Which audit path each storage binds: on PostgreSQL the service audits every decision
through the one-statement appender on a held connection; on SQLite through a unit of work.
Either way the entry is stored before the decision returns, and a denial is audited too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from analytics_adapters.sql.audit_appender import PgAuditAppender
from analytics_app.bootstrap.application import Application
from analytics_app.config import Settings
from analytics_core.access import ORG_ADMIN, Action, Actor, Outcome
from analytics_core.errors import Forbidden
from analytics_core.records import AuditFilter
from tests.contract.sql_backends import fresh_postgres_database


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def application(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Application]:
    """The service's composition on a fresh PostgreSQL database or SQLite file."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
        with Application(attrs.evolve(Settings(), database_url=url)) as app:
            app.migrate()
            yield app
        return
    with fresh_postgres_database() as pg:
        settings = attrs.evolve(Settings(),
                                database_url=pg.render_as_string(hide_password=False))
        with Application(settings) as app:
            yield app


def test_each_decision_is_stored_through_the_bound_path(application: Application) -> None:
    """PostgreSQL binds the appender and SQLite none; an allowed and a denied decision are
    both in the org's audit when `authorize` returns or raises."""
    postgres = application.settings.storage == "postgres"
    assert isinstance(application.ports.audit, PgAuditAppender) == postgres
    assert (application.ports.audit is None) == (not postgres)
    org, other = uuid.uuid4(), uuid.uuid4()
    actor = Actor("apikey:ak_test", org, frozenset({ORG_ADMIN}))
    application.use_cases.authorize(actor, Action.USAGE_READ, org, resource="usage")
    with pytest.raises(Forbidden):
        application.use_cases.authorize(actor, Action.USAGE_READ, other, resource="usage")
    mine = application.use_cases.list_audit(org, AuditFilter())
    theirs = application.use_cases.list_audit(other, AuditFilter())
    assert [(e.actor, e.outcome) for e in mine.entries] == [("apikey:ak_test", Outcome.ALLOWED)]
    assert [(e.actor, e.outcome) for e in theirs.entries] == [("apikey:ak_test", Outcome.DENIED)]
