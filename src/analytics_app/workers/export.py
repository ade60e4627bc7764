"""Export worker: polls for due jobs, expires old ones, schedules monthly exports; stops cleanly."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

import attrs

from analytics_app.observability import metrics
from analytics_core.exports import ExportJob, ExportStatus
from analytics_core.usecases.export_runner import ExportRunner

log = logging.getLogger("analytics.worker")

MAX_JOBS_PER_ROUND = 50
RESTATEMENT_BATCHES_PER_ROUND = 20
MAX_ERROR_BACKOFF_SECONDS = 60.0


@attrs.frozen
class WorkerTiming:
    """How often the loop polls and runs its housekeeping."""

    poll_seconds: float = 2.0
    housekeeping_every: timedelta = timedelta(minutes=5)
    error_backoff_seconds: float = 1.0


class ExportWorker:
    """Runs export jobs until stopped. Safe to run many (claims are atomic, saves CAS).

    One round runs due jobs until none is left (at most MAX_JOBS_PER_ROUND), then up to
    RESTATEMENT_BATCHES_PER_ROUND batches of open restatements (repricing), then, every
    `housekeeping_every`, runs the storage upkeep, expires jobs past retention, creates the
    monthly exports, and queues an adjustment for every close whose numbers changed. With no
    work it sleeps `poll_seconds`; after an error it backs off exponentially up to a minute.
    `stop()` lets the job in hand finish, then the loop returns.
    """

    def __init__(
        self, runner: ExportRunner, *, schedule_monthly: Callable[[], list[ExportJob]],
        upkeep: Callable[[], None] = lambda: None, timing: WorkerTiming = WorkerTiming(),
        restate: Callable[[int], int] = lambda n: 0,
        detect_restated: Callable[[], list[ExportJob]] = list,
    ) -> None:
        self.runner = runner
        self._restate = restate
        self._schedule_monthly = schedule_monthly
        self._detect_restated = detect_restated
        self._upkeep = upkeep
        self._timing = timing
        self._stopping = threading.Event()
        self._next_housekeeping = 0.0  # monotonic seconds; 0 runs housekeeping at once

    @property
    def stopping(self) -> bool:
        """Whether stop() was requested."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask the loop to return after the job in hand (callable from a signal handler)."""
        self._stopping.set()

    def run_round(self) -> int:
        """Run due jobs (and housekeeping when due); return how many jobs were run."""
        ran = 0
        while ran < MAX_JOBS_PER_ROUND and not self.stopping:
            started = time.perf_counter()
            job = self.runner.run_next()
            if job is None:
                break
            ran += 1
            metrics.observe_export_run(job, time.perf_counter() - started)
            log.info("export job %s finished as %s (attempt %d)", job.job_id, job.status,
                     job.attempts, extra={"job_id": str(job.job_id), "org_id": str(job.org_id)})
        if not self.stopping:
            batches = self._restate(RESTATEMENT_BATCHES_PER_ROUND)
            if batches:
                log.info("ran %d restatement batches", batches)
            ran += batches
        if time.monotonic() >= self._next_housekeeping:
            self.housekeeping()
            every = self._timing.housekeeping_every.total_seconds()
            self._next_housekeeping = time.monotonic() + every
        return ran

    def housekeeping(self) -> None:
        """Storage upkeep (e.g. partitions ahead), expire jobs past retention, and create the
        previous month's scheduled exports."""
        self._upkeep()
        expired = self.runner.expire_due()
        for _ in range(expired):
            metrics.observe_export_job(ExportStatus.EXPIRED.value)
        created = self._schedule_monthly()
        for _ in created:
            metrics.observe_export_job(ExportStatus.PENDING.value)
        if expired or created:
            log.info("expired %d export jobs, scheduled %d monthly exports", expired, len(created))
        adjustments = self._detect_restated()
        for job in adjustments:
            metrics.observe_export_job(ExportStatus.PENDING.value)
            metrics.observe_restated_close()
            log.info("closed export %s changed after it was filed: adjustment %d queued",
                     job.adjusts, job.adjustment,
                     extra={"job_id": str(job.job_id), "org_id": str(job.org_id)})

    def run_forever(self) -> None:
        """Loop until stop(); never raises (errors are logged and retried with backoff)."""
        backoff = self._timing.error_backoff_seconds
        log.info("export worker %s started", self.runner.worker)
        while not self.stopping:
            try:
                ran = self.run_round()
            except Exception:
                log.exception("export worker round failed; retrying in %.1f s", backoff)
                self._sleep(backoff)
                backoff = min(backoff * 2, MAX_ERROR_BACKOFF_SECONDS)
                continue
            backoff = self._timing.error_backoff_seconds
            if ran == 0:
                self._sleep(self._timing.poll_seconds)
        log.info("export worker %s stopped", self.runner.worker)

    def _sleep(self, seconds: float) -> None:
        # Waiting on the stop event (not time.sleep) makes stop() take effect at once.
        self._stopping.wait(seconds)


class Loop(Protocol):
    """A worker loop: runs until stopped."""

    def run_forever(self) -> None: ...

    def stop(self) -> None: ...


class EmbeddedWorker:
    """A worker loop (the export worker, the alerts worker) on a daemon thread inside the API
    process (no separate worker process needed)."""

    def __init__(self, worker: Loop, name: str = "embedded-export-worker") -> None:
        self.worker = worker
        self._thread = threading.Thread(target=worker.run_forever, name=name, daemon=True)

    def start(self) -> EmbeddedWorker:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop and wait for the job in hand to finish (up to `timeout` seconds)."""
        self.worker.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
