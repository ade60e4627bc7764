"""Dead letters and the audit log for finance and support: paged lists, one letter with its raw
bytes, and re-driving a letter through ingestion once whatever rejected it has been fixed.

A re-drive validates the letter's bytes first and stores nothing while they are still invalid
(no second dead letter for the same message): the caller sees why. A valid message goes
through the very ingest use case its source would have used (`Ingest`), so it is priced,
rolled up, attributed and deduplicated like any event; the letter is then marked once, with
who re-drove it and whether the event was new (`accepted`) or already stored (`duplicate`).
Re-driving a marked letter changes nothing and returns the mark.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import attrs

from analytics_core.errors import NotFound, ValidationFailed
from analytics_core.ports import Clock, UnitOfWorkFactory
from analytics_core.records import AuditEntry, AuditFilter, DeadLetter, DeadLetterFilter
from analytics_core.usecases.ingest import BatchResult, EventOutcome, RawMessage
from analytics_core.usecases.paging import cut

Cursor = tuple[datetime, uuid.UUID]
MAX_PAGE = 200
Ingest = Callable[[RawMessage], BatchResult]
"""Ingest one message as the re-driving caller may (its org scope applies)."""
Validate = Callable[[object], object]
"""Validate one payload without storing it; raises ValidationFailed naming each field."""


@attrs.frozen
class DeadLetterPage:
    """Letters newest first, and the cursor of the next page (None on the last)."""

    letters: tuple[DeadLetter, ...]
    next_cursor: Cursor | None


@attrs.frozen
class AuditPage:
    """Audit entries newest first, and the cursor of the next page (None on the last)."""

    entries: tuple[AuditEntry, ...]
    next_cursor: Cursor | None


@attrs.frozen
class Redrive:
    """What a re-drive did: `accepted` (stored now), `duplicate` (already stored); `letter`
    carries the mark. `already` is True when an earlier re-drive had marked it."""

    letter: DeadLetter
    outcome: str
    already: bool = False


def list_dead_letters(org_id: uuid.UUID | None, where: DeadLetterFilter, *,
                      uow_factory: UnitOfWorkFactory, limit: int = 50,
                      before: Cursor | None = None) -> DeadLetterPage:
    """A page of dead letters, newest first; `org_id` None lists every org's (CLI only)."""
    limit = max(1, min(limit, MAX_PAGE))
    with uow_factory() as uow:
        found = uow.dead_letters.page(org_id, where, limit=limit + 1, before=before)
    return DeadLetterPage(*cut(found, limit, lambda d: (d.received_at, d.dead_letter_id)))


def get_dead_letter(org_id: uuid.UUID | None, dead_letter_id: uuid.UUID, *,
                    uow_factory: UnitOfWorkFactory) -> DeadLetter:
    """One letter of the org (any org when `org_id` is None); NotFound otherwise, so that
    another org's letter is indistinguishable from a missing one."""
    with uow_factory() as uow:
        letter = uow.dead_letters.get(dead_letter_id)
    if letter is None or (org_id is not None and letter.org_id != org_id):
        raise NotFound(f"dead letter {dead_letter_id} not found")
    return letter


def redrive_dead_letter(org_id: uuid.UUID | None, dead_letter_id: uuid.UUID, by: str, *,
                        uow_factory: UnitOfWorkFactory, clock: Clock, validate: Validate,
                        ingest: Ingest) -> Redrive:
    """Ingest the letter's message again (see the module docstring).

    Raises NotFound for a letter outside the org, ValidationFailed (nothing stored) while the
    message is still invalid, and whatever `ingest` raises (Forbidden when the event names an
    org the caller may not write, StoreUnavailable) with nothing marked.
    """
    letter = get_dead_letter(org_id, dead_letter_id, uow_factory=uow_factory)
    if letter.redriven_at is not None:
        return Redrive(letter, letter.redrive_outcome or EventOutcome.ACCEPTED.value,
                       already=True)
    validate(letter.raw)
    result = ingest(RawMessage(letter.raw))
    [first] = result.results
    # Validated above, so only a retention edge crossed in between can reject it here: ingest
    # then kept a new letter naming why, and this one stays open.
    if first.status is EventOutcome.REJECTED:
        raise ValidationFailed(first.errors, "the message is still invalid")
    outcome = first.status.value
    with uow_factory() as uow:
        marked = uow.dead_letters.mark_redriven(dead_letter_id, clock.now(), by, outcome)
        uow.commit()
    current = get_dead_letter(org_id, dead_letter_id, uow_factory=uow_factory)
    return Redrive(current, current.redrive_outcome or outcome, already=not marked)


def list_audit(org_id: uuid.UUID, where: AuditFilter, *, uow_factory: UnitOfWorkFactory,
               limit: int = 50, before: Cursor | None = None) -> AuditPage:
    """A page of the org's audit entries, newest first."""
    limit = max(1, min(limit, MAX_PAGE))
    with uow_factory() as uow:
        found = uow.audit.page(org_id, where, limit=limit + 1, before=before)
    return AuditPage(*cut(found, limit, lambda e: (e.at, e.audit_id)))
