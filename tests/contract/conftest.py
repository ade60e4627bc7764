"""Contract fixtures: one dispatching fixture per port, parametrized over every adapter.

A dispatching fixture (`uow_factory`, `freshness_cache`, `object_store`, `pipeline_progress`)
resolves its parameter `p` to the fixture named `{p}_{port}`. Backend fixtures live in
`tests/contract/*_backends.py` modules, loaded here as plugins when the file exists, so each
backend is added without editing this file. A parameter whose fixture nobody defines yet is
skipped locally and fails when CI=true.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from analytics_adapters.memory import (
    InMemoryFreshnessCache,
    InMemoryStorage,
    SynchronousPipeline,
    unit_of_work_factory,
)
from analytics_adapters.system import SystemClock
from analytics_core.ports import (
    FreshnessCache,
    ObjectStore,
    PipelineProgress,
    UnitOfWorkFactory,
)
from tests.conftest import IN_CI

_HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    """Register every `tests/contract/*_backends.py` module as a plugin (global fixtures).

    Each is also importable by its bare name (`import store_backends`), as the same module.
    """
    for path in sorted(_HERE.glob("*_backends.py")):
        name = f"tests.contract.{path.stem}"
        config.pluginmanager.import_plugin(name)
        sys.modules.setdefault(path.stem, sys.modules[name])


def _resolve(request: pytest.FixtureRequest, port: str) -> Any:
    """The `{param}_{port}` fixture; skip (fail in CI) when no such fixture is defined."""
    name = f"{request.param}_{port}"
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError as e:
        if e.argname != name:
            raise
        message = f"{request.param} {port} backend not built yet (no fixture {name!r})"
        if IN_CI:
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
            pytest.param("citus", marks=pytest.mark.citus)]
)
def uow_factory(request: pytest.FixtureRequest) -> UnitOfWorkFactory:
    """A unit-of-work factory for each storage backend."""
    factory: UnitOfWorkFactory = _resolve(request, "uow_factory")
    return factory


@pytest.fixture
def memory_uow_factory() -> UnitOfWorkFactory:
    """Units of work over a fresh in-memory storage."""
    return unit_of_work_factory(InMemoryStorage())


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def freshness_cache(request: pytest.FixtureRequest) -> FreshnessCache:
    """A freshness cache for each backend."""
    cache: FreshnessCache = _resolve(request, "freshness_cache")
    return cache


@pytest.fixture
def memory_freshness_cache() -> FreshnessCache:
    """The in-process cache on the system clock (TTLs elapse in real time, as in Redis)."""
    return InMemoryFreshnessCache(SystemClock())


@pytest.fixture(params=["localfs", pytest.param("s3", marks=pytest.mark.s3)])
def object_store(request: pytest.FixtureRequest) -> ObjectStore:
    """An object store for each backend."""
    store: ObjectStore = _resolve(request, "object_store")
    return store


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def pipeline_progress(request: pytest.FixtureRequest) -> PipelineProgress:
    """Pipeline progress for each ingestion path."""
    progress: PipelineProgress = _resolve(request, "pipeline_progress")
    return progress


@pytest.fixture
def memory_pipeline_progress() -> PipelineProgress:
    """Synchronous (HTTP) ingestion progress."""
    return SynchronousPipeline()

