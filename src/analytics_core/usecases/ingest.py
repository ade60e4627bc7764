"""Ingest a batch of raw usage events exactly once, in one unit of work (SPEC §2, §3, §8)."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import cached_property

import attrs

from analytics_core.attribution import (
    OTHER,
    SEPARATOR,
    AdmitKey,
    AdmittedCache,
    AttributionSettings,
    groups_of,
    wanted_values,
)
from analytics_core.errors import FieldError, OffsetGap, StoreUnavailable, ValidationFailed
from analytics_core.event_fastpath import plain_window
from analytics_core.event_parsing import parse_event
from analytics_core.events import UsageEvent, is_valid_unicode
from analytics_core.freshness import FreshnessMarker
from analytics_core.ports import (
    AttributionStore,
    Clock,
    EventDecoder,
    EventKey,
    EventStore,
    FreshnessCache,
    IdGenerator,
    OffsetStore,
    PriceCatalogStore,
    UnitOfWorkFactory,
)
from analytics_core.prices import Catalog, EventPrice
from analytics_core.records import DeadLetter, DedupeConflict
from analytics_core.rollups import build_group_rollups, build_rollups
from analytics_core.timegrid import utc_day_start

DEFAULT_RAW_RETENTION = timedelta(days=400)
MAX_HTTP_BATCH = 5000

log = logging.getLogger(__name__)


class EventOutcome(StrEnum):
    """Per-event result of an ingest."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@attrs.frozen
class RawMessage:
    """One inbound message: decoded JSON or raw bytes/text to decode; offset when streamed."""

    payload: object
    offset: int | None = None


@attrs.frozen
class IngestScope:
    """Who ingests a batch, for callers that are not trusted with every org (HTTP).

    The orgs that are checked are the orgs of the parsed events that will be stored, so the
    org that is authorized is, by construction, the org that is stored (SPEC §11).
    `authorize` receives every org of the batch's valid events before anything is stored and
    raises `Forbidden` (auditing each decision) when the caller may not write one of them.
    A rejected message is kept in `home_org` unless the caller may write any org: the org it
    names is only a guess from a payload that failed validation.
    """

    authorize: Callable[[frozenset[uuid.UUID]], None]
    home_org: uuid.UUID | None
    any_org: bool = False

    def dead_letter_org(self, guessed: uuid.UUID | None) -> uuid.UUID | None:
        """Where a rejected message is kept: the caller's own org unless it may write any."""
        return guessed if self.any_org else self.home_org


@attrs.frozen
class EventResult:
    """Outcome of one input, in input order."""

    index: int
    event_id: str | None
    status: EventOutcome
    errors: tuple[FieldError, ...] = ()
    conflict: bool = False


@attrs.frozen
class BatchResult:
    """Outcome of a whole batch: its counts, and one EventResult per input, in input order.

    The per-input results are built on first use of `results`: a stream batch is only counted,
    and building 10,000 result objects would cost more than validating the events.
    """

    batch_id: uuid.UUID
    size: int
    accepted: int  # events stored for the first time
    duplicates: int  # events already stored (same org and event id)
    rejected: int  # invalid events, dead-lettered
    conflicts: int  # duplicates whose content differs from the stored first version
    _build: Callable[[], tuple[EventResult, ...]] = attrs.field(
        alias="build", eq=False, repr=False
    )
    # Attribution values counted in (other) because their key was at its cap for the day.
    attribution_overflow: int = 0

    @cached_property
    def results(self) -> tuple[EventResult, ...]:
        """One result per input, in input order."""
        return self._build()


@attrs.frozen
class StreamCheckpoint:
    """Offset to commit together with the batch.

    `first_offset` is the offset of the batch's first message: the commit is refused with
    OffsetGap when the consumer's stored offset is below `first_offset - 1` (a gap would be
    marked consumed). None skips the check: a fresh consumer, or messages before the batch that
    the stream's retention deleted before they were read.
    """

    consumer: str
    stream: str
    offset: int
    first_offset: int | None = None


# json.loads(text, parse_float=Decimal) builds a decoder per call; one shared decoder is what
# json.loads itself does for its default settings.
_JSON = json.JSONDecoder(parse_float=Decimal)


def decode_payload(payload: object) -> object:
    """Decode bytes/str JSON with Decimal numbers; other payloads pass through."""
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValidationFailed([FieldError("$", "message is not UTF-8")]) from e
    if isinstance(payload, str):
        try:
            if payload.startswith("\ufeff"):  # json.loads refuses a BOM before decoding
                raise json.JSONDecodeError(
                    "Unexpected UTF-8 BOM (decode using utf-8-sig)", payload, 0
                )
            return _JSON.decode(payload)
        except ValueError as e:
            raise ValidationFailed([FieldError("$", f"message is not valid JSON: {e}")]) from e
        except RecursionError as e:  # arrays or objects nested thousands deep
            raise ValidationFailed([FieldError("$", "message is not valid JSON: nested too "
                                                    "deeply")]) from e
    return payload


def raw_bytes(payload: object) -> bytes:
    """Bytes kept in a dead-letter or conflict record for any payload."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8", "replace")
    return json.dumps(payload, default=str, separators=(",", ":")).encode()


def _guess_ids(decoded: object) -> tuple[str | None, uuid.UUID | None]:
    if not isinstance(decoded, dict):
        return None, None
    event_id = decoded.get("eventId", decoded.get("event_id"))
    org = decoded.get("orgId", decoded.get("org_id"))
    try:
        org_id = uuid.UUID(org) if isinstance(org, str) else None
    except ValueError:
        org_id = None
    valid = isinstance(event_id, str) and is_valid_unicode(event_id)
    return (event_id if valid else None), org_id


@attrs.frozen
class _Valid:
    index: int
    event: UsageEvent
    raw: bytes


@attrs.define
class _Plan:
    """Parsing outcome before storage: valid events, rejections, in-batch duplicates."""

    results: dict[int, EventResult] = attrs.field(factory=dict)
    unique: list[_Valid] = attrs.field(factory=list)
    later: list[_Valid] = attrs.field(factory=list)  # same key again inside this batch
    dead: list[DeadLetter] = attrs.field(factory=list)


def _plan(
    messages: Sequence[RawMessage], *, source: str, clock: Clock, ids: IdGenerator,
    raw_retention: timedelta, decoder: EventDecoder | None, scope: IngestScope | None = None,
) -> _Plan:
    now = clock.now()
    plan = _Plan()
    seen: set[tuple[int, int]] = set()
    window = plain_window(now, raw_retention) if decoder is not None else None
    fast = decoder.decode if decoder is not None and window is not None else None
    earliest, latest = window or (now, now)
    for index, message in enumerate(messages):
        payload, decoded = message.payload, None
        try:
            event = (fast(payload, earliest, latest)
                     if fast is not None and type(payload) is bytes else None)
            if event is None:
                decoded = decode_payload(payload)
                event = parse_event(decoded, now=now, raw_retention=raw_retention)
        except Exception as e:  # one bad message must never fail its batch
            if not isinstance(e, ValidationFailed):
                log.exception("message %s of a %s batch could not be validated; dead-lettered",
                              index, source)
                e = ValidationFailed([FieldError("$", f"message could not be processed: "
                                                      f"{type(e).__name__}")])
            event_id, org_id = _guess_ids(decoded)
            if scope is not None:
                org_id = scope.dead_letter_org(org_id)
            plan.results[index] = EventResult(index, event_id, EventOutcome.REJECTED, e.errors)
            plan.dead.append(DeadLetter(
                _dead_letter_id(source, message.offset, ids), now, source,
                raw_bytes(payload), str(e), org_id, message.offset,
            ))
            continue
        valid = _Valid(index, event, raw_bytes(payload))
        key = (event.org_id.int, event.event_id.int)  # event.key, hashed in C
        (plan.later if key in seen else plan.unique).append(valid)
        seen.add(key)
    return plan


_DEAD_LETTER_NAMESPACE = uuid.UUID("5d1e0b8e-6c1f-4c6e-9a55-0f7f3c2b9d41")
_CONFLICT_NAMESPACE = uuid.UUID("9b7a3c1e-2f4d-4e8b-8a6f-1c5d7e9f0a2b")


def _stream_record_id(namespace: uuid.UUID, source: str, offset: int | None) -> uuid.UUID | None:
    """The stable id of a record about a streamed message (source + offset), so redelivery
    and replay re-add the same record instead of a second one; None for other messages."""
    return None if offset is None else uuid.uuid5(namespace, f"{source}@{offset}")


def _dead_letter_id(source: str, offset: int | None, ids: IdGenerator) -> uuid.UUID:
    """A streamed message's stable id; other messages get a fresh one."""
    return _stream_record_id(_DEAD_LETTER_NAMESPACE, source, offset) or ids.new_id()


def ingest_batch(
    messages: Sequence[RawMessage], *, source: str, uow_factory: UnitOfWorkFactory,
    clock: Clock, ids: IdGenerator, raw_retention: timedelta = DEFAULT_RAW_RETENTION,
    checkpoint: StreamCheckpoint | None = None, cache: FreshnessCache | None = None,
    decoder: EventDecoder | None = None, scope: IngestScope | None = None,
    pricing: CatalogCache | None = None, attribution: AttributionSettings | None = None,
    admitted: AdmittedCache | None = None,
) -> BatchResult:
    """Validate, dedupe and store a batch with its rollups, freshness markers, dead letters and
    (for the stream) offset in ONE unit of work. Redelivery of the same batch changes nothing.

    A `decoder` reads bytes payloads of the plain producer shape first (the stream's edge);
    whatever it does not read goes through the careful reader, so results are the same.

    Each payload is decoded exactly once, here: a JSON string that decodes to anything but an
    object (another string, a list) is rejected, never decoded again. With a `scope`, the orgs
    of the parsed events are authorized before anything is stored. With `pricing`, every new
    event is priced by the catalog (read in the same unit) and stored with its price version,
    its catalog cost rolled up with it. With `attribution`, new events are also rolled up per
    actor and per attribution tag (analytics_core.attribution), in the same unit.

    Raises StoreUnavailable when storage is down, and OffsetGap when the checkpoint's batch
    does not continue from the stored offset; Forbidden when the scope refuses an org; nothing
    of the batch is then committed.
    """
    plan = _plan(messages, source=source, clock=clock, ids=ids, raw_retention=raw_retention,
                 decoder=decoder, scope=scope)
    if scope is not None:
        scope.authorize(frozenset(v.event.org_id for v in plan.unique))
    now = clock.now()
    with uow_factory() as uow:
        if checkpoint is not None:
            _check_continuity(uow.offsets, checkpoint)
        events = [v.event for v in plan.unique]
        catalog = pricing.current(uow.prices) if pricing is not None else None
        if catalog is not None and catalog.versions:
            priced = [catalog.price(e) for e in events]
            inserted = uow.events.add_new(
                events, [None if p is None else p.version_id for p in priced])
            by_event = {id(e): p for e, p in zip(events, priced, strict=True)}
            prices = [by_event[id(e)] for e in inserted]
        else:
            inserted, prices = uow.events.add_new(events), None
        # add_new returns the very objects it stored, so telling new from old takes no hashing
        # of keys: in the common batch every unique event is new and nothing else is computed.
        stored = set(map(id, inserted))
        old = [v for v in plan.unique if id(v.event) not in stored]  # stored before
        repeats = old + plan.later
        conflicts = (_conflicts(uow.events, plan, old, now=now, source=source, messages=messages)
                     if repeats else {})
        uow.rollups.add(build_rollups(inserted, prices))
        overflow, learned = 0, dict[AdmitKey, set[str]]()
        if attribution is not None and inserted:
            overflow, learned = _attribute(uow.attribution, inserted, prices, attribution,
                                           admitted or AdmittedCache())
        uow.freshness.touch(_markers(inserted, now))
        uow.dead_letters.add(plan.dead)
        uow.dead_letters.add_conflicts(list(conflicts.values()))
        if checkpoint is not None:
            uow.offsets.save(checkpoint.consumer, checkpoint.stream, checkpoint.offset)
        late = _history_orgs(inserted, now)
        if late:  # last, as restatements do: the same lock order (rollups, attribution, this)
            uow.freshness.revise_history(late)
        uow.commit()
    if admitted is not None and learned:
        admitted.remember(learned)
    if cache is not None and inserted:
        _invalidate(cache, {e.org_id for e in inserted})

    def build() -> tuple[EventResult, ...]:
        results = dict(plan.results)
        for v in plan.unique:
            if id(v.event) in stored:
                results[v.index] = EventResult(v.index, str(v.event.event_id),
                                               EventOutcome.ACCEPTED)
        for v in repeats:
            results[v.index] = EventResult(v.index, str(v.event.event_id),
                                           EventOutcome.DUPLICATE, conflict=v.index in conflicts)
        return tuple(results[i] for i in range(len(messages)))

    return BatchResult(ids.new_id(), len(messages), accepted=len(inserted),
                       duplicates=len(repeats), rejected=len(plan.dead),
                       conflicts=len(conflicts), build=build, attribution_overflow=overflow)


def _attribute(
    store: AttributionStore, events: Sequence[UsageEvent],
    prices: Sequence[EventPrice | None] | None, settings: AttributionSettings,
    cache: AdmittedCache,
) -> tuple[int, dict[AdmitKey, set[str]]]:
    """Roll new events up per attribution dimension: how many values fell into (other), and
    the values admitted (for the cache, once committed)."""
    dimensions = settings.dimensions
    admitted = cache.admit(store, wanted_values(events, dimensions), settings.value_cap)
    groups = [groups_of(e, dimensions, admitted) for e in events]
    store.add(build_group_rollups(events, prices, groups))
    return sum(g.endswith(OTHER_GROUP) for gs in groups for g in gs), admitted


def _conflicts(
    events: EventStore, plan: _Plan, old: list[_Valid], *, now: datetime, source: str,
    messages: Sequence[RawMessage],
) -> dict[int, DedupeConflict]:
    """Repeats (`old`: already stored; `plan.later`: again in this batch) whose content differs
    from the first stored version, by input index. A streamed one gets a stable id (source and
    offset), so reading the message again adds no second record."""
    # Fingerprints only where a repeat must be compared: the store fingerprints new events
    # itself, so the common batch (no duplicates) hashes each event once.
    first = events.fingerprints({v.event.key for v in old})
    if plan.later:
        unique = {v.event.key: v.event for v in plan.unique}
        for v in plan.later:
            if v.event.key not in first:  # its first version is stored by this batch
                first[v.event.key] = unique[v.event.key].fingerprint()
    conflicts: dict[int, DedupeConflict] = {}
    for v in old + plan.later:
        fingerprint = v.event.fingerprint()
        stored = first.get(v.event.key, fingerprint)
        if stored != fingerprint:
            conflicts[v.index] = DedupeConflict(
                v.event.org_id, v.event.event_id, now, source, stored, fingerprint, v.raw,
                _stream_record_id(_CONFLICT_NAMESPACE, source, messages[v.index].offset),
            )
    return conflicts


def _check_continuity(offsets: OffsetStore, checkpoint: StreamCheckpoint) -> None:
    """Refuse a batch that would leave unconsumed messages behind the stored offset."""
    first = checkpoint.first_offset
    if first is None:
        return
    stored = offsets.get(checkpoint.consumer, checkpoint.stream)
    if stored is not None and first > stored + 1:
        raise OffsetGap(checkpoint.stream, stored, first)


def _markers(events: Sequence[UsageEvent], now: datetime) -> list[FreshnessMarker]:
    newest: dict[EventKey, datetime] = {}
    for e in events:
        key = (e.org_id, e.model_id)
        seen = newest.get(key)
        if seen is None or e.occurred_at > seen:
            newest[key] = e.occurred_at
    return [FreshnessMarker(org, model, newest[(org, model)], now) for org, model in sorted(newest)]


def _history_orgs(events: Sequence[UsageEvent], now: datetime) -> set[uuid.UUID]:
    """The orgs of events that occurred before the start of `now`'s UTC day: their history
    changes (FreshnessStore.revise_history)."""
    today = utc_day_start(now)
    return {e.org_id for e in events if e.occurred_at < today}


def _invalidate(cache: FreshnessCache, orgs: set[uuid.UUID]) -> None:
    # The cache is an optimisation with a short TTL; readers fall back to the store.
    with contextlib.suppress(StoreUnavailable):
        cache.invalidate(orgs)


def validate_event(
    payload: object, *, clock: Clock, raw_retention: timedelta = DEFAULT_RAW_RETENTION
) -> UsageEvent:
    """Validate one raw event without storing it; raises ValidationFailed naming each field."""
    return parse_event(decode_payload(payload), now=clock.now(), raw_retention=raw_retention)


def stored_offset(group: str, stream: str, *, uow_factory: UnitOfWorkFactory) -> int | None:
    """The last offset of `stream` committed for consumer `group` (None: nothing yet)."""
    with uow_factory() as uow:
        return uow.offsets.get(group, stream)


OTHER_GROUP = SEPARATOR + OTHER


class CatalogCache:
    """The price catalog the ingest prices with, read again only when its revision changes
    (one small read per batch). Thread-safe enough: a stale read only re-reads."""

    def __init__(self) -> None:
        self._revision = -1
        self._catalog = Catalog()

    def current(self, prices: PriceCatalogStore) -> Catalog:
        """The catalog at the store's current revision."""
        revision = prices.revision()
        if revision != self._revision:
            catalog = Catalog.of(prices.all()) if revision else Catalog()
            self._catalog, self._revision = catalog, revision
        return self._catalog
