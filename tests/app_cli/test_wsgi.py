"""The gunicorn entry `analytics_app.wsgi:app`: lazy, per process, refusing unmigrated storage."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest

from analytics_app import wsgi
from analytics_app.bootstrap import http_runtime
from analytics_app.config import Settings
from analytics_core.errors import SchemaNotMigrated


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean ANALYTICS_* environment on a temp data dir; the cached module app is reset."""
    for name in list(os.environ):
        if name.startswith("ANALYTICS_") and not name.startswith("ANALYTICS_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    wsgi._module_app.cache_clear()
    yield tmp_path
    wsgi._module_app.cache_clear()


def test_module_app_refuses_an_unmigrated_database(environment: Path):
    """Loading `app` on an unmigrated SQLite database raises SchemaNotMigrated."""
    with pytest.raises(SchemaNotMigrated, match="analytics migrate"):
        _ = wsgi.app


def test_module_app_serves_and_builds_its_runtime_once(
    environment: Path, monkeypatch: pytest.MonkeyPatch,
):
    """In memory mode `app` answers requests; the runtime is built on first use, once."""
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", "memory")
    monkeypatch.setenv("ANALYTICS_EMBEDDED_WORKER", "false")
    lazy = wsgi.app
    assert isinstance(lazy, http_runtime.LazyApp)
    client = falcon.testing.TestClient(lazy)
    assert client.simulate_get("/analytics/v1/status/healthz").status_code == 200
    first = lazy.runtime()
    assert client.simulate_get("/analytics/v1/status/readyz").status_code == 200
    assert lazy.runtime() is first
    first.close()


def test_lazy_app_starts_nothing_until_called():
    """Constructing the WSGI callable builds no runtime."""
    started: list[Settings] = []

    def factory(settings: Settings) -> http_runtime.Runtime:
        started.append(settings)
        return http_runtime.start_runtime(settings)

    lazy = http_runtime.LazyApp(Settings(embedded_worker=False), factory)
    assert started == []
    runtime = lazy.runtime()
    assert len(started) == 1
    runtime.close()


def test_unknown_module_attribute_is_an_attribute_error():
    """Only `app` is computed on access."""
    with pytest.raises(AttributeError):
        _ = wsgi.application  # type: ignore[attr-defined]
