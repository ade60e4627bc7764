"""Credentials never reach the logs, at any level (SPEC §11), whoever logs them."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import falcon.testing
import pytest

from analytics_adapters.s3.object_store import S3ObjectStore
from analytics_app.bootstrap.ports import Ports
from analytics_app.config import load_settings
from analytics_app.observability.logs import configure_logging
from analytics_core.usecases.export_runner import ExportRunner
from tests.contract.store_backends import (  # noqa: F401  fixtures, requested by name below
    S3_REGION,
    moto_s3_server,
    s3_bucket,
)
from tests.wiring import app_for

PREFIX = "/analytics/v1"
ACCESS_KEY_ID = "AKIA" + "Q7EXAMPLEKEY1234"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every log line of the test at DEBUG, through the product's own handler."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("DEBUG", stream=buffer, secrets=[ACCESS_KEY_ID, SECRET_KEY])
    yield buffer
    root.handlers[:], level = saved
    root.setLevel(level)


@pytest.mark.s3
def test_debug_logs_of_an_s3_export_carry_no_credentials(
    services: Ports, org_a: uuid.UUID, admin_of_a: dict[str, str], make_event: Any,
    request: pytest.FixtureRequest, captured: io.StringIO,
) -> None:
    """botocore logs request headers (SigV4 Credential=<access key id>) at DEBUG: the access
    key id and the secret are redacted from every line, as are API keys and bearer tokens."""
    server = request.getfixturevalue("moto_s3_server")
    store = S3ObjectStore.connect(
        request.getfixturevalue("s3_bucket"), endpoint_url=server.endpoint_url,
        region=S3_REGION, path_style=True, access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_KEY, max_attempts=1)
    client = falcon.testing.TestClient(app_for(attrs.evolve(services, objects=store)))
    client.simulate_post(f"{PREFIX}/events", json={"events": [make_event(org_a)]},
                         headers=admin_of_a)
    export = {"timeRange": {"start": "2024-03-15T00:00:00Z", "end": "2024-03-16T00:00:00Z"}}
    job_id = client.simulate_post(f"{PREFIX}/orgs/{org_a}/exports", json=export,
                                  headers=admin_of_a).json["jobId"]
    job = ExportRunner("w", services.uow_factory, store, services.clock,
                       services.progress, services.exports).run_next()
    assert job is not None
    assert job.status.value == "succeeded"
    client.simulate_get(f"{PREFIX}/orgs/{org_a}/exports/{job_id}/download", headers=admin_of_a)
    token = admin_of_a["Authorization"].split()[1]
    logging.getLogger("somelib").debug("sending headers %s", {
        "Authorization": f"Bearer {token}", "X-API-Key": "ak_0123456789abcdef_s3cr3tpart"})
    logging.getLogger("somelib").debug("dsn postgresql://u:hunter2pass@db/x")
    text = captured.getvalue()
    assert "botocore" in text  # the library did log its requests at DEBUG
    assert "[redacted]" in text
    for secret in (ACCESS_KEY_ID, SECRET_KEY, token, "s3cr3tpart", "hunter2pass"):
        assert secret not in text


def test_settings_list_every_configured_credential() -> None:
    """The redactor is given each credential the deployment is configured with."""
    settings = load_settings({
        "ANALYTICS_DATABASE_URL": "postgresql://app:db-pass-123@127.0.0.1/x",
        "ANALYTICS_S3_BUCKET": "b", "ANALYTICS_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "ANALYTICS_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "ANALYTICS_JWT_KEY": "k" * 40,
    })
    assert set(settings.secret_values()) == {"db-pass-123", ACCESS_KEY_ID, SECRET_KEY, "k" * 40}
