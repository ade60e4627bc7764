"""Names people recognise: display names of models (platform-wide) and of clients (per org).

Events keep identifying a model by UUID and a client by its id; the registry only adds names.
A model's labels (its display name and its aliases, the names provider invoices and price
catalogs use) identify it: no two models share a label, compared case-insensitively after
Unicode NFKC normalisation and whitespace trimming (`label_key`).
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterable, Mapping

import attrs

from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.events import MAX_CLIENT_ID, is_valid_unicode

MAX_NAME = 200
MAX_ALIASES = 32


def label_key(label: str) -> str:
    """The form labels are compared in: NFKC, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", label).strip().casefold()


@attrs.frozen
class ModelEntry:
    """A model's display name, provider, family and aliases."""

    model_id: uuid.UUID
    name: str
    provider: str = ""
    family: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        """The display name, then the aliases."""
        return (self.name, *self.aliases)


@attrs.frozen
class ClientName:
    """One org's display name for one of its client ids."""

    org_id: uuid.UUID
    client_id: str
    name: str


@attrs.frozen
class Names:
    """Display names for one org's documents: model id -> name, client id -> name."""

    models: Mapping[uuid.UUID, str] = attrs.field(factory=dict)
    clients: Mapping[str, str] = attrs.field(factory=dict)

    def model(self, model_id: uuid.UUID | None) -> str | None:
        """The model's name, None when unnamed."""
        return None if model_id is None else self.models.get(model_id)

    def client(self, client_id: str | None) -> str | None:
        """The client's name, None when unnamed."""
        return None if client_id is None else self.clients.get(client_id)


def _text(value: object, field: str, errors: list[FieldError], *, required: bool,
          limit: int = MAX_NAME) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        errors.append(FieldError(field, "must be a string"))
        return ""
    text = value.strip()
    if required and not text:
        errors.append(FieldError(field, "must not be empty"))
    elif len(text) > limit:
        errors.append(FieldError(field, f"must be at most {limit} characters"))
    elif not is_valid_unicode(text) or any(unicodedata.category(c) == "Cc" for c in text):
        errors.append(FieldError(field, "must not contain control characters"))
    return text


def _aliases(value: object, field: str, errors: list[FieldError]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors.append(FieldError(field, "must be a list of strings"))
        return ()
    if len(value) > MAX_ALIASES:
        errors.append(FieldError(field, f"must have at most {MAX_ALIASES} entries"))
        return ()
    return tuple(_text(v, f"{field}[{i}]", errors, required=True) for i, v in enumerate(value))


def model_entry(model_id: uuid.UUID, fields: Mapping[str, object], *,
                prefix: str = "") -> ModelEntry:
    """A validated entry from a document's `name`, `provider`, `family` and `aliases`;
    ValidationFailed names every bad field (prefixed, e.g. `row 3: name`)."""
    errors: list[FieldError] = []
    name = _text(fields.get("name"), f"{prefix}name", errors, required=True)
    provider = _text(fields.get("provider"), f"{prefix}provider", errors, required=False)
    family = _text(fields.get("family"), f"{prefix}family", errors, required=False)
    aliases = _aliases(fields.get("aliases"), f"{prefix}aliases", errors)
    seen: dict[str, int] = {label_key(name): -1}
    for index, alias in enumerate(aliases):
        key = label_key(alias)
        if key in seen:
            other = "name" if seen[key] < 0 else f"aliases[{seen[key]}]"
            errors.append(FieldError(f"{prefix}aliases[{index}]", f"repeats {other}"))
        seen.setdefault(key, index)
    if errors:
        raise ValidationFailed(errors, "invalid model entry")
    return ModelEntry(model_id, name, provider, family, aliases)


def client_name(org_id: uuid.UUID, client_id: str, name: object) -> ClientName:
    """A validated client name (the id as events carry it, ≤ 128 characters)."""
    errors: list[FieldError] = []
    if not client_id or len(client_id) > MAX_CLIENT_ID or not is_valid_unicode(client_id):
        errors.append(FieldError("clientId", f"must be 1-{MAX_CLIENT_ID} characters"))
    text = _text(name, "name", errors, required=True)
    if errors:
        raise ValidationFailed(errors, "invalid client name")
    return ClientName(org_id, client_id, text)


def label_owners(entries: Iterable[ModelEntry]) -> dict[str, uuid.UUID]:
    """label_key -> model id over `entries` (the registry's uniqueness index)."""
    return {label_key(label): e.model_id for e in entries for label in e.labels}
