"""The names registry on SQL: model entries with a unique label index, client names per org."""

from __future__ import annotations

import builtins
import uuid
from typing import Any

import sqlalchemy as sa

from analytics_adapters.sql.errors import translated
from analytics_adapters.sql.records import SqlRecordRepository
from analytics_adapters.sql.schema import client_names, model_labels, model_names
from analytics_core.errors import Conflict
from analytics_core.registry import ClientName, ModelEntry, label_key


def _entry(row: Any) -> ModelEntry:
    return ModelEntry(row.model_id, row.name, row.provider, row.family, tuple(row.aliases))


class SqlModelRegistry(SqlRecordRepository):
    """Model entries by id; `model_labels` keeps every label unique across models."""

    @translated
    def all(self) -> builtins.list[ModelEntry]:
        """Every entry, ordered by model id."""
        rows = self._read().execute(sa.select(model_names).order_by(model_names.c.model_id))
        return [_entry(r) for r in rows]

    @translated
    def get(self, model_id: uuid.UUID) -> ModelEntry | None:
        """One model's entry, or None."""
        row = self._read().execute(
            sa.select(model_names).where(model_names.c.model_id == model_id)).one_or_none()
        return None if row is None else _entry(row)

    @translated
    def find(self, label: str) -> ModelEntry | None:
        """The model named or aliased `label`, or None."""
        stmt = (sa.select(model_names)
                .join(model_labels, model_labels.c.model_id == model_names.c.model_id)
                .where(model_labels.c.label_key == label_key(label)))
        row = self._read().execute(stmt).one_or_none()
        return None if row is None else _entry(row)

    @translated
    def put(self, entry: ModelEntry) -> ModelEntry | None:
        """Insert or replace, returning the replaced entry; Conflict when a label names another
        model (a concurrent writer taking the same label loses on the label's primary key:
        Conflict too). Every statement runs on the write connection (SQLite: BEGIN IMMEDIATE
        from the first one)."""
        write = self._write()
        row = write.execute(
            sa.select(model_names).where(model_names.c.model_id == entry.model_id)).one_or_none()
        previous = None if row is None else _entry(row)
        keys = sorted({label_key(label) for label in entry.labels})
        labels = model_labels.c
        taken = write.execute(
            sa.select(labels.label_key, labels.model_id)
            .where(labels.label_key.in_(keys), labels.model_id != entry.model_id)
            .order_by(labels.label_key)).first()
        if taken is not None:
            label = next(x for x in entry.labels if label_key(x) == taken.label_key)
            raise Conflict(f"{label!r} already names model {taken.model_id}")
        write.execute(sa.delete(model_labels).where(labels.model_id == entry.model_id))
        values = {"name": entry.name, "provider": entry.provider, "family": entry.family,
                  "aliases": list(entry.aliases)}
        write.execute(self._insert(model_names).values(model_id=entry.model_id, **values)
                      .on_conflict_do_update(index_elements=["model_id"], set_=values))
        write.execute(sa.insert(model_labels),
                      [{"label_key": key, "model_id": entry.model_id} for key in keys])
        return previous

    @translated
    def delete(self, model_id: uuid.UUID) -> bool:
        """Remove the entry and its labels; False when there was none."""
        write = self._write()
        write.execute(sa.delete(model_labels).where(model_labels.c.model_id == model_id))
        result = write.execute(sa.delete(model_names).where(model_names.c.model_id == model_id)
                               .execution_options(preserve_rowcount=True))
        return bool(result.rowcount)


class SqlClientNameStore(SqlRecordRepository):
    """Client names by (org, client id)."""

    @translated
    def list(self, org_id: uuid.UUID) -> builtins.list[ClientName]:
        """The org's names, ordered by client id (code-point order on every engine)."""
        t = client_names.c
        order = t.client_id.collate("C") if self._postgres else t.client_id
        rows = self._read().execute(
            sa.select(client_names).where(t.org_id == org_id).order_by(order))
        return [ClientName(r.org_id, r.client_id, r.name) for r in rows]

    @translated
    def put(self, entry: ClientName) -> None:
        """Insert or replace."""
        self._write().execute(
            self._insert(client_names)
            .values(org_id=entry.org_id, client_id=entry.client_id, name=entry.name)
            .on_conflict_do_update(index_elements=["org_id", "client_id"],
                                   set_={"name": entry.name}))

    @translated
    def delete(self, org_id: uuid.UUID, client_id: str) -> bool:
        """Remove the name; False when there was none."""
        t = client_names.c
        result = self._write().execute(
            sa.delete(client_names).where(t.org_id == org_id, t.client_id == client_id)
            .execution_options(preserve_rowcount=True))
        return bool(result.rowcount)
