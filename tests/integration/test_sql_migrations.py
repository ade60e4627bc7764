"""Alembic migrations up and down, schema equal to the code's metadata, unmigrated DBs refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from analytics_adapters.sql import (
    SqlStorage,
    check_schema_current,
    current_revision,
    downgrade,
    head_revision,
    migrate_to_head,
)
from analytics_adapters.sql.migrate import upgrade
from analytics_adapters.sql.partitions import ensure_event_partitions
from analytics_adapters.sql.schema import metadata, rollups_15m, usage_events
from analytics_core.errors import SchemaNotMigrated
from analytics_core.events import TokenDetails
from tests.contract.sql_backends import storage_at
from tests.integration.sql_support import database_url, fresh_storage

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
         pytest.param("citus", marks=pytest.mark.citus)]
TABLES = set(metadata.tables)


def table_names(engine: sa.Engine) -> set[str]:
    """Tables of the database, without partitions and Alembic's own table."""
    names = set(sa.inspect(engine).get_table_names())
    return {n for n in names if not n.startswith("usage_events_p") and n != "alembic_version"}


@pytest.mark.parametrize("kind", KINDS)
def test_upgrade_creates_every_table_and_downgrade_removes_them(kind: str) -> None:
    """head creates every table of the metadata; base removes them all; head again works."""
    with database_url(kind, migrate=False) as url, storage_at(url) as storage:
        assert migrate_to_head(url) == head_revision()
        assert table_names(storage.engine) == TABLES
        assert current_revision(storage.engine) == head_revision()
        downgrade(url, "base")
        assert table_names(storage.engine) == set()
        assert current_revision(storage.engine) is None
        migrate_to_head(storage.engine)
        assert table_names(storage.engine) == TABLES


@pytest.mark.parametrize("kind", KINDS)
def test_migrated_schema_matches_the_table_metadata(kind: str) -> None:
    """Autogenerate finds no difference between the migrated database and schema.py."""
    with fresh_storage(kind) as storage, storage.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [
            d for d in compare_metadata(context, metadata)
            if not (isinstance(d, tuple) and d[0] == "remove_table"
                    and d[1].name.startswith("usage_events_p"))
        ]
    assert diff == []


@pytest.mark.parametrize("kind", KINDS)
def test_unmigrated_database_is_refused_with_a_clear_message(kind: str) -> None:
    """check() on an empty database raises SchemaNotMigrated telling to run migrate."""
    with fresh_storage(kind, migrate=False) as storage:
        with pytest.raises(SchemaNotMigrated, match="analytics migrate"):
            storage.check()
        with pytest.raises(SchemaNotMigrated, match="analytics migrate"):
            check_schema_current(storage.engine)


@pytest.mark.parametrize("kind", KINDS)
def test_repository_use_on_an_unmigrated_database_raises_schema_not_migrated(kind: str) -> None:
    """A missing table surfaces as SchemaNotMigrated, not as a driver error."""
    with (
        fresh_storage(kind, migrate=False) as storage,
        storage.unit_of_work() as uow,
        pytest.raises(SchemaNotMigrated),
    ):
        uow.api_keys.find("nope")


@pytest.mark.parametrize("kind", KINDS)
def test_database_at_another_revision_is_refused_naming_both_revisions(kind: str) -> None:
    """A schema behind (or ahead of) the code names its revision and the expected one."""
    with fresh_storage(kind) as storage:
        with storage.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = 'older'"))
        with pytest.raises(SchemaNotMigrated, match=f"older.*{head_revision()}"):
            storage.check()


@pytest.mark.parametrize("kind", KINDS)
def test_migrated_database_passes_the_readiness_check(kind: str) -> None:
    """check() returns quietly on a database at head."""
    with fresh_storage(kind) as storage:
        storage.check()


def test_sqlite_data_survives_a_restart_of_the_storage() -> None:
    """Closing and reopening the embedded database keeps what was committed."""
    with database_url("sqlite") as url:
        key_id = f"k-{uuid.uuid4()}"
        first = SqlStorage.from_url(url)
        with first.unit_of_work() as uow:
            uow.offsets.save("consumer", key_id, 41)
            uow.commit()
        first.close()
        with storage_at(url) as second, second.unit_of_work() as uow:
            assert uow.offsets.get("consumer", key_id) == 41


@pytest.mark.parametrize("kind", KINDS)
def test_token_categories_migration_reads_old_rows_as_zero_without_rewriting_them(
    kind: str,
) -> None:
    """Rows written at revision 0004 read back with every token category 0 after 0005, and on
    PostgreSQL no table was rewritten (each keeps its storage file)."""
    at = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    org, model, event_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with database_url(kind, migrate=False) as url, storage_at(url) as storage:
        upgrade(url, "0004")
        postgres = storage.engine.dialect.name == "postgresql"
        with storage.engine.begin() as conn:
            if postgres:
                ensure_event_partitions(conn, {at.date()})
            # Only the columns revision 0004 has (Core names just the given ones).
            conn.execute(usage_events.insert().values(
                org_id=org, occurred_at=at, event_id=event_id, model_id=model, status=0,
                latency_ms=120, input_tokens=300, output_tokens=45, cost_units=12345,
            ))
            conn.execute(rollups_15m.insert().values(
                org_id=org, bucket_start=at, model_id=model, client_id="", invocations=1,
                success=1, errors=0, timeouts=0, throttled=0, input_tokens=300,
                output_tokens=45, cost_units=12345, latency_sum=120, latency_min=120,
                latency_max=120, lat_zeros=0, lat_bins=[], lat_counts=[], error_codes={},
            ))
            files = _storage_files(conn) if postgres else {}
        upgrade(url, "head")
        with storage.engine.connect() as conn:
            after = _storage_files(conn) if postgres else {}
            assert {name: after[name] for name in files} == files  # new tables aside
        with storage.unit_of_work() as uow:
            (stored,) = uow.events.scan(org, at, at + timedelta(seconds=1))
            (rollup,) = uow.rollups.query(org, at, at + timedelta(minutes=15))
        assert stored.token_details == TokenDetails()
        assert rollup.stats.token_details == TokenDetails()
        assert (stored.input_tokens, rollup.stats.input_tokens) == (300, 300)


def _storage_files(conn: sa.Connection) -> dict[str, int]:
    """relfilenode of every table of the schema (and event partition): a rewrite changes it."""
    rows = conn.execute(sa.text(
        "SELECT relname, relfilenode FROM pg_class WHERE relkind = 'r' "
        "AND relnamespace = 'public'::regnamespace"
    ))
    return {str(row[0]): int(row[1]) for row in rows}


@pytest.mark.parametrize("kind", [pytest.param("postgres", marks=pytest.mark.postgres),
                                  pytest.param("citus", marks=pytest.mark.citus)])
def test_attribution_zone_days_migration_has_every_zone_built_again(kind: str) -> None:
    """Days built at 0018 had no attribution rows: 0019 clears the progress, so reads stop
    taking those days from the tiers until a build writes both (the listed zones stay)."""
    from analytics_adapters.sql import zone_days  # noqa: PLC0415  used by this test only

    org = uuid.uuid4()
    at = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    with database_url(kind, migrate=False) as url, storage_at(url) as storage:
        upgrade(url, "0018")
        with storage.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO rollup_zones (zone, added_at) VALUES "
                                 "('Asia/Kolkata', :at)"), {"at": at})
            conn.execute(sa.text("INSERT INTO zone_day_progress (org_id, zone, built_through) "
                                 "VALUES (:o, 'Asia/Kolkata', :at)"), {"o": org, "at": at})
        upgrade(url, "head")
        with storage.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM zone_day_progress")).scalar() == 0
            assert [z[0] for z in zone_days.zones(conn)] == ["Asia/Kolkata"]
