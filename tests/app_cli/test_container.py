"""The composition root builds every mode from Settings and closes what it opened."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from analytics_adapters.localfs.object_store import LocalDirectoryObjectStore
from analytics_adapters.memory import InMemoryFreshnessCache
from analytics_adapters.redis.freshness_cache import RedisFreshnessCache
from analytics_adapters.s3.object_store import S3ObjectStore
from analytics_app.bootstrap.application import Application, build_services
from analytics_app.config import S3Config, Settings
from analytics_app.config.env import Secret
from analytics_app.observability.metrics import CountingFreshnessCache
from analytics_core.errors import ConfigError, SchemaNotMigrated
from analytics_core.usecases.access import authenticate_api_key, create_api_key
from tests.contract.sql_backends import fresh_postgres_database

ORG = uuid.UUID("0f7e4c52-1b1a-4f57-9a4f-5b1f3ad2c001")


def _sqlite(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'analytics.db'}",
                    export_dir=tmp_path / "exports")


def _key_round_trip(application: Application) -> None:
    services = application.ports
    key, _ = create_api_key(org_id=ORG, roles=["org_admin"], name="t",
                            uow_factory=services.uow_factory, clock=services.clock,
                            ids=services.ids)
    actor = authenticate_api_key(key, uow_factory=services.uow_factory)
    assert actor.org_id == ORG


def test_memory_mode_builds_in_process_adapters(tmp_path: Path):
    """Memory mode: in-process cache, local export directory, readiness probes the directory."""
    application = Application(Settings(export_dir=tmp_path / "exports"))
    services = application.ports
    assert isinstance(services.cache, CountingFreshnessCache)
    assert isinstance(services.cache.inner, InMemoryFreshnessCache)
    assert isinstance(services.objects, LocalDirectoryObjectStore)
    assert [c.name for c in services.health_checks] == ["object_store"]
    assert list(services.degraded_checks) == []
    for check in services.health_checks:
        check.check()
    _key_round_trip(application)
    application.shutdown()


def test_services_are_built_once_per_application():
    """Every driver of one process shares one Ports."""
    application = Application(Settings())
    assert application.ports is application.ports


def test_build_services_defaults_to_memory():
    """build_services() with no settings gives working in-memory services (library use)."""
    services = build_services()
    with services.uow_factory() as uow:
        assert uow.api_keys.find("absent") is None


def test_settings_reach_the_services():
    """HTTP and export settings are derived from Settings."""
    services = build_services(Settings(
        jwt_key=Secret("x" * 40), jwt_issuer="https://issuer", gateway_headers=True,
        signed_url_ttl_seconds=60, export_max_attempts=7, export_retention_days=3,
    ))
    assert services.http.jwt.key == "x" * 40
    assert services.http.jwt.issuer == "https://issuer"
    assert services.http.gateway_headers is True
    assert services.http.signed_url_ttl.total_seconds() == 60
    assert services.exports.max_attempts == 7
    assert services.exports.retention.days == 3


def test_sqlite_mode_refuses_an_unmigrated_database(tmp_path: Path):
    """A SQLite file without the schema fails the preflight with SchemaNotMigrated."""
    application = Application(_sqlite(tmp_path))
    with pytest.raises(SchemaNotMigrated, match="analytics migrate"):
        application.preflight()
    application.shutdown()


def test_sqlite_mode_serves_after_migrate(tmp_path: Path):
    """After migrate the SQLite mode passes preflight and readiness and stores keys."""
    application = Application(_sqlite(tmp_path))
    assert application.migrate()
    application.prepare()
    services = application.ports
    assert [c.name for c in services.health_checks] == ["database", "object_store"]
    for check in services.health_checks:
        check.check()
    _key_round_trip(application)
    application.shutdown()


def test_sqlite_data_survives_a_new_application(tmp_path: Path):
    """A key stored by one Application is found by the next one on the same file."""
    first = Application(_sqlite(tmp_path))
    first.migrate()
    key, _ = create_api_key(org_id=ORG, roles=["org_admin"], name="t",
                            uow_factory=first.ports.uow_factory, clock=first.ports.clock,
                            ids=first.ports.ids)
    first.shutdown()
    second = Application(_sqlite(tmp_path))
    assert authenticate_api_key(key, uow_factory=second.ports.uow_factory).org_id == ORG
    second.shutdown()


def test_memory_mode_has_nothing_to_migrate():
    """`migrate` in memory mode is a configuration error, not a crash."""
    with pytest.raises(ConfigError):
        Application(Settings()).migrate()


def test_redis_url_selects_the_redis_cache_as_a_degraded_check():
    """With REDIS_URL the cache is Redis, probed as degraded-only; building connects nothing."""
    application = Application(Settings(redis_url="redis://127.0.0.1:1/0"))
    services = application.ports
    assert isinstance(services.cache, CountingFreshnessCache)
    assert isinstance(services.cache.inner, RedisFreshnessCache)
    assert [c.name for c in services.degraded_checks] == ["redis"]
    assert [c.name for c in services.health_checks] == ["object_store"]
    application.shutdown()


def test_s3_bucket_selects_the_s3_store():
    """With an S3 bucket exports go to S3; building the client connects nothing."""
    s3 = S3Config("exports", endpoint_url="http://127.0.0.1:1", region="us-east-1",
                  access_key_id="a", secret_access_key=Secret("b"), path_style=True)
    application = Application(Settings(s3=s3))
    assert isinstance(application.ports.objects, S3ObjectStore)
    application.shutdown()


@pytest.mark.postgres
def test_postgres_mode_serves_after_migrate():
    """Against a fresh PostgreSQL database: refuse before migrate, serve after."""
    with fresh_postgres_database(migrate=False) as url:
        settings = Settings(database_url=url.render_as_string(hide_password=False))
        application = Application(settings)
        with pytest.raises(SchemaNotMigrated):
            application.preflight()
        application.migrate()
        application.prepare()
        _key_round_trip(application)
        application.shutdown()
