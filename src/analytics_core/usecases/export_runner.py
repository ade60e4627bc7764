"""Run export jobs: claim, stream CSV and manifest to the object store, retry, expire (SPEC §7)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

import attrs

from analytics_core.adjustments import Rows, apply, deltas, digest, parse, rows_of
from analytics_core.adjustments import totals as adjustment_totals
from analytics_core.csvrows import EVENT_COLUMNS, USAGE_COLUMNS, metadata_json, text_row
from analytics_core.errors import Conflict, StoreUnavailable
from analytics_core.events import TOKEN_DETAIL_KEYS, UsageEvent
from analytics_core.exports import (
    ExportGranularity,
    ExportJob,
    ExportKind,
    ExportRequest,
    ExportStatus,
    object_key,
    unknown_zone_error,
)
from analytics_core.focus import (
    APPLICABILITY,
    FOCUS_COLUMNS,
    FocusContext,
    FocusSums,
    aggregate,
    focus_rows,
)
from analytics_core.focus import usd as focus_usd
from analytics_core.ports import (
    Clock,
    IdGenerator,
    ObjectStore,
    PipelineProgress,
    UnitOfWorkFactory,
)
from analytics_core.prices import Catalog
from analytics_core.rollups import RollupStats, stats_of
from analytics_core.timegrid import (
    Grain,
    ceil_bucket,
    floor_bucket,
    isoformat,
    period_start,
    zone,
)
from analytics_core.usecases.export_points import GRAINS, usage_points
from analytics_core.usecases.registry import names_for

CHUNK_BYTES = 64 * 1024
log = logging.getLogger(__name__)

USER_SAFE_ERROR = "The export could not be generated; please retry or contact support."


@attrs.frozen
class ExportSettings:
    """Worker behaviour: attempts, lease, backoff and retention."""

    max_attempts: int = 3
    lease: timedelta = timedelta(minutes=5)
    backoff: timedelta = timedelta(seconds=10)
    max_backoff: timedelta = timedelta(minutes=10)
    retention: timedelta = timedelta(days=90)
    # FOCUS files (kind=focus): who issues and provides the charges, the service they are
    # for, and the attribution keys written as Tags.
    focus_provider: str = "AI inference platform"
    focus_service: str = "Model inference"
    tag_keys: tuple[str, ...] = ()
    # The zone of the scheduled monthly export for orgs that set none (org settings).
    monthly_tz: str = "UTC"

    def delay(self, attempts: int) -> timedelta:
        """Exponential backoff before the next attempt."""
        delay: timedelta = self.backoff * (2 ** max(0, attempts - 1))
        return min(delay, self.max_backoff)


@attrs.define
class _Tally:
    """What the CSV stream has produced so far (filled while streaming)."""

    rows: int = 0
    digest: hashlib._Hash = attrs.field(factory=hashlib.sha256)
    totals: RollupStats = attrs.field(factory=RollupStats)
    size: int = 0
    focus: FocusSums | None = None  # FOCUS files: the sums behind the rows


def _encode(rows: Iterable[list[str]], tally: _Tally) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
        if buffer.tell() >= CHUNK_BYTES:
            yield _flush(buffer, tally)
    if buffer.tell():
        yield _flush(buffer, tally)


def _flush(buffer: io.StringIO, tally: _Tally) -> bytes:
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    tally.digest.update(data)
    tally.size += len(data)
    return data


def _usage_rows(
    request: ExportRequest, uow_factory: UnitOfWorkFactory, tally: _Tally
) -> Iterator[list[str]]:
    yield list(USAGE_COLUMNS)
    names = names_for(request.org_id, uow_factory=uow_factory)
    tz = zone(request.tz)
    low, high = floor_bucket(request.start), ceil_bucket(request.end)
    for point in usage_points(request, uow_factory):
        s = point.stats
        tally.rows += 1
        tally.totals = tally.totals.merge(s)
        yield text_row([
            isoformat(max(point.bucket_start, low), tz), isoformat(min(point.bucket_end, high), tz),
            request.tz, request.org_id, point.group, s.invocations, s.success, s.errors,
            s.timeouts, s.throttled, s.input_tokens, s.output_tokens, s.cost.exact_str(),
            names.model(None if point.group is None else uuid.UUID(point.group)),
            *s.token_details.as_tuple(), s.catalog_cost.exact_str(), s.unpriced,
        ])


def _event_batches(request: ExportRequest, uow_factory: UnitOfWorkFactory, tally: _Tally
                   ) -> Iterator[list[UsageEvent]]:
    """The window's events in batches of at most 1,000, each added to the tally's totals."""
    with uow_factory() as uow:
        batch: list[UsageEvent] = []
        for e in uow.events.scan(request.org_id, request.start, request.end, request.models):
            batch.append(e)
            if len(batch) >= 1000:
                tally.totals = tally.totals.merge(stats_of(batch))
                yield batch
                batch = []
        if batch:
            tally.totals = tally.totals.merge(stats_of(batch))
            yield batch


def _event_rows(
    request: ExportRequest, uow_factory: UnitOfWorkFactory, tally: _Tally
) -> Iterator[list[str]]:
    yield list(EVENT_COLUMNS)
    names = names_for(request.org_id, uow_factory=uow_factory)
    tz = zone(request.tz)
    for batch in _event_batches(request, uow_factory, tally):
        for e in batch:
            tally.rows += 1
            yield text_row([
                e.event_id, e.org_id, e.model_id, isoformat(e.occurred_at, tz), e.status.value,
                e.latency_ms, e.input_tokens, e.output_tokens, e.cost.exact_str(), e.actor_id,
                e.client_id, e.error_code, names.model(e.model_id), names.client(e.client_id),
                *e.token_details.as_tuple(), metadata_json(e.metadata),
            ])


def _focus_rows(
    request: ExportRequest, uow_factory: UnitOfWorkFactory, tally: _Tally,
    settings: ExportSettings, keep_alive: Callable[[], None],
) -> Iterator[list[str]]:
    """FOCUS rows aggregate every event before the first row: the lease is kept alive per
    batch of events read, not only per chunk written."""
    yield list(FOCUS_COLUMNS)
    names = names_for(request.org_id, uow_factory=uow_factory)
    with uow_factory() as uow:
        catalog = Catalog.of(uow.prices.all())
        providers = {e.model_id: e.provider for e in uow.models.all() if e.provider}
    ctx = FocusContext(
        request.org_id, request.start, request.end, zone(request.tz), GRAINS[request.granularity],
        catalog, settings.focus_provider, settings.focus_service, names.models, providers,
        names.clients, settings.tag_keys,
    )
    sums = FocusSums()
    for batch in _event_batches(request, uow_factory, tally):
        aggregate(batch, ctx, sums)
        keep_alive()
    tally.focus = sums
    for row in focus_rows(sums, ctx):
        tally.rows += 1
        yield text_row(row)


def _file_name(job: ExportJob) -> str:
    if job.scheduled:
        local = job.request.start.astimezone(zone(job.request.tz))
        base = f"{local:%Y%m}"
    else:
        base = str(job.adjusts or job.job_id)
    if job.adjusts is not None:
        return f"{base}.adjustment-{job.adjustment}.csv"
    return f"{base}.csv"


def _captured(rows: Iterable[list[str]], into: list[list[str]]) -> Iterator[list[str]]:
    """Pass rows through, keeping the data rows (not the header)."""
    for i, row in enumerate(rows):
        if i:
            into.append(row)
        yield row


def current_usage_rows(request: ExportRequest, uow_factory: UnitOfWorkFactory) -> Rows:
    """A usage file's rows as a fresh export would write them now."""
    rows = _usage_rows(request, uow_factory, _Tally())
    next(rows)  # the header
    return rows_of(rows)


def _keys(job: ExportJob) -> tuple[str, str]:
    """The CSV and manifest keys of a job (also where a failed attempt may have left files)."""
    csv_key = job.object_key or object_key(job.org_id, _file_name(job))
    return csv_key, csv_key.removesuffix(".csv") + ".manifest.json"


_COLUMNS = {ExportKind.USAGE: USAGE_COLUMNS, ExportKind.EVENTS: EVENT_COLUMNS,
            ExportKind.FOCUS: FOCUS_COLUMNS}


def _manifest(job: ExportJob, tally: _Tally, generated_at: datetime, complete: datetime,
              chain: dict[str, object] | None = None) -> bytes:
    t = tally.totals
    body: dict[str, object] = {
        "jobId": str(job.job_id), "orgId": str(job.org_id), "kind": job.request.kind.value,
        "granularity": job.request.granularity.value, "timezone": job.request.tz,
        "timeRange": {"start": isoformat(job.request.start, zone("UTC")),
                      "end": isoformat(job.request.end, zone("UTC"))},
        "models": [str(m) for m in job.request.models],
        "rowCount": tally.rows, "checksum": tally.digest.hexdigest(), "sizeBytes": tally.size,
        "generatedAt": isoformat(generated_at, zone("UTC")),
        "completeThrough": isoformat(complete, zone("UTC")),
        "totals": {
            "invocations": t.invocations, "success": t.success, "errors": t.errors,
            "timeouts": t.timeouts, "throttled": t.throttled, "inputTokens": t.input_tokens,
            "outputTokens": t.output_tokens, "costEstimateCents": t.cost.exact_str(),
            "tokenDetails": dict(zip(TOKEN_DETAIL_KEYS, t.token_details.as_tuple(), strict=True)),
            "catalogCostCents": t.catalog_cost.exact_str(), "unpricedInvocations": t.unpriced,
        },
        "columns": list(_COLUMNS[job.request.kind]),
    }
    if chain is not None:  # an adjustment: its totals are the deltas, in `chain`
        del body["totals"]
        body.update(chain)
    if tally.focus is not None:
        body["focus"] = {
            "version": "1.2", "billedCostUsd": focus_usd(tally.focus.billed_units),
            "pricedEvents": tally.focus.priced_events,
            "unpricedEvents": tally.focus.unpriced_events,
            "applicabilityCriteria": list(APPLICABILITY),
        }
    return json.dumps(body, indent=2).encode()


class LeaseLost(Exception):
    """Another runner reclaimed the job while this one was generating it."""


@attrs.define
class _Lease:
    """The job as this runner holds it; renewed (CAS) once half the lease has elapsed."""

    job: ExportJob
    runner: ExportRunner

    def keep_alive(self) -> None:
        now = self.runner.clock.now()
        expires = self.job.lease_expires_at
        if expires is None or expires - now > self.runner.settings.lease / 2:
            return
        renewed = self.runner._save(self.job.renew(now, self.runner.settings.lease))
        if renewed is None:
            raise LeaseLost(str(self.job.job_id))
        self.job = renewed

    def chunks(self, source: Iterable[bytes]) -> Iterator[bytes]:
        """Pass chunks through, keeping the lease alive between them."""
        for chunk in source:
            self.keep_alive()
            yield chunk


@attrs.frozen
class ExportRunner:
    """Claims and runs export jobs; safe with many runners (claims are atomic, saves are CAS)."""

    worker: str
    uow_factory: UnitOfWorkFactory
    objects: ObjectStore
    clock: Clock
    progress: PipelineProgress
    settings: ExportSettings = ExportSettings()

    def run_next(self) -> ExportJob | None:
        """Claim one due job and run it to success, retry or failure; None when nothing is due."""
        with self.uow_factory() as uow:
            job = uow.exports.claim_next(self.worker, self.clock.now(), self.settings.lease)
            uow.commit()
        if job is None:
            return None
        lease = _Lease(job, self)
        try:
            unknown_zone = unknown_zone_error(job)
            if unknown_zone is not None:  # no retry can help: fail it with a clear error
                now = self.clock.now()
                done = job.fail(now, unknown_zone, now + self.settings.retention)
            else:
                done = self._generate(lease)
        except LeaseLost:  # another runner owns the job now: leave its state and files alone
            return lease.job
        except StoreUnavailable as e:
            job = lease.job
            done = self._after_failure(job, f"temporary storage failure: {type(e).__name__}")
        except Exception:
            log.exception("export job %s failed with an unexpected error", lease.job.job_id)
            job = lease.job
            now = self.clock.now()
            done = job.fail(now, USER_SAFE_ERROR, now + self.settings.retention)
        saved = self._save(done)
        if saved is None:  # reclaimed by another runner: its files and state are left alone
            return job
        if saved.status is not ExportStatus.SUCCEEDED:
            self._discard_files(saved)
        return saved

    def _discard_files(self, job: ExportJob) -> None:
        """Best effort: an attempt may have stored its CSV before the manifest failed. What an
        outage keeps us from deleting now goes with the job's retention (`expire_due`)."""
        for key in _keys(job):
            with contextlib.suppress(StoreUnavailable):
                self.objects.delete(key)

    def _generate(self, lease: _Lease) -> ExportJob:
        job = lease.job
        tally = _Tally()
        kind = job.request.kind
        captured: list[list[str]] = []
        chain: dict[str, object] | None = None
        filed: str | None = None
        if job.adjusts is not None:
            rows, chain, filed = self._adjustment(job, tally)
        elif kind is ExportKind.FOCUS:
            rows = _focus_rows(job.request, self.uow_factory, tally, self.settings,
                               lease.keep_alive)
        elif kind is ExportKind.USAGE:
            rows = _captured(_usage_rows(job.request, self.uow_factory, tally), captured)
        else:
            rows = _event_rows(job.request, self.uow_factory, tally)
        key, manifest_key = _keys(job)
        generated_at = self.clock.now()
        complete = self.progress.complete_through(generated_at)

        def metadata() -> dict[str, str]:
            return {
                "org-id": str(job.org_id), "job-id": str(job.job_id),
                "generated-at": isoformat(generated_at, zone("UTC")),
                "checksum-sha256": tally.digest.hexdigest(), "row-count": str(tally.rows),
            }

        self.objects.put(
            key, lease.chunks(_encode(rows, tally)), metadata=metadata, content_type="text/csv"
        )
        lease.keep_alive()
        self.objects.put(
            manifest_key, [_manifest(job, tally, generated_at, complete, chain)],
            metadata=metadata, content_type="application/json",
        )
        now = self.clock.now()
        if job.adjusts is None and kind is ExportKind.USAGE:
            filed = digest(rows_of(captured))
        return lease.job.succeed(
            now, row_count=tally.rows, checksum=tally.digest.hexdigest(),
            object_key=key, expires_at=now + self.settings.retention, filed_digest=filed,
        )

    def _adjustment(self, job: ExportJob, tally: _Tally
                    ) -> tuple[Iterator[list[str]], dict[str, object], str]:
        """The delta rows of an adjustment job (current numbers minus the period as filed:
        its close plus every earlier adjustment that succeeded), the manifest's chain, and
        the digest of the numbers once filed."""
        assert job.adjusts is not None
        with self.uow_factory() as uow:
            original = uow.exports.get(job.org_id, job.adjusts)
            earlier = [a for a in uow.exports.adjustments(job.org_id, job.adjusts)
                       if a.status is ExportStatus.SUCCEEDED
                       and (a.adjustment or 0) < (job.adjustment or 0)]
        if original is None or original.object_key is None or original.checksum is None:
            raise LookupError(f"close {job.adjusts} of adjustment {job.job_id} has no file")
        filed: Rows = {}
        for step in (original, *earlier):
            assert step.object_key is not None
            filed = apply(filed, parse(b"".join(self.objects.open(step.object_key))))
        current = current_usage_rows(job.request, self.uow_factory)
        changed = deltas(filed, current)
        last = earlier[-1] if earlier else original
        chain: dict[str, object] = {
            "adjustment": job.adjustment,
            "adjusts": {"jobId": str(original.job_id), "objectKey": original.object_key,
                        "checksum": original.checksum},
            "supersedes": {"jobId": str(last.job_id), "objectKey": last.object_key,
                           "checksum": last.checksum},
            "deltaTotals": adjustment_totals(dict(zip(USAGE_COLUMNS, r, strict=True))
                                             for r in changed),
            "totalsAfter": adjustment_totals(current.values()),
        }

        def rows() -> Iterator[list[str]]:
            yield list(USAGE_COLUMNS)
            for row in changed:
                tally.rows += 1
                yield row

        return rows(), chain, digest(current)

    def _after_failure(self, job: ExportJob, reason: str) -> ExportJob:
        now = self.clock.now()
        if job.attempts < self.settings.max_attempts:
            return job.retry_later(now + self.settings.delay(job.attempts), reason)
        return job.fail(now, USER_SAFE_ERROR, now + self.settings.retention)

    def _save(self, job: ExportJob) -> ExportJob | None:
        """Persist with compare-and-set: a job reclaimed by another worker is left to it."""
        with self.uow_factory() as uow:
            saved = uow.exports.save(job)
            uow.commit()
        return job if saved else None

    def expire_due(self, limit: int = 100) -> int:
        """Delete the files of jobs past retention and mark them expired; returns how many."""
        with self.uow_factory() as uow:
            due = uow.exports.expirable(self.clock.now(), limit)
        expired = 0
        for job in due:
            for key in _keys(job):  # failed jobs too: a failed attempt may have left a CSV
                self.objects.delete(key)
            if self._save(job.expire()) is not None:
                expired += 1
        return expired


def schedule_monthly_exports(
    *, uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator, tz: str = "UTC",
) -> list[ExportJob]:
    """Create one job per org active in its previous calendar month, in the org's own zone
    (its settings) or else `tz`; idempotent per org and month, so every worker may call it."""
    now = clock.now()
    with uow_factory() as uow:
        zones = uow.org_settings.zones()
    created: list[ExportJob] = []
    for zone_name in sorted({tz, *zones.values()}):
        z = zone(zone_name)
        this_month = period_start(floor_bucket(now), Grain.MONTH, z)
        last_month = period_start(this_month - timedelta(minutes=15), Grain.MONTH, z)
        label = f"{last_month.astimezone(z):%Y%m}"
        with uow_factory() as uow:
            orgs = uow.rollups.active_orgs(last_month, this_month)
        for org in orgs:
            if zones.get(org, tz) != zone_name:
                continue  # its month is read in its own zone
            job = _schedule_one(org, last_month, this_month, label, zone_name,
                                uow_factory=uow_factory, clock=clock, ids=ids)
            if job is not None:
                created.append(job)
    return created


def _schedule_one(
    org: uuid.UUID, start: datetime, end: datetime, label: str, tz: str, *,
    uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator,
) -> ExportJob | None:
    key = f"monthly:{label}"
    request = ExportRequest(org, start, end, ExportGranularity.DAILY, tz, close=True)
    job = ExportJob(
        job_id=ids.new_id(), request=request, created_at=clock.now(), initiated_by="scheduler",
        idempotency_key=key, scheduled=True,
    )
    with uow_factory() as uow:
        if uow.exports.find_by_idempotency_key(org, key) is not None:
            return None
        try:
            uow.exports.add(job)
            uow.commit()
        except Conflict:
            return None
    return job


def detect_restatements(*, uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator,
                        limit: int = 1000) -> list[ExportJob]:
    """Create an adjustment job for every close whose numbers changed since they were filed
    (late events, repricing): one at a time per close (none while one is open), numbered,
    idempotent across workers. Closes filed before their digest was kept are not watched."""
    now = clock.now()
    with uow_factory() as uow:
        closes = uow.exports.closes(now, limit)
    created: list[ExportJob] = []
    for close in closes:
        with uow_factory() as uow:
            steps = uow.exports.adjustments(close.org_id, close.job_id)
        if any(s.status in (ExportStatus.PENDING, ExportStatus.RUNNING) for s in steps):
            continue
        filed = [s for s in steps if s.status is ExportStatus.SUCCEEDED]
        last = filed[-1] if filed else close
        if last.filed_digest is None:
            continue
        if digest(current_usage_rows(close.request, uow_factory)) == last.filed_digest:
            continue
        number = max((s.adjustment or 0 for s in steps), default=0) + 1
        job = ExportJob(
            job_id=ids.new_id(), request=close.request, created_at=now,
            initiated_by="restatement", idempotency_key=f"adjust:{close.job_id}:{number}",
            scheduled=close.scheduled, adjusts=close.job_id, adjustment=number,
        )
        with uow_factory() as uow:
            try:
                uow.exports.add(job)
                uow.commit()
            except Conflict:
                continue  # another worker created it
        created.append(job)
    return created
