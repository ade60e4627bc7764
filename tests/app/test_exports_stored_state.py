"""Stored export jobs that can no longer run (SPEC §11): readable, never a 5xx."""

from __future__ import annotations

import uuid
from datetime import timedelta

import falcon.testing

from analytics_app.bootstrap.ports import Ports
from analytics_core.exports import ExportJob, ExportRequest
from analytics_core.usecases.export_runner import ExportRunner

PREFIX = "/analytics/v1"


def _store_job_with_zone(services: Ports, org: uuid.UUID, tz: str) -> ExportJob:
    now = services.clock.now()
    job = ExportJob(job_id=uuid.uuid4(), created_at=now, initiated_by="user:old-release",
                    request=ExportRequest(org, now - timedelta(days=2), now - timedelta(days=1),
                                          tz=tz))
    with services.uow_factory() as uow:
        uow.exports.add(job)
        uow.commit()
    return job


def test_job_with_a_zone_tzdata_does_not_know_reads_as_failed_over_the_api(
    client: falcon.testing.TestClient, services: Ports, org_a: uuid.UUID,
    admin_of_a: dict[str, str], problem: object,
) -> None:
    """GET of the job and of the list answer 200 (the job failed, with a clear error), the
    download 404, and the worker fails the job instead of crashing."""
    job = _store_job_with_zone(services, org_a, "Mars/Base")
    one = client.simulate_get(f"{PREFIX}/orgs/{org_a}/exports/{job.job_id}", headers=admin_of_a)
    assert one.status_code == 200, one.text
    assert one.json["status"] == "failed"
    assert "'Mars/Base' is not known" in one.json["error"]
    listed = client.simulate_get(f"{PREFIX}/orgs/{org_a}/exports", headers=admin_of_a)
    assert listed.status_code == 200, listed.text
    assert [j["status"] for j in listed.json["jobs"]] == ["failed"]
    download = client.simulate_get(f"{PREFIX}/orgs/{org_a}/exports/{job.job_id}/download",
                                   headers=admin_of_a)
    assert download.status_code == 404
    ran = ExportRunner("w", services.uow_factory, services.objects, services.clock,
                       services.progress, services.exports).run_next()
    assert ran is not None
    assert ran.status.value == "failed"
    assert ran.error is not None
    assert "'Mars/Base' is not known" in ran.error
    again = client.simulate_get(f"{PREFIX}/orgs/{org_a}/exports/{job.job_id}", headers=admin_of_a)
    assert again.status_code == 200
    assert again.json["status"] == "failed"
