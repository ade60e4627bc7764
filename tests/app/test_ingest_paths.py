"""Every driver's ingest goes through one bound path (SPEC §2, issue 19): the HTTP batch, the
stream, the library and the demo all hand bytes to the same msgspec decoder, and all run with
the collector tuned while the batch is in hand."""

from __future__ import annotations

import contextlib
import gc
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

import attrs
import falcon.testing
import pytest
from dependency_injector import providers

from analytics_adapters.msgspec_codec import MsgspecEventDecoder
from analytics_app.bootstrap.application import Application
from analytics_app.http.app import create_app
from analytics_app.stream.gc_tuning import BATCH_GC_THRESHOLD, batch_collection
from analytics_core.events import UsageEvent
from analytics_core.usecases.ingest import BatchResult, IngestScope, RawMessage
from tests.app.conftest import PREFIX, EventFactory


@attrs.define
class CountingDecoder:
    """The real decoder, counting its calls and the collector threshold it ran under."""

    calls: int = 0
    thresholds: list[int] = attrs.Factory(list)
    inner: MsgspecEventDecoder = attrs.Factory(MsgspecEventDecoder)

    def decode(self, data: bytes, earliest: datetime, latest: datetime) -> UsageEvent | None:
        """What the msgspec decoder returns."""
        self.calls += 1
        self.thresholds.append(gc.get_threshold()[0])
        return self.inner.decode(data, earliest, latest)


Driver = Callable[[Application, list[RawMessage], uuid.UUID], BatchResult]

DRIVERS: dict[str, Driver] = {
    "http": lambda app, batch, org: app.use_cases.ingest(
        batch, IngestScope(lambda orgs: None, org)),
    "stream": lambda app, batch, _: app.use_cases.ingest_stream(batch, source="stream:t",
                                                                checkpoint=None),
    "library": lambda app, batch, _: app.use_cases.ingest_trusted(batch, source="library"),
    "demo": lambda app, batch, _: app.use_cases.ingest_demo(batch),
}


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_every_driver_decodes_with_the_bound_decoder_under_the_batch_collector(
    application: Application, make_event: EventFactory, org_a: uuid.UUID, driver: str,
) -> None:
    """Two events as bytes: both decoded by the container's decoder, stored, and decoded
    while the young generation's threshold was the batch one; afterwards the process's own
    threshold is back."""
    decoder = CountingDecoder()
    application.container.decoder.override(providers.Object(decoder))
    before = gc.get_threshold()
    batch = [RawMessage(json.dumps(make_event(org_a)).encode()) for _ in range(2)]
    result = DRIVERS[driver](application, batch, org_a)
    assert result.accepted == 2
    assert decoder.calls == 2
    assert set(decoder.thresholds) == {max(before[0], BATCH_GC_THRESHOLD)}
    assert gc.get_threshold() == before


def test_a_whole_http_ingest_request_runs_in_the_batch_scope(
    application: Application, make_event: EventFactory, org_a: uuid.UUID,
    admin_of_a: dict[str, str],
) -> None:
    """The service binds the batch collector as the API's batch scope, and POST /events reads
    the body, ingests and renders the 5,000 results inside it (the objects a request builds
    around the use case are a batch's too)."""
    api = application.http_api()
    assert api.batch_scope is batch_collection
    seen: list[str] = []

    @contextlib.contextmanager
    def scope() -> Iterator[None]:
        seen.append("enter")
        yield
        seen.append("exit")

    def ingest(messages: Sequence[RawMessage], ingest_scope: IngestScope) -> BatchResult:
        seen.append("ingest")
        return api.ingest(messages, ingest_scope)

    client = falcon.testing.TestClient(create_app(attrs.evolve(api, batch_scope=scope,
                                                               ingest=ingest)))
    response = client.simulate_post(f"{PREFIX}/events", json={"events": [make_event(org_a)]},
                                    headers=admin_of_a)
    assert response.status_code == 202
    assert seen == ["enter", "ingest", "exit"]
