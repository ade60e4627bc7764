"""Export jobs over HTTP: create with Idempotency-Key, list, get, download (SPEC §5, §7)."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import falcon.testing
import pytest

from analytics_adapters.memory import ManualClock
from analytics_app.bootstrap.ports import Ports
from analytics_core.usecases.export_runner import ExportRunner

PREFIX = "/analytics/v1"
REQUEST = {"timeRange": {"start": "2024-03-15T00:00:00Z", "end": "2024-03-16T00:00:00Z"},
           "granularity": "daily"}


@pytest.fixture
def exports_url(org_a: uuid.UUID) -> str:
    """The exports collection of org A."""
    return f"{PREFIX}/orgs/{org_a}/exports"


@pytest.fixture
def create(
    client: falcon.testing.TestClient, exports_url: str, admin_of_a: dict[str, str]
) -> Callable[..., Any]:
    """POST an export request of org A."""

    def post(body: Any = None, **headers: str) -> Any:
        return client.simulate_post(exports_url, json=REQUEST if body is None else body,
                                    headers={**admin_of_a, **headers})

    return post


@pytest.fixture
def runner(services: Ports) -> ExportRunner:
    """An export runner over the same services."""
    return ExportRunner("test-worker", services.uow_factory, services.objects, services.clock,
                        services.progress, services.exports)


def test_create_returns_202_pending_job_with_location(
    create: Callable[..., Any], org_a: uuid.UUID, exports_url: str
) -> None:
    """A new export is 202 with the job, a Location, and no downloadUrl yet."""
    result = create()
    assert result.status_code == 202
    job = result.json
    assert result.headers["location"] == f"{exports_url}/{job['jobId']}"
    assert (job["orgId"], job["status"], job["kind"], job["granularity"]) == (
        str(org_a), "pending", "usage", "daily"
    )
    assert job["timeRange"] == REQUEST["timeRange"]
    assert (job["downloadUrl"], job["attempts"], job["initiatedBy"]) == (None, 0, "user-1")


def test_idempotency_key_replay_returns_the_same_job(create: Callable[..., Any]) -> None:
    """Replaying the key with the same body returns the first job (200, not a new one)."""
    first = create(**{"Idempotency-Key": "k-1"})
    again = create(**{"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json["jobId"] == again.json["jobId"]
    assert again.headers["idempotent-replayed"] == "true"


def test_idempotency_key_with_a_different_body_is_409(
    create: Callable[..., Any], problem: Any
) -> None:
    """The same key with another request is a conflict."""
    create(**{"Idempotency-Key": "k-2"})
    other = {**REQUEST, "granularity": "hourly"}
    problem(create(other, **{"Idempotency-Key": "k-2"}), 409)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "timeRange"),
        ({"timeRange": {"start": "2024-03-15T00:00:00Z", "end": "soon"}}, "timeRange.end"),
        ({"timeRange": {"start": "2024-03-15T00:00:00Z", "end": "2024-03-14T00:00:00Z"}},
         "timeRange.end"),
        ({"timeRange": {"start": "2024-01-01T00:00:00Z", "end": "2024-03-01T00:00:00Z"}},
         "timeRange"),
        ({**REQUEST, "kind": "events",
          "timeRange": {"start": "2024-03-01T00:00:00Z", "end": "2024-03-10T00:00:00Z"}},
         "timeRange"),
        ({**REQUEST, "granularity": "weekly"}, "granularity"),
        ({**REQUEST, "tz": "Nowhere/Land"}, "tz"),
        ({**REQUEST, "models": ["x"]}, "models[0]"),
        ({**REQUEST, "models": "x"}, "models"),
        ({**REQUEST, "kind": "raw"}, "kind"),
        ({**REQUEST, "kind": "events", "close": True}, "close"),
        ({**REQUEST, "close": "yes"}, "close"),
        ([REQUEST], "body"),
    ],
)
def test_invalid_export_requests_are_400_naming_the_field(
    create: Callable[..., Any], problem: Any, body: Any, field: str
) -> None:
    """Every bad part of an export request is named."""
    body_json = problem(create(body), 400)
    assert field in {e["field"] for e in body_json["errors"]}


def test_list_is_newest_first_with_status_filter_and_cursor_pages(
    create: Callable[..., Any], client: falcon.testing.TestClient, exports_url: str,
    admin_of_a: dict[str, str], clock: ManualClock, runner: ExportRunner,
) -> None:
    """Pages of 2 walk every job newest first; status filters; nextCursor ends with null."""
    created = []
    for _ in range(5):
        created.append(create().json["jobId"])
        clock.advance(timedelta(seconds=1))
    runner.run_next()  # the oldest job succeeds
    seen: list[str] = []
    cursor = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.simulate_get(exports_url, query_string=query, headers=admin_of_a).json
        seen += [j["jobId"] for j in page["jobs"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))
    done = client.simulate_get(exports_url, query_string="status=succeeded", headers=admin_of_a)
    assert [j["jobId"] for j in done.json["jobs"]] == [created[0]]


@pytest.mark.parametrize(
    ("query", "field"),
    [("cursor=%%%", "cursor"), ("cursor=bm90LWEtY3Vyc29y", "cursor"), ("limit=0", "limit"),
     ("limit=201", "limit"), ("limit=ten", "limit"), ("status=done", "status")],
)
def test_bad_list_parameters_are_400(
    client: falcon.testing.TestClient, exports_url: str, admin_of_a: dict[str, str],
    problem: Any, query: str, field: str,
) -> None:
    """Invalid cursor, limit or status are named."""
    result = client.simulate_get(exports_url, query_string=query, headers=admin_of_a)
    assert problem(result, 400)["errors"][0]["field"] == field


def test_get_one_job_and_404_for_unknown_or_malformed_ids(
    create: Callable[..., Any], client: falcon.testing.TestClient, exports_url: str,
    admin_of_a: dict[str, str], problem: Any,
) -> None:
    """GET returns the job; an unknown id is 404; a non-UUID id is 400 naming jobId."""
    job = create().json
    assert client.simulate_get(f"{exports_url}/{job['jobId']}",
                               headers=admin_of_a).json == job
    problem(client.simulate_get(f"{exports_url}/{uuid.uuid4()}", headers=admin_of_a), 404)
    bad = problem(client.simulate_get(f"{exports_url}/nope", headers=admin_of_a), 400)
    assert bad["errors"][0]["field"] == "jobId"


def test_another_orgs_job_is_not_visible(
    create: Callable[..., Any], client: falcon.testing.TestClient, org_b: uuid.UUID,
    auth: Any, problem: Any,
) -> None:
    """Org B's admin asking for A's job id under B's path gets 404."""
    job_id = create().json["jobId"]
    result = client.simulate_get(f"{PREFIX}/orgs/{org_b}/exports/{job_id}",
                                 headers=auth(org_b, "org_admin"))
    problem(result, 404)


def test_download_streams_the_csv_after_the_job_ran(
    create: Callable[..., Any], client: falcon.testing.TestClient, exports_url: str,
    admin_of_a: dict[str, str], runner: ExportRunner, make_event: Any, ingest: Any,
    org_a: uuid.UUID,
) -> None:
    """Once succeeded the job has a downloadUrl that streams the CSV whose checksum matches."""
    ingest([make_event(org_a, occurredAt="2024-03-15T08:00:00Z", costEstimateCents="2.25")])
    job_id = create().json["jobId"]
    runner.run_next()
    job = client.simulate_get(f"{exports_url}/{job_id}", headers=admin_of_a).json
    assert job["status"] == "succeeded"
    assert job["downloadUrl"] == f"{exports_url}/{job_id}/download"
    result = client.simulate_get(job["downloadUrl"], headers=admin_of_a)
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/csv")
    assert f'filename="{job_id}.csv"' in result.headers["content-disposition"]
    assert hashlib.sha256(result.content).hexdigest() == job["checksum"]
    rows = list(csv.DictReader(io.StringIO(result.text)))
    assert len(rows) == job["rowCount"] == 1
    assert rows[0]["cost_estimate_cents"] == "2.2500"


def test_download_before_success_is_404_and_after_expiry_410(
    create: Callable[..., Any], client: falcon.testing.TestClient, exports_url: str,
    admin_of_a: dict[str, str], runner: ExportRunner, clock: ManualClock,
    services: Ports, problem: Any,
) -> None:
    """No file yet is 404; once retention expired the job it is 410 Gone."""
    job_id = create().json["jobId"]
    download = f"{exports_url}/{job_id}/download"
    problem(client.simulate_get(download, headers=admin_of_a), 404)
    runner.run_next()
    clock.advance(services.exports.retention + timedelta(seconds=1))
    assert runner.expire_due() == 1
    problem(client.simulate_get(download, headers=admin_of_a), 410)
    job = client.simulate_get(f"{exports_url}/{job_id}", headers=admin_of_a).json
    assert (job["status"], job["downloadUrl"]) == ("expired", None)


def test_download_needs_the_download_grant(
    create: Callable[..., Any], client: falcon.testing.TestClient, exports_url: str,
    auth: Any, org_a: uuid.UUID, runner: ExportRunner, problem: Any,
) -> None:
    """exports:read alone cannot download; exports:download can."""
    job_id = create().json["jobId"]
    runner.run_next()
    url = f"{exports_url}/{job_id}/download"
    problem(client.simulate_get(url, headers=auth(org_a, "analytics:exports:read")), 403)
    allowed = client.simulate_get(url, headers=auth(org_a, "analytics:exports:download"))
    assert allowed.status_code == 200


def test_a_close_is_created_and_shown_as_one(create: Callable[..., Any]) -> None:
    """`close: true` makes a close (watched for later changes, docs/exports.md); the default
    is not one and neither shows an adjustment."""
    close = create({**REQUEST, "close": True}, **{"Idempotency-Key": "close-1"}).json
    plain = create().json
    assert (close["close"], close["adjusts"], close["adjustment"]) == (True, None, None)
    assert plain["close"] is False
