"""Unauthenticated operational endpoints: liveness, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import falcon

from analytics_app.http.params import QueryReader
from analytics_app.http.problems import PROBLEM_JSON
from analytics_core.ports import HealthCheck

_log = logging.getLogger(__name__)


class HealthResource:
    """GET /status/healthz: the process answers."""

    public = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """200 OK text/plain."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "OK"


def _probe(check: HealthCheck) -> str | None:
    """None when healthy, else the error class name (never its message: it may hold secrets)."""
    try:
        check.check()
    except Exception as e:  # any failure of a probe means "not ready", never a 500
        _log.warning("readiness check %s failed: %s", check.name, type(e).__name__)
        return type(e).__name__
    return None


class ReadyResource:
    """GET /status/readyz: every configured dependency answers; `?verbose` gives JSON."""

    public = True

    def __init__(self, checks: Sequence[HealthCheck], degraded: Sequence[HealthCheck],
                 data_location: str = "") -> None:
        self._checks = tuple(checks)
        self._degraded = tuple(degraded)
        self._data = data_location

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """200 OK, or 503 naming what failed; degraded-only failures stay 200."""
        reader = QueryReader(req.params)
        verbose = reader.flag("verbose")
        reader.done()
        results = [(c.name, True, _probe(c)) for c in self._checks]
        results += [(c.name, False, _probe(c)) for c in self._degraded]
        failed = [name for name, critical, error in results if critical and error]
        degraded = [name for name, critical, error in results if not critical and error]
        resp.status = 503 if failed else 200
        if verbose:
            resp.media = _verbose(results, failed, degraded)
            if self._data:
                resp.media["data"] = self._data
        elif failed:
            resp.content_type = PROBLEM_JSON
            resp.text = json.dumps({
                "type": "urn:analytics:problem:not-ready", "title": "Not ready", "status": 503,
                "detail": "not ready: " + ", ".join(failed) + " unavailable",
                "instance": req.path, "failed": failed,
            })
        else:
            resp.content_type = falcon.MEDIA_TEXT
            resp.text = "OK"


def _verbose(
    results: list[tuple[str, bool, str | None]], failed: list[str], degraded: list[str]
) -> dict[str, Any]:
    status = "unavailable" if failed else "degraded" if degraded else "ok"
    checks = [
        {"name": name, "critical": critical,
         "status": "ok" if error is None else "failed" if critical else "degraded",
         **({"error": error} if error else {})}
        for name, critical, error in results
    ]
    return {"status": status, "checks": checks}


class MetricsResource:
    """GET /metrics: Prometheus text exposition."""

    public = True

    def __init__(self, render: Callable[[], tuple[bytes, str]]) -> None:
        self._render = render

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The current metric values."""
        body, content_type = self._render()
        resp.content_type = content_type
        resp.data = body


class OpenApiResource:
    """GET /analytics/v1/openapi.json: the OpenAPI 3.1 document of this API."""

    public = True

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._text = json.dumps(document, ensure_ascii=False)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The document."""
        resp.content_type = falcon.MEDIA_JSON
        resp.text = self._text
