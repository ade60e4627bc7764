"""Manage and read the names registry: models platform-wide (admin), client names per org."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

import attrs

from analytics_core.access import Actor
from analytics_core.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.registry import ClientName, ModelEntry, Names, label_key


@attrs.frozen
class ImportReport:
    """What an import changed: entries created, replaced, and left as they were."""

    created: int
    updated: int
    unchanged: int


def require_admin(actor: Actor, what: str) -> None:
    """Forbidden unless `actor` is a platform admin (the registry of models is global)."""
    if not actor.is_admin:
        raise Forbidden(f"{what} needs the admin role (the model registry is platform-wide)")


def list_models(*, uow_factory: UnitOfWorkFactory) -> list[ModelEntry]:
    """Every registered model, by model id."""
    with uow_factory() as uow:
        return uow.models.all()


def get_model(model_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory) -> ModelEntry:
    """One model's entry; NotFound when it has none."""
    with uow_factory() as uow:
        entry = uow.models.get(model_id)
    if entry is None:
        raise NotFound(f"model {model_id} is not registered")
    return entry


def put_model(entry: ModelEntry, *, uow_factory: UnitOfWorkFactory) -> bool:
    """Register or rename a model; True when it was new. Conflict when a label names
    another model."""
    with uow_factory() as uow:
        created = uow.models.put(entry) is None
        uow.commit()
    return created


def delete_model(model_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory) -> None:
    """Forget a model's names (its data is untouched); NotFound when it had none."""
    with uow_factory() as uow:
        if not uow.models.delete(model_id):
            raise NotFound(f"model {model_id} is not registered")
        uow.commit()


def import_models(entries: Sequence[ModelEntry], *, uow_factory: UnitOfWorkFactory,
                  dry_run: bool = False) -> ImportReport:
    """Register every entry in one transaction: all or nothing (`dry_run`: check and count,
    then roll back).

    Two entries of the file with the same model id, or sharing a label, are a ValidationFailed
    naming both rows; a label that names a model outside the file is a Conflict naming the row.
    """
    _check_file(entries)
    created = updated = unchanged = 0
    with uow_factory() as uow:
        for row, entry in enumerate(entries, start=1):
            try:  # writes first: no read lock to upgrade on SQLite
                stored = uow.models.put(entry)
            except Conflict as e:
                raise Conflict(f"row {row} ({entry.model_id}): {e}") from e
            if stored == entry:
                unchanged += 1
            else:
                created, updated = created + (stored is None), updated + (stored is not None)
        if not dry_run:
            uow.commit()
    return ImportReport(created, updated, unchanged)


def _check_file(entries: Sequence[ModelEntry]) -> None:
    errors: list[FieldError] = []
    ids: dict[uuid.UUID, int] = {}
    labels: dict[str, int] = {}
    for row, entry in enumerate(entries, start=1):
        if entry.model_id in ids:
            errors.append(FieldError(f"row {row}: modelId",
                                     f"repeats row {ids[entry.model_id]}"))
        ids.setdefault(entry.model_id, row)
        for label in entry.labels:
            first = labels.setdefault(label_key(label), row)
            if first != row:
                errors.append(FieldError(f"row {row}: {label}", f"also names row {first}"))
    if errors:
        raise ValidationFailed(errors, "the file contradicts itself")


def list_client_names(org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory) -> list[ClientName]:
    """The org's client names, by client id."""
    with uow_factory() as uow:
        return uow.clients.list(org_id)


def put_client_name(entry: ClientName, *, uow_factory: UnitOfWorkFactory) -> None:
    """Name (or rename) one of the org's client ids."""
    with uow_factory() as uow:
        uow.clients.put(entry)
        uow.commit()


def delete_client_name(org_id: uuid.UUID, client_id: str, *,
                       uow_factory: UnitOfWorkFactory) -> None:
    """Forget a client's name; NotFound when it had none."""
    with uow_factory() as uow:
        if not uow.clients.delete(org_id, client_id):
            raise NotFound(f"client {client_id!r} has no name in this org")
        uow.commit()


NAMES_KEPT_FOR = 5.0
"""Seconds a process keeps an org's names for labelling documents (`NamesCache`)."""


class NamesCache:
    """Each org's names as read at most `ttl` seconds ago, for labelling documents: every
    labelled read otherwise reads the whole registry. A rename in this process clears it at
    once (the use cases call `clear`); one made by another process shows within `ttl`. Names
    are labels, never identity or permission, so a label seconds old is harmless. Thread-safe
    (one dict assignment per load)."""

    def __init__(self, ttl: float = NAMES_KEPT_FOR,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._now = now
        self._kept: dict[uuid.UUID, tuple[float, Names]] = {}

    def get(self, org_id: uuid.UUID, load: Callable[[], Names]) -> Names:
        """The org's names, loaded when not kept or kept too long."""
        now = self._now()
        kept = self._kept.get(org_id)
        if kept is not None and kept[0] > now:
            return kept[1]
        names = load()
        if len(self._kept) > _MAX_ORGS_KEPT:
            self._kept = {}
        self._kept[org_id] = (now + self._ttl, names)
        return names

    def clear(self) -> None:
        """Forget every org's names (after a change of names)."""
        self._kept = {}


_MAX_ORGS_KEPT = 10_000


def names_for(org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory) -> Names:
    """Every model name and the org's client names, for rendering its documents."""
    with uow_factory() as uow:
        models = {e.model_id: e.name for e in uow.models.all()}
        clients = {c.client_id: c.name for c in uow.clients.list(org_id)}
    return Names(models, clients)
