"""Run the Alembic migrations in `migrations/` programmatically and check a database is current."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from analytics_adapters.sql.engine import create_sql_engine
from analytics_adapters.sql.errors import translate_errors
from analytics_core.errors import SchemaNotMigrated

MIGRATIONS_ENV = "ANALYTICS_MIGRATIONS_DIR"
_REPO_ROOT = Path(__file__).resolve().parents[3]


def migrations_dir() -> Path:
    """The `migrations/` directory (override with ANALYTICS_MIGRATIONS_DIR)."""
    configured = os.environ.get(MIGRATIONS_ENV)
    path = Path(configured) if configured else _REPO_ROOT / "migrations"
    if not (path / "env.py").is_file():
        raise FileNotFoundError(f"no Alembic migrations at {path}; set {MIGRATIONS_ENV}")
    return path


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config pointing at `migrations/`, optionally bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    """The newest revision the code expects (read once per process; readiness asks often)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations/ has no revision"
    return head


def _run(target: str | URL | sa.Engine, upgrade: bool, revision: str) -> None:
    engine = target if isinstance(target, sa.Engine) else create_sql_engine(target)
    try:
        with translate_errors(), engine.connect() as conn:
            config = alembic_config(conn)
            if upgrade:
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
            conn.commit()
    finally:
        if engine is not target:
            engine.dispose()


def migrate_to_head(target: str | URL | sa.Engine) -> str:
    """Apply every pending migration; return the revision the database is now at."""
    _run(target, True, "head")
    return head_revision()


def upgrade(target: str | URL | sa.Engine, revision: str = "head") -> None:
    """Upgrade to `revision`."""
    _run(target, True, revision)


def downgrade(target: str | URL | sa.Engine, revision: str = "base") -> None:
    """Downgrade to `revision` (`base` removes every table the migrations created)."""
    _run(target, False, revision)


def current_revision(engine: sa.Engine) -> str | None:
    """The revision recorded in the database, or None when it was never migrated."""
    with translate_errors(), engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
    return revision


def check_schema_current(engine: sa.Engine) -> None:
    """Raise SchemaNotMigrated unless the database is at the head revision.

    StoreUnavailable propagates when the database cannot be reached at all.
    """
    current = current_revision(engine)
    head = head_revision()
    if current is None:
        raise SchemaNotMigrated(
            "the database has no analytics schema; run `analytics migrate` first"
        )
    if current != head:
        raise SchemaNotMigrated(
            f"the database schema is at revision {current} but this version needs {head}; "
            "run `analytics migrate`"
        )
