"""Tenancy of export jobs (SPEC §5, §6): another org can neither list, read nor download them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import falcon.testing
import pytest

from analytics_app.bootstrap.ports import Ports
from analytics_core.records import AuditEntry
from analytics_core.usecases.export_runner import ExportRunner

PREFIX = "/analytics/v1"
REQUEST = {"timeRange": {"start": "2024-03-15T00:00:00Z", "end": "2024-03-16T00:00:00Z"}}


@pytest.fixture
def job_of_a(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    services: Ports, make_event: Any,
) -> str:
    """A succeeded export job of org A (its file exists)."""
    client.simulate_post(f"{PREFIX}/events", json={"events": [make_event(org_a)]},
                         headers=admin_of_a)
    job_id: str = client.simulate_post(f"{PREFIX}/orgs/{org_a}/exports", json=REQUEST,
                                       headers=admin_of_a).json["jobId"]
    ExportRunner("w", services.uow_factory, services.objects, services.clock,
                 services.progress).run_next()
    return job_id


@pytest.fixture
def identities_of_b(
    auth: Any, org_b: uuid.UUID, api_key: Callable[[uuid.UUID | None, str], str],
) -> dict[str, dict[str, str]]:
    """Org B's callers holding every export grant, by bearer token and by API key."""
    return {"jwt": auth(org_b, "org_admin"),
            "api-key": {"X-API-Key": api_key(org_b, "org_admin")}}


def _requests(org: uuid.UUID, job_id: str) -> list[tuple[str, str, str, str]]:
    """(method, path, audited action, audited resource) of every export endpoint."""
    base = f"{PREFIX}/orgs/{org}/exports"
    return [
        ("GET", base, "analytics:exports:read", f"exports:{org}"),
        ("POST", base, "analytics:exports:create", f"exports:{org}"),
        ("GET", f"{base}/{job_id}", "analytics:exports:read", f"export:{job_id}"),
        ("GET", f"{base}/{job_id}/download", "analytics:exports:download", f"export:{job_id}"),
    ]


@pytest.mark.parametrize("identity", ["jwt", "api-key"])
def test_another_org_is_refused_every_export_endpoint_with_403_and_each_denial_is_audited(
    client: falcon.testing.TestClient, org_a: uuid.UUID, org_b: uuid.UUID, job_of_a: str,
    identities_of_b: dict[str, dict[str, str]], identity: str, problem: Any,
    audit: Callable[[uuid.UUID], list[AuditEntry]], admin_of_a: dict[str, str],
) -> None:
    """Org B gets 403 on list, create, get and download of A's exports; each denial audited."""
    for n, (method, path, _, _) in enumerate(_requests(org_a, job_of_a)):
        headers = {**identities_of_b[identity], "X-Request-Id": f"cross-{n}"}
        result = client.simulate_request(method, path, headers=headers,
                                         json=REQUEST if method == "POST" else None)
        body = problem(result, 403)
        assert not {"jobId", "jobs", "checksum", "rowCount", "downloadUrl"} & set(body)
        assert "location" not in result.headers
    jobs = client.simulate_get(f"{PREFIX}/orgs/{org_a}/exports", headers=admin_of_a).json["jobs"]
    assert [j["jobId"] for j in jobs] == [job_of_a]
    denials = sorted(
        (e.request_id, e.action, e.resource, e.actor_org, e.outcome.value)
        for e in audit(org_a) if e.outcome.value == "denied"
    )
    assert denials == [
        (f"cross-{n}", action, resource, org_b, "denied")
        for n, (_, _, action, resource) in enumerate(_requests(org_a, job_of_a))
    ]


def test_another_orgs_job_id_under_its_own_path_is_404_for_get_and_download(
    client: falcon.testing.TestClient, org_b: uuid.UUID, job_of_a: str, auth: Any,
    problem: Any,
) -> None:
    """Under B's own path A's job does not exist: not listed, 404 to read and to download."""
    headers = auth(org_b, "org_admin")
    base = f"{PREFIX}/orgs/{org_b}/exports"
    assert client.simulate_get(base, headers=headers).json["jobs"] == []
    problem(client.simulate_get(f"{base}/{job_of_a}", headers=headers), 404)
    download = client.simulate_get(f"{base}/{job_of_a}/download", headers=headers)
    problem(download, 404)
    assert b"bucket_start" not in download.content


def test_the_owner_still_reads_and_downloads_the_job(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    job_of_a: str,
) -> None:
    """The same job is readable and downloadable by its own org (the refusals are tenancy)."""
    base = f"{PREFIX}/orgs/{org_a}/exports/{job_of_a}"
    assert client.simulate_get(base, headers=admin_of_a).json["status"] == "succeeded"
    assert client.simulate_get(f"{base}/download", headers=admin_of_a).status_code == 200
