"""Restatements (SPEC §12): repricing stored events after a backdated or corrected price.

A restatement is created in the transaction that stores the price version which needs it. The
restatement job (analytics_core.usecases.restatements) then walks the events of the model in
the restatement's window, in key order and in small batches: each event whose catalog price
changes gets its new price version, the rollups get the difference of its catalog cost, and
the difference is added to the record's delta for (org, model, UTC day) — all in the batch's
transaction, together with the cursor. A crash loses at most the open batch, which the next run
does again; an event already carrying the new version has no difference, so nothing counts
twice.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

import attrs

from analytics_core.events import as_utc
from analytics_core.prices import Catalog, PriceVersion


class RestatementStatus(StrEnum):
    """Where a restatement is."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"


@attrs.frozen
class RestatementCursor:
    """The last event a restatement has finished with, in (org, occurred_at, event) order."""

    org_id: uuid.UUID
    occurred_at: datetime = attrs.field(converter=as_utc)
    event_id: uuid.UUID


@attrs.frozen
class Restatement:
    """One repricing job and its record: who, when, which window, which versions."""

    restatement_id: uuid.UUID
    created_at: datetime = attrs.field(converter=as_utc)
    created_by: str
    version_id: uuid.UUID  # the version that caused it
    supersedes: uuid.UUID | None  # the version it corrects, if any
    model_id: uuid.UUID
    org_id: uuid.UUID | None  # None: every org (a global line changed)
    window_start: datetime = attrs.field(converter=as_utc)
    window_end: datetime = attrs.field(converter=as_utc)  # exclusive
    status: RestatementStatus = RestatementStatus.PENDING
    cursor: RestatementCursor | None = None
    events_repriced: int = 0
    completed_at: datetime | None = None


@attrs.frozen
class RestatementDelta:
    """The change a restatement made to one org's model on one UTC day."""

    restatement_id: uuid.UUID
    org_id: uuid.UUID
    model_id: uuid.UUID
    day: date
    events: int  # events whose catalog price changed
    before_units: int  # their catalog cost before (0.0001 cent)
    after_units: int  # and after

    @property
    def delta_units(self) -> int:
        """after - before."""
        return self.after_units - self.before_units


def restatement_for(
    version: PriceVersion, before: Catalog, after: Catalog, *, restatement_id: uuid.UUID,
    now: datetime, created_by: str,
) -> Restatement:
    """The restatement a new version needs: over its line's model (and org), from the earliest
    instant whose price can change (its start, or the corrected version's) to the start of the
    next live version after both in either catalog, or `now` (later events are priced at ingest
    by the catalog that already holds the version)."""
    starts = [version.effective_from]
    if version.supersedes is not None:
        old = next((v for v in before.versions if v.version_id == version.supersedes), None)
        if old is not None:
            starts.append(old.effective_from)
    start, latest = min(starts), max(starts)
    later = [v.effective_from for catalog in (before, after) for v in catalog.live(version.line)
             if v.effective_from > latest]
    end = min([*later, now]) if later else now
    return Restatement(
        restatement_id, now, created_by, version.version_id, version.supersedes,
        version.model_id, version.org_id, start, max(end, start),
    )
