"""Tests build the API the way the composition root does: use cases bound to ports, then the
Falcon app over the resulting `HttpApi` (only the adapters behind the ports are the test's)."""

from __future__ import annotations

import functools
from typing import Any

import falcon

from analytics_app.bootstrap.ports import Ports
from analytics_app.bootstrap.use_cases import UseCases, http_api
from analytics_app.http.app import create_app
from analytics_core.ports import Clock, IdGenerator, UnitOfWorkFactory
from analytics_core.usecases.ingest import ingest_batch, stored_offset


def app_for(ports: Ports) -> falcon.App[falcon.Request, falcon.Response]:
    """The API over `ports`, bound by the same code as in production."""
    return create_app(http_api(UseCases(ports)))


def stream_ingest(
    uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator,
) -> dict[str, Any]:
    """The `ingest` and `stored_offset` callables a partition worker or consumer is given,
    bound to these ports as `UseCases.ingest_stream` / `UseCases.stored_offset` bind them."""
    return {
        "ingest": functools.partial(ingest_batch, uow_factory=uow_factory, clock=clock, ids=ids),
        "stored_offset": functools.partial(stored_offset, uow_factory=uow_factory),
    }
