"""The export worker keeps the zone day tiers built (docs/storage.md, "Zone day tiers"): on
PostgreSQL its housekeeping extends every listed zone, so a deployment needs no cron entry
for them; on SQLite the same housekeeping has nothing to build and still runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest
import sqlalchemy as sa

from analytics_adapters.sql import SqlStorage, zone_days
from analytics_app.bootstrap.application import Application
from analytics_app.config import Settings
from analytics_core.rollups import build_rollups
from tests.contract.sql_backends import fresh_postgres_database
from tests.integration.sql_support import events_over

DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def application(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Application]:
    """The service's composition on a fresh PostgreSQL database or SQLite file."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'zones.db'}"
        with Application(attrs.evolve(Settings(), database_url=url)) as app:
            app.migrate()
            yield app
        return
    with fresh_postgres_database() as pg:
        settings = attrs.evolve(Settings(),
                                database_url=pg.render_as_string(hide_password=False))
        with Application(settings) as app:
            yield app


def test_housekeeping_builds_the_listed_zones(application: Application) -> None:
    """Events of three days ago; a zone listed; one housekeeping round of the export worker
    builds the org's local days in that zone up to the last midnight an hour ago."""
    org = uuid.uuid4()
    storage: SqlStorage = application.container.sql_storage()
    with storage.unit_of_work() as uow:
        uow.rollups.add(build_rollups(events_over(org, DAY, 96)))
        uow.commit()
    if application.settings.storage != "postgres":
        application.export_worker().housekeeping()  # nothing to build, nothing fails
        return
    assert application.add_zone_tier("Asia/Kolkata")
    application.export_worker().housekeeping()
    with storage.engine.connect() as conn:
        built = conn.execute(sa.text(
            "SELECT built_through FROM zone_day_progress WHERE org_id = :o"), {"o": org}
        ).scalar_one()
        days = conn.execute(sa.text(
            "SELECT count(DISTINCT bucket_start) FROM rollups_zone_1d WHERE org_id = :o"),
            {"o": org}).scalar_one()
    assert built > DAY
    assert days >= 1
    report = zone_days.build(storage.engine, datetime.now(UTC))
    assert report.days == 0  # the worker left nothing to build


@pytest.mark.postgres
def test_a_failing_build_is_logged_and_housekeeping_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The zone build fails (its progress table is gone): the round logs it and the rest of
    the housekeeping still runs, since reads are exact without the tier."""
    with fresh_postgres_database() as pg:
        settings = attrs.evolve(Settings(),
                                database_url=pg.render_as_string(hide_password=False))
        with Application(settings) as app:
            storage: SqlStorage = app.container.sql_storage()
            with storage.unit_of_work() as uow:
                uow.rollups.add(build_rollups(events_over(uuid.uuid4(), DAY, 8)))
                uow.commit()
            assert app.add_zone_tier("Asia/Kathmandu")
            with storage.engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE zone_day_progress"))
            worker = app.export_worker()
            worker.housekeeping()
    assert "building zone day tiers failed" in caplog.text
