"""`analytics rollups zones list|add|remove` and `analytics rollups build` (zone day tiers)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics_adapters.sql import SqlStorage
from analytics_app.cli import main
from analytics_core.rollups import build_rollups
from tests.contract.sql_backends import fresh_postgres_database, storage_at
from tests.integration.sql_support import event


@pytest.fixture
def postgres(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlStorage]:
    """The clean ANALYTICS_* environment of `data_dir` on a new migrated PostgreSQL database."""
    del data_dir  # asked for its environment only
    with fresh_postgres_database() as url, storage_at(url) as storage:
        monkeypatch.setenv("ANALYTICS_DATABASE_URL", url.render_as_string(hide_password=False))
        yield storage


@pytest.mark.postgres
def test_zones_are_added_built_listed_and_removed(
    postgres: SqlStorage, capsys: pytest.CaptureFixture[str],
) -> None:
    """add lists a zone, build builds every org's past local days with progress on stderr,
    list shows how far, remove deletes the rows."""
    org = uuid.uuid4()
    start = datetime.now(UTC) - timedelta(days=5)
    with postgres.unit_of_work() as uow:
        uow.rollups.add(build_rollups([event(org, start + timedelta(hours=h))
                                       for h in range(0, 96, 5)]))
        uow.commit()
    assert main(["rollups", "zones", "add", "Asia/Kolkata", "America/New_York"]) == 0
    out = capsys.readouterr()
    assert "Asia/Kolkata: added" in out.out
    assert "rollups build" in out.err
    assert main(["rollups", "zones", "add", "Asia/Kolkata"]) == 0
    assert "already listed" in capsys.readouterr().out
    assert main(["rollups", "build"]) == 0
    out = capsys.readouterr()
    assert "in 2 zones for 1 orgs" in out.out
    assert "Asia/Kolkata: 1/1 orgs" in out.err
    with postgres.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT zone, count(*) FROM rollups_zone_1d GROUP BY zone ORDER BY zone")).all()
    assert [r[0] for r in rows] == ["America/New_York", "Asia/Kolkata"]
    assert all(r[1] >= 4 for r in rows)
    assert main(["rollups", "zones", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["zones"]
    assert [z["zone"] for z in listed] == ["America/New_York", "Asia/Kolkata"]
    assert all(z["orgs"] == 1 and z["builtThrough"] for z in listed)
    assert listed[1]["builtThrough"].endswith("T00:00:00+05:30")
    assert main(["rollups", "zones", "remove", "Asia/Kolkata"]) == 0
    assert "day rows deleted" in capsys.readouterr().out
    with postgres.engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT count(*) FROM rollups_zone_1d WHERE zone = 'Asia/Kolkata'")).scalar() == 0


@pytest.mark.postgres
def test_bad_zones_are_named_with_the_valid_choices(
    postgres: SqlStorage, capsys: pytest.CaptureFixture[str],
) -> None:
    """An unknown zone, UTC, and removing a zone that has no tier exit 2 with the reason."""
    del postgres
    assert main(["rollups", "zones", "add", "Asia/Kolkatta"]) == 2
    assert "Asia/Kolkata" in capsys.readouterr().err  # the suggestion
    assert main(["rollups", "zones", "add", "UTC"]) == 2
    assert "UTC days are the day tier itself" in capsys.readouterr().err
    assert main(["rollups", "zones", "add", "Asia/Kathmandu"]) == 0
    capsys.readouterr()
    assert main(["rollups", "zones", "remove", "Asia/Kolkata"]) == 2
    assert "listed: Asia/Kathmandu" in capsys.readouterr().err


def test_sqlite_says_the_tiers_are_a_postgresql_feature(
    migrated: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """On the embedded store every action explains why there is nothing to do."""
    del migrated
    for argv in (["rollups", "zones", "list"], ["rollups", "zones", "add", "Asia/Kolkata"],
                 ["rollups", "build"]):
        assert main(argv) == 2
        assert "PostgreSQL (and Citus) storage only" in capsys.readouterr().err
