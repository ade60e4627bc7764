"""The real service on the Citus cluster (SPEC §16): `analytics migrate`, `demo` and `serve`
with ANALYTICS_DATABASE_URL naming a coordinator answer as they do on single PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.citus_backends import fresh_citus_database
from tests.e2e.test_serve import ORG, Service, _window
from tests.e2e.test_serve import (
    test_serve_answers_queries_exports_and_keeps_data_across_restart as serve_round_trip,
)

pytestmark = pytest.mark.citus


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A service whose database is a fresh, unmigrated database on the cluster."""
    with fresh_citus_database(migrate=False) as url:
        svc = Service(tmp_path)
        svc.env["ANALYTICS_DATABASE_URL"] = url.render_as_string(hide_password=False)
        yield svc
        if svc.server is not None and svc.server.poll() is None:
            svc.server.kill()
            svc.server.wait()


test_serve_on_citus_answers_queries_exports_and_keeps_data_across_restart = serve_round_trip


def test_reliability_in_a_45_minute_zone_on_citus(service: Service) -> None:
    """Reliability for Asia/Kathmandu reads the cluster's rollups like UTC does: the same
    invocation total."""
    key = service.migrate_and_demo(events=800, days=2)
    service.start()
    window = _window()
    utc = service.json(f"/orgs/{ORG}/reliability?{window}&percentile=p95&granularity=day",
                       key)
    nepal = service.json(f"/orgs/{ORG}/reliability?{window}&percentile=p95"
                         "&granularity=day&tz=Asia/Kathmandu", key)
    assert utc["totals"]["invocations"] > 0
    assert nepal["totals"]["invocations"] == utc["totals"]["invocations"]
    assert service.stop() == 0
