"""The export worker loop and the embedded worker thread of the service."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import falcon.testing
from dependency_injector import providers

from analytics_adapters.memory import ManualClock
from analytics_app.bootstrap.application import Application
from analytics_app.bootstrap.http_runtime import start_runtime
from analytics_app.cli.demo_data import generate_demo, ingest_demo
from analytics_app.config import Settings
from analytics_app.workers.export import EmbeddedWorker, WorkerTiming
from analytics_core.exports import ExportJob, ExportRequest, ExportStatus
from analytics_core.usecases.access import create_api_key
from analytics_core.usecases.exports import create_export, get_export

PREFIX = "/analytics/v1"


def _eventually(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _seed(application: Application, events: int = 600) -> uuid.UUID:
    data = generate_demo(now=application.ports.clock.now(), seed=2, events=events, days=3)
    ingest_demo(data.payloads, application.use_cases.ingest_demo)
    return data.orgs[0].org_id


def _export(application: Application, org: uuid.UUID, days: int = 2) -> ExportJob:
    s = application.ports
    now = s.clock.now()
    job, _ = create_export(
        ExportRequest(org, now - timedelta(days=days), now), initiated_by="test",
        idempotency_key=None, uow_factory=s.uow_factory, clock=s.clock, ids=s.ids,
    )
    return job


def _status(application: Application, job: ExportJob) -> ExportStatus:
    return get_export(job.org_id, job.job_id, uow_factory=application.ports.uow_factory).status


def test_export_created_over_http_completes_and_downloads(tmp_path: Path):
    """With the embedded worker an export created over HTTP is generated and downloadable."""
    settings = Settings(export_dir=tmp_path / "exports", worker_poll_seconds=0.05)
    runtime = start_runtime(settings)
    try:
        org = _seed(runtime.application)
        s = runtime.application.ports
        key, _ = create_api_key(org_id=org, roles=["org_admin"], name="t",
                                uow_factory=s.uow_factory, clock=s.clock, ids=s.ids)
        client = falcon.testing.TestClient(runtime.app, headers={"X-API-Key": key})
        now = s.clock.now()
        created = client.simulate_post(f"{PREFIX}/orgs/{org}/exports", json={
            "timeRange": {"start": (now - timedelta(days=2)).isoformat(),
                          "end": now.isoformat()}, "granularity": "daily"})
        assert created.status_code == 202
        job_url = f"{PREFIX}/orgs/{org}/exports/{created.json['jobId']}"
        assert _eventually(lambda: client.simulate_get(job_url).json["status"] == "succeeded")
        download = client.simulate_get(job_url + "/download")
        assert download.status_code == 200
        assert download.text.startswith("bucket_start,bucket_end,timezone,org_id,model_id")
    finally:
        runtime.close()
    assert runtime.embedded is not None
    assert not runtime.embedded.alive


def test_embedded_worker_thread_runs_pending_jobs(tmp_path: Path):
    """An EmbeddedWorker started on the services runs a job created through the use case."""
    application = Application(Settings(export_dir=tmp_path, worker_poll_seconds=0.05))
    job = _export(application, _seed(application))
    embedded = EmbeddedWorker(application.export_worker()).start()
    try:
        assert _eventually(lambda: _status(application, job) is ExportStatus.SUCCEEDED)
    finally:
        embedded.stop()


def test_stop_interrupts_a_long_poll_wait(tmp_path: Path):
    """stop() ends the loop at once even while it sleeps a long poll interval."""
    application = Application(Settings(export_dir=tmp_path, worker_poll_seconds=3600))
    embedded = EmbeddedWorker(application.export_worker()).start()
    assert _eventually(lambda: embedded.alive)
    embedded.stop(timeout=10)
    assert not embedded.alive


def test_housekeeping_expires_jobs_past_retention(tmp_path: Path):
    """After the retention a finished job's files are deleted and the job is expired."""
    application = Application(Settings(export_dir=tmp_path, export_retention_days=90))
    clock = ManualClock(datetime.now(UTC))
    application.container.clock.override(providers.Object(clock))
    job = _export(application, _seed(application))
    application.export_worker().run_round()
    done = get_export(job.org_id, job.job_id, uow_factory=application.ports.uow_factory)
    assert done.status is ExportStatus.SUCCEEDED
    assert done.object_key is not None
    assert application.ports.objects.exists(done.object_key)
    clock.advance(timedelta(days=91))
    application.export_worker().run_round()
    assert _status(application, job) is ExportStatus.EXPIRED
    assert not application.ports.objects.exists(done.object_key)


def test_housekeeping_schedules_last_months_export(tmp_path: Path):
    """Early in a month the worker creates and runs the previous month's export per org."""
    application = Application(Settings(export_dir=tmp_path))
    clock = ManualClock(datetime(2025, 3, 20, 12, tzinfo=UTC))
    application.container.clock.override(providers.Object(clock))
    org = _seed(application, events=300)
    clock.set(datetime(2025, 4, 2, 9, tzinfo=UTC))
    worker = application.export_worker()
    worker.run_round()  # housekeeping creates the March jobs
    worker.run_round()  # and the next round runs them
    assert application.ports.objects.exists(f"analytics/exports/{org}/202503.csv")


def test_worker_survives_storage_errors_and_recovers(tmp_path: Path):
    """A round failing on an unmigrated database is retried; after migrate jobs run."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", export_dir=tmp_path,
                        worker_poll_seconds=0.05)
    application = Application(settings)
    worker = application.export_worker(WorkerTiming(poll_seconds=0.05, error_backoff_seconds=0.05))
    embedded = EmbeddedWorker(worker).start()
    try:
        time.sleep(0.2)  # let it fail at least once
        assert embedded.alive
        application.migrate()
        job = _export(application, _seed(application, events=200))
        assert _eventually(lambda: _status(application, job) is ExportStatus.SUCCEEDED)
    finally:
        embedded.stop()
        application.shutdown()
