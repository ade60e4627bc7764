"""Download from a store that signs URLs (the real S3 adapter on moto): 302 to a fresh URL."""

from __future__ import annotations

import urllib.request
import uuid
from typing import Any

import attrs
import falcon.testing
import pytest

from analytics_adapters.s3.object_store import S3ObjectStore
from analytics_app.bootstrap.ports import Ports
from analytics_core.usecases.export_runner import ExportRunner
from tests.contract.store_backends import (  # noqa: F401  fixtures, requested by name below
    moto_s3_server,
    s3_bucket,
    s3_object_store,
)
from tests.wiring import app_for

PREFIX = "/analytics/v1"
pytestmark = pytest.mark.s3


def test_download_redirects_to_a_freshly_signed_url(
    services: Ports, org_a: uuid.UUID, admin_of_a: dict[str, str], make_event: Any,
    request: pytest.FixtureRequest,
) -> None:
    """With S3 the download is a 302 whose Location fetches the CSV."""
    s3_store: S3ObjectStore = request.getfixturevalue("s3_object_store")
    s3_services = attrs.evolve(services, objects=s3_store)
    client = falcon.testing.TestClient(app_for(s3_services))
    client.simulate_post(f"{PREFIX}/events", json={"events": [make_event(org_a)]},
                         headers=admin_of_a)
    export = {"timeRange": {"start": "2024-03-15T00:00:00Z", "end": "2024-03-16T00:00:00Z"}}
    job_id = client.simulate_post(f"{PREFIX}/orgs/{org_a}/exports", json=export,
                                  headers=admin_of_a).json["jobId"]
    ExportRunner("w", services.uow_factory, s3_store, services.clock,
                 services.progress).run_next()
    url = f"{PREFIX}/orgs/{org_a}/exports/{job_id}/download"
    result = client.simulate_get(url, headers=admin_of_a)
    assert result.status_code == 302
    assert result.headers["cache-control"] == "no-store"
    location = result.headers["location"]
    assert location.startswith("http://127.0.0.1")
    with urllib.request.urlopen(location) as response:
        assert response.read().startswith(b"bucket_start,")
