"""`bulk.Columns`: the same rows as SQLAlchemy's own executemany, every column type converted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from analytics_adapters.sql.bulk import Columns
from analytics_adapters.sql.types import UtcDateTime

META = sa.MetaData()


def _table(name: str) -> sa.Table:
    return sa.Table(
        name, META,
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=True),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
    )


THINGS, OURS = _table("things"), _table("ours")


def _engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'bulk.db'}")
    META.create_all(engine)
    return engine


def _rows() -> list[dict[str, object]]:
    return [{"id": uuid.UUID(int=i), "at": datetime(2026, 1, 1, i, tzinfo=UTC),
             "doc": {"k": i} if i % 2 else None, "blob": bytes([i]), "n": i * 10**12}
            for i in range(1, 5)]


NAMES = ("id", "at", "doc", "blob", "n")


def _staged(conn: sa.Connection, table: sa.Table) -> Columns:
    """`_rows()` staged as columns of `table`."""
    return Columns(conn, table, NAMES, [tuple(r[n] for n in NAMES) for r in _rows()])


def test_rows_read_back_exactly_as_core_writes_them(tmp_path: Path) -> None:
    """UUID, zone-aware datetime, JSON (and JSON null), bytes and big integers round-trip, and
    the stored values equal those of SQLAlchemy's own executemany."""
    engine = _engine(tmp_path)
    ours = OURS
    with engine.begin() as conn:
        _staged(conn, ours).execute(ours.insert())
        conn.execute(THINGS.insert(), _rows())
    with engine.connect() as conn:
        mine = conn.execute(sa.select(ours).order_by(ours.c.n)).all()
        core = conn.execute(sa.select(THINGS).order_by(THINGS.c.n)).all()
        raw_mine = conn.exec_driver_sql("SELECT * FROM ours ORDER BY n").all()
        raw_core = conn.exec_driver_sql("SELECT * FROM things ORDER BY n").all()
    assert [tuple(r) for r in mine] == [tuple(r) for r in core]
    assert raw_mine == raw_core
    assert mine[0].id == uuid.UUID(int=1)
    assert mine[0].at == datetime(2026, 1, 1, 1, tzinfo=UTC)


def test_an_upsert_applies_its_conflict_clause(tmp_path: Path) -> None:
    """ON CONFLICT DO UPDATE runs per row as with Core."""
    engine = _engine(tmp_path)
    stmt = sqlite_insert(THINGS)
    stmt = stmt.on_conflict_do_update(index_elements=["id"],
                                      set_={"n": THINGS.c.n + stmt.excluded.n})
    with engine.begin() as conn:
        _staged(conn, THINGS).execute(stmt)
        _staged(conn, THINGS).execute(stmt)
    with engine.connect() as conn:
        assert conn.execute(sa.select(THINGS.c.n).order_by(THINGS.c.n)).scalars().all() == [
            2 * i * 10**12 for i in range(1, 5)]


def test_columns_convert_once_and_a_replaced_column_is_what_lands(tmp_path: Path) -> None:
    """Rows staged as columns land as core writes them; one column replaced between two
    statements (a tier's floored bucket starts) changes only that column."""
    engine = _engine(tmp_path)
    rows = _rows()
    with engine.begin() as conn:
        staged = _staged(conn, OURS)
        staged.execute(OURS.insert())
        conn.execute(THINGS.insert(), rows)
        later = [datetime(2027, 1, 1, tzinfo=UTC)] * len(rows)
        staged.set("at", later)
        staged.set("id", [uuid.UUID(int=100 + i) for i in range(len(rows))])
        staged.execute(OURS.insert())
    with engine.connect() as conn:
        mine = conn.execute(sa.select(OURS).order_by(OURS.c.at, OURS.c.n)).all()
        core = conn.execute(sa.select(THINGS).order_by(THINGS.c.n)).all()
    assert [tuple(r) for r in mine[:4]] == [tuple(r) for r in core]
    assert [(r.id, r.at, r.doc, r.blob, r.n) for r in mine[4:]] == [
        (uuid.UUID(int=100 + i), later[0], r["doc"], r["blob"], r["n"])
        for i, r in enumerate(rows)]


def test_columns_refuse_a_statement_binding_other_columns(tmp_path: Path) -> None:
    """A statement that binds more (or other) columns than staged is refused, not run with
    values in the wrong places."""
    engine = _engine(tmp_path)
    with engine.begin() as conn:
        staged = Columns(conn, OURS, ("id", "at"), [(uuid.UUID(int=1), datetime.now(UTC))])
        with pytest.raises(ValueError, match="exactly the staged columns"):
            staged.execute(OURS.insert().values(n=sa.bindparam("n")))
