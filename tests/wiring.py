"""Tests build the API the way the composition root does: use cases bound to ports, then the
Falcon app over the resulting `HttpApi` (only the adapters behind the ports are the test's)."""

from __future__ import annotations

import falcon

from analytics_app.bootstrap.ports import Ports
from analytics_app.bootstrap.use_cases import UseCases, http_api
from analytics_app.http.app import create_app


def app_for(ports: Ports) -> falcon.App[falcon.Request, falcon.Response]:
    """The API over `ports`, bound by the same code as in production."""
    return create_app(http_api(UseCases(ports)))
