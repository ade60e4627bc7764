"""ModelRegistry and ClientNameStore contract: entries by id, labels unique across models
(compared by label_key), lookup by name or alias, client names invisible to other orgs."""

from __future__ import annotations

import uuid

import pytest

from analytics_core.errors import Conflict
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.registry import ClientName, ModelEntry


def _label(stem: str) -> str:
    """A label no other test uses (the registry is platform-wide, shared by every test)."""
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def _entry(**overrides: object) -> ModelEntry:
    fields: dict[str, object] = {
        "model_id": uuid.uuid4(), "name": _label("gpt-4.1-mini"), "provider": "openai",
        "family": "gpt-4.1", "aliases": (_label("gpt-4.1-mini-2025-04-14"), _label("4.1m")),
    }
    fields.update(overrides)
    return ModelEntry(**fields)  # type: ignore[arg-type]


def _put(uow_factory: UnitOfWorkFactory, *entries: ModelEntry) -> None:
    with uow_factory() as uow:
        for entry in entries:
            uow.models.put(entry)
        uow.commit()


def test_a_put_entry_is_read_back_with_every_field(uow_factory: UnitOfWorkFactory) -> None:
    """get and all return the stored entry exactly (aliases in order)."""
    entry = _entry()
    _put(uow_factory, entry)
    with uow_factory() as uow:
        assert uow.models.get(entry.model_id) == entry
        assert entry in uow.models.all()
        assert uow.models.get(uuid.uuid4()) is None


def test_all_is_ordered_by_model_id(uow_factory: UnitOfWorkFactory) -> None:
    """Entries come back in model id order."""
    entries = [_entry() for _ in range(5)]
    _put(uow_factory, *entries)
    mine = {e.model_id for e in entries}
    with uow_factory() as uow:
        listed = [e.model_id for e in uow.models.all() if e.model_id in mine]
    assert listed == sorted(mine)


def test_find_resolves_the_name_and_each_alias_ignoring_case_and_spacing(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """find(label) matches the display name or an alias, case-insensitively, after NFKC and
    trimming; an unknown label finds nothing."""
    entry = _entry()
    _put(uow_factory, entry)
    with uow_factory() as uow:
        assert uow.models.find(entry.name) == entry
        assert uow.models.find(f"  {entry.aliases[0].upper()} ") == entry
        assert uow.models.find(entry.aliases[1].replace("4", "\uff14")) == entry  # fullwidth 4
        assert uow.models.find(_label("unknown")) is None


def test_put_replaces_an_entry_and_frees_its_old_labels(uow_factory: UnitOfWorkFactory) -> None:
    """Renaming keeps the id and returns the replaced entry (None for a new one); the old name
    no longer resolves and may name another model."""
    entry = _entry()
    with uow_factory() as uow:
        assert uow.models.put(entry) is None
        uow.commit()
    renamed = ModelEntry(entry.model_id, _label("renamed"), "", "", ())
    with uow_factory() as uow:
        assert uow.models.put(renamed) == entry
        uow.commit()
    other = _entry(name=entry.name)
    _put(uow_factory, other)
    with uow_factory() as uow:
        assert uow.models.get(entry.model_id) == renamed
        assert uow.models.find(renamed.name) == renamed
        assert uow.models.find(entry.name) == other
        assert uow.models.find(entry.aliases[0]) is None


def test_a_label_of_another_model_is_a_conflict_and_changes_nothing(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Putting a name or alias that names another model raises Conflict naming the label; the
    unit of work is left unchanged."""
    first = _entry()
    _put(uow_factory, first)
    clash = _entry(aliases=(_label("fresh"), first.aliases[1].upper()))
    with uow_factory() as uow:
        with pytest.raises(Conflict, match=str(first.model_id)):
            uow.models.put(clash)
        with pytest.raises(Conflict):
            uow.models.put(_entry(name=first.name.upper()))
        uow.commit()
    with uow_factory() as uow:
        assert uow.models.get(clash.model_id) is None
        assert uow.models.find(clash.aliases[0]) is None
        assert uow.models.get(first.model_id) == first


def test_an_uncommitted_put_is_rolled_back(uow_factory: UnitOfWorkFactory) -> None:
    """Leaving the unit without commit keeps nothing."""
    entry = _entry()
    with uow_factory() as uow:
        uow.models.put(entry)
    with uow_factory() as uow:
        assert uow.models.get(entry.model_id) is None
        assert uow.models.find(entry.name) is None


def test_delete_removes_the_entry_and_its_labels(uow_factory: UnitOfWorkFactory) -> None:
    """delete is True once, then False; the labels resolve to nothing."""
    entry = _entry()
    _put(uow_factory, entry)
    with uow_factory() as uow:
        assert uow.models.delete(entry.model_id) is True
        assert uow.models.delete(entry.model_id) is False
        uow.commit()
    with uow_factory() as uow:
        assert uow.models.get(entry.model_id) is None
        assert uow.models.find(entry.aliases[0]) is None


def test_client_names_are_per_org_ordered_and_replaceable(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """An org lists only its own names, by client id; put replaces; delete is True once."""
    org, other = uuid.uuid4(), uuid.uuid4()
    with uow_factory() as uow:
        uow.clients.put(ClientName(org, "svc-b", "Billing service"))
        uow.clients.put(ClientName(org, "svc-a", "Search"))
        uow.clients.put(ClientName(org, "Svc-Z", "Upper"))
        uow.clients.put(ClientName(other, "svc-a", "Not yours"))
        uow.commit()
    with uow_factory() as uow:
        uow.clients.put(ClientName(org, "svc-a", "Search (v2)"))
        assert uow.clients.delete(org, "svc-b") is True
        assert uow.clients.delete(org, "svc-b") is False
        uow.commit()
    with uow_factory() as uow:
        assert uow.clients.list(org) == [ClientName(org, "Svc-Z", "Upper"),
                                         ClientName(org, "svc-a", "Search (v2)")]
        assert uow.clients.list(other) == [ClientName(other, "svc-a", "Not yours")]
        assert uow.clients.list(uuid.uuid4()) == []
