"""Alembic environment: migrate the connection handed over by `analytics migrate`, or a URL."""

from __future__ import annotations

import logging.config
import os

import sqlalchemy as sa
from alembic import context

from analytics_adapters.sql import citus
from analytics_adapters.sql.engine import create_sql_engine
from analytics_adapters.sql.schema import metadata

config = context.config
if config.config_file_name is not None:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("ANALYTICS_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise SystemExit("set ANALYTICS_DATABASE_URL or pass -x url=... to alembic")
    return url


def _migrate(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        if citus.has_citus(connection):
            # Every migration runs in this one transaction; Citus refuses DDL on functions
            # after a parallel multi-shard statement unless shards are reached over one
            # connection per node.
            connection.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
        context.run_migrations()


def run_offline() -> None:
    """Print the SQL instead of running it (`alembic upgrade head --sql`)."""
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run on the caller's connection when given one, else on a fresh engine."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = create_sql_engine(_url())
    try:
        with engine.connect() as conn:
            _migrate(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
