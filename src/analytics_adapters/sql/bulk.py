"""Many rows in one DBAPI `executemany`, each column's bind processor applied to its values:
what SQLAlchemy Core does for a list of parameter dicts, without its per-row parameter
construction (a quarter of SQLite ingest's time at 5,000-event batches).

`Columns` holds the rows column by column, each already converted for the driver, so several
statements binding the same columns (the three rollup tiers) convert a value once; a tier
replaces only the column that differs (its floored bucket starts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa


class Columns:
    """Rows of a table as driver-ready columns, by column name."""

    def __init__(self, conn: sa.Connection, table: sa.Table, names: Sequence[str],
                 rows: Sequence[Sequence[Any]]) -> None:
        """`rows` hold the values of `names`, in that order."""
        self._conn = conn
        self._table = table
        self.count = len(rows)
        self.values: dict[str, list[Any]] = {}
        for i, name in enumerate(names):
            self.set(name, [row[i] for row in rows])

    def set(self, name: str, values: list[Any]) -> None:
        """Replace one column's values (converted here)."""
        process = self._table.c[name].type.bind_processor(self._conn.dialect)
        self.values[name] = values if process is None else [process(v) for v in values]

    def execute(self, stmt: sa.Insert) -> None:
        """Run `stmt` (an INSERT of this table binding exactly these columns, with or without
        ON CONFLICT) once per row."""
        if not self.count:
            return
        compiled = stmt.compile(dialect=self._conn.dialect, column_keys=list(self.values))
        order = compiled.positiontup
        if not order or sorted(order) != sorted(self.values):
            raise ValueError("the statement must bind exactly the staged columns")
        self._conn.exec_driver_sql(
            str(compiled), list(zip(*(self.values[n] for n in order), strict=True)))

