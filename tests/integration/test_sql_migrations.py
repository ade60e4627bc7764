"""Alembic migrations up and down, schema equal to the code's metadata, unmigrated DBs refused."""

from __future__ import annotations

import uuid

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
from analytics_adapters.sql.schema import metadata
from analytics_core.errors import SchemaNotMigrated
from tests.contract.sql_backends import storage_at
from tests.integration.sql_support import database_url, fresh_storage

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
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
