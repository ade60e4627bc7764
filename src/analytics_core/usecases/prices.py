"""Manage the price catalog (SPEC §12): add versions (admin), list them, read an org's prices.

Adding is all or nothing: every draft is checked against the stored catalog and the other
drafts, every problem is reported with the field (prefixed by the draft's position), and
nothing is stored unless all are good. A version whose period starts in the past, or one that
corrects (supersedes) another, reprices events already stored: it is accepted only with
`restate: true`, and a restatement record is created in the same transaction for the
restatement job to carry out (analytics_core.usecases.restatements).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import attrs

from analytics_core.access import Actor, Outcome
from analytics_core.errors import FieldError, Forbidden, NotFound, ValidationFailed
from analytics_core.event_parsing import parse_time
from analytics_core.events import PLATFORM_ORG
from analytics_core.ports import Clock, IdGenerator, UnitOfWorkFactory
from analytics_core.prices import (
    CATEGORIES,
    REQUIRED,
    Catalog,
    PriceCategory,
    PriceVersion,
    price_micros,
)
from analytics_core.records import AuditEntry
from analytics_core.restatements import Restatement, restatement_for

MAX_NOTE = 500
MAX_DRAFTS = 10_000
_KEYS = {c.value: c for c in CATEGORIES}


@attrs.frozen
class PriceDraft:
    """A version to add, as read from a request or an import row."""

    model: uuid.UUID | str  # a model id, or a name or alias resolved through the registry
    org_id: uuid.UUID | None
    effective_from: datetime
    prices: Mapping[PriceCategory, int]
    supersedes: uuid.UUID | None = None
    note: str = ""
    restate: bool = False
    where: str = ""  # prefix of this draft's field names in errors, e.g. "versions[2]."


def _uuid(value: object, field: str, errors: list[FieldError]) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        pass
    errors.append(FieldError(field, "must be a UUID string"))
    return None


def _prices(value: object, where: str, errors: list[FieldError]) -> dict[PriceCategory, int]:
    if not isinstance(value, Mapping) or not value:
        errors.append(FieldError(f"{where}prices", "must be an object of category to USD per "
                                 f"million tokens (categories: {', '.join(_KEYS)})"))
        return {}
    out: dict[PriceCategory, int] = {}
    for key, amount in value.items():
        category = _KEYS.get(key) if isinstance(key, str) else None
        if category is None:
            errors.append(FieldError(f"{where}prices.{key}",
                                     f"is not a token category (one of {', '.join(_KEYS)})"))
            continue
        if amount is None:
            continue
        try:
            out[category] = price_micros(amount)
        except ValueError as e:
            errors.append(FieldError(f"{where}prices.{key}", str(e)))
    for category in REQUIRED:
        if category not in out and not any(e.field == f"{where}prices.{category.value}"
                                           for e in errors):
            errors.append(FieldError(f"{where}prices.{category.value}", "is required"))
    return out


def read_draft(raw: object, where: str = "") -> PriceDraft:
    """A draft from a JSON object; ValidationFailed names every bad field (prefixed `where`).

    Keys: `modelId` or `model` (a registered name or alias), `orgId` (optional: an org's
    override), `effectiveFrom` (RFC 3339), `prices` ({category: USD per million tokens}),
    `supersedes` (optional version id), `note` (optional), `restate` (optional bool).
    """
    if not isinstance(raw, Mapping):
        raise ValidationFailed([FieldError(where.rstrip(".") or "$", "must be a JSON object")])
    errors: list[FieldError] = []
    model: uuid.UUID | str | None = None
    if raw.get("modelId") is not None:
        model = _uuid(raw.get("modelId"), f"{where}modelId", errors)
    elif isinstance(raw.get("model"), str) and raw["model"].strip():
        model = raw["model"].strip()
    else:
        errors.append(FieldError(f"{where}modelId", "is required (or `model`: a registered "
                                 "model name or alias)"))
    org_id = _uuid(raw.get("orgId"), f"{where}orgId", errors)
    when: datetime | None = None
    try:
        when = parse_time(raw.get("effectiveFrom"))
    except ValueError as e:
        errors.append(FieldError(f"{where}effectiveFrom", str(e)))
    prices = _prices(raw.get("prices"), where, errors)
    supersedes = _uuid(raw.get("supersedes"), f"{where}supersedes", errors)
    note = raw.get("note") or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        errors.append(FieldError(f"{where}note", f"must be a string of at most {MAX_NOTE} "
                                 "characters"))
        note = ""
    restate = raw.get("restate", False)
    if not isinstance(restate, bool):
        errors.append(FieldError(f"{where}restate", "must be true or false"))
        restate = False
    if errors:
        raise ValidationFailed(errors, "invalid price version")
    assert model is not None
    assert when is not None
    return PriceDraft(model, org_id, when, prices, supersedes, note, restate, where)


@attrs.frozen
class AddedPrices:
    """What adding versions did: the versions stored and the restatements they started."""

    versions: tuple[PriceVersion, ...]
    restatements: tuple[Restatement, ...]


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("managing prices needs the admin role (the catalog is platform-wide)")


@attrs.frozen
class Drafts:
    """What a request or file held: the drafts that read well, and the errors of the rest."""

    drafts: tuple[PriceDraft, ...]
    errors: tuple[FieldError, ...] = ()


def read_drafts(rows: Sequence[object], prefix: Callable[[int], str]) -> Drafts:
    """Read every row; `prefix(i)` names row i in its errors."""
    drafts: list[PriceDraft] = []
    errors: list[FieldError] = []
    for i, raw in enumerate(rows):
        try:
            drafts.append(read_draft(raw, prefix(i)))
        except ValidationFailed as e:
            errors.extend(e.errors)
    return Drafts(tuple(drafts), tuple(errors))


def add_versions(
    actor: Actor, drafts: Sequence[PriceDraft] | Drafts, *, uow_factory: UnitOfWorkFactory,
    clock: Clock, ids: IdGenerator,
) -> AddedPrices:
    """Store every draft as a new version, or none of them (ValidationFailed naming each bad
    field, with the errors of rows that did not read at all). Backdated versions and
    corrections need `restate` and start a restatement."""
    _require_admin(actor)
    given = drafts if isinstance(drafts, Drafts) else Drafts(tuple(drafts))
    drafts = given.drafts
    if not drafts and not given.errors:
        raise ValidationFailed([FieldError("versions", "must not be empty")])
    if len(drafts) > MAX_DRAFTS:
        raise ValidationFailed([FieldError("versions", f"must hold at most {MAX_DRAFTS}")])
    now = clock.now()
    with uow_factory() as uow:
        uow.prices.revision()  # first: on SQLite it takes the write lock
        stored = uow.prices.all()
        errors = list(given.errors)
        versions = _checked(drafts, stored, now, actor, ids, uow.models.find, errors)
        if errors:
            raise ValidationFailed(errors, "invalid price versions; nothing was stored")
        uow.prices.add(versions)
        before, after = Catalog.of(stored), Catalog.of([*stored, *versions])
        restatements = []
        for v in versions:
            if v.supersedes is not None or v.effective_from < now:
                r = restatement_for(v, before, after, restatement_id=ids.new_id(),
                                    now=now, created_by=actor.subject)
                uow.restatements.create(r)
                restatements.append(r)
        for v in versions:
            uow.audit.record(AuditEntry(
                audit_id=ids.new_id(), at=now, actor=actor.subject, actor_org=actor.org_id,
                org_id=v.org_id or PLATFORM_ORG, action="prices.add",
                resource=f"price:{v.version_id}", outcome=Outcome.ALLOWED,
                reason=f"model {v.model_id} from {v.effective_from.isoformat()}"
                + (f", supersedes {v.supersedes}" if v.supersedes else ""), request_id=None,
            ))
        uow.commit()
    return AddedPrices(tuple(versions), tuple(restatements))


def _checked(  # noqa: PLR0917 - the checks share their context
    drafts: Sequence[PriceDraft], stored: Sequence[PriceVersion], now: datetime, actor: Actor,
    ids: IdGenerator, find_model: object, errors: list[FieldError],
) -> list[PriceVersion]:
    by_id = {v.version_id: v for v in stored}
    superseded = {v.supersedes for v in stored if v.supersedes is not None}
    live_starts = {(v.line, v.effective_from) for v in stored if v.version_id not in superseded}
    claimed: set[object] = set()
    out: list[PriceVersion] = []
    for d in drafts:
        model_id = _model_id(d, find_model, errors)
        if model_id is None:
            continue
        line = (d.org_id, model_id)
        w = d.where
        if d.supersedes is not None:
            old = by_id.get(d.supersedes)
            if old is None:
                errors.append(FieldError(f"{w}supersedes", "is not a stored price version"))
                continue
            if old.version_id in superseded or d.supersedes in claimed:
                errors.append(FieldError(f"{w}supersedes", "was already corrected by another "
                                         "version; correct that one instead"))
                continue
            if old.line != line:
                errors.append(FieldError(f"{w}supersedes", "belongs to another model or org; "
                                         "a correction keeps its version's model and org"))
                continue
            claimed.add(d.supersedes)
            live_starts.discard((line, old.effective_from))
        if (line, d.effective_from) in live_starts or (line, d.effective_from) in claimed:
            errors.append(FieldError(f"{w}effectiveFrom", "another version of this model"
                                     + (" for this org" if d.org_id else "")
                                     + " starts at that instant; to correct it, give "
                                     "`supersedes` with its versionId"))
            continue
        claimed.add((line, d.effective_from))
        if (d.effective_from < now or d.supersedes is not None) and not d.restate:
            errors.append(FieldError(f"{w}restate", "must be true: this version reprices "
                                     "events already stored (it starts in the past or corrects "
                                     "a version), which runs a restatement"))
            continue
        out.append(PriceVersion(
            ids.new_id(), model_id, d.org_id, d.effective_from, dict(d.prices), now,
            actor.subject, d.supersedes, d.note,
        ))
    return out


def _model_id(d: PriceDraft, find_model: object, errors: list[FieldError]) -> uuid.UUID | None:
    """The draft's model id: registered by id, or resolved from a name or alias."""
    assert callable(find_model)
    if isinstance(d.model, uuid.UUID):
        return d.model
    entry = find_model(d.model)
    if entry is None:
        errors.append(FieldError(f"{d.where}model", f"{d.model!r} is not a registered model "
                                 "name or alias (register it with PUT /models/{modelId} or "
                                 "`analytics models import`)"))
        return None
    return entry.model_id  # type: ignore[no-any-return]


def list_versions(
    actor: Actor, *, uow_factory: UnitOfWorkFactory, model_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = None, history: bool = False,
) -> list[PriceVersion]:
    """Versions by (model, org, effective_from); live ones only unless `history` (admin)."""
    _require_admin(actor)
    with uow_factory() as uow:
        stored = uow.prices.all()
    superseded = {v.supersedes for v in stored if v.supersedes is not None}
    return sorted(
        (v for v in stored
         if (history or v.version_id not in superseded)
         and (model_id is None or v.model_id == model_id)
         and (org_id is None or v.org_id == org_id)),
        key=lambda v: (str(v.model_id), str(v.org_id or ""), v.effective_from, v.created_at),
    )


def get_version(actor: Actor, version_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory
                ) -> tuple[PriceVersion, uuid.UUID | None]:
    """One version and the id of the version that superseded it (None while live)."""
    _require_admin(actor)
    with uow_factory() as uow:
        stored = uow.prices.all()
    found = next((v for v in stored if v.version_id == version_id), None)
    if found is None:
        raise NotFound(f"price version {version_id} does not exist")
    by = next((v.version_id for v in stored if v.supersedes == version_id), None)
    return found, by


def org_prices(org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory) -> list[PriceVersion]:
    """The live versions that can price an org's events: the global lines and the org's own
    overrides (never another org's), by (model, effective_from). The caller checks access."""
    with uow_factory() as uow:
        stored = uow.prices.all()
    catalog = Catalog.of(stored)
    lines = {v.line for v in stored if v.org_id in (None, org_id)}
    return sorted((v for line in lines for v in catalog.live(line)),
                  key=lambda v: (str(v.model_id), v.org_id is not None, v.effective_from))

