"""The one composition root: dependency-injector containers that pick adapters from Settings.

Shaped like dependency-injector's `use-cases` miniapp: one adapters container per storage mode
(`MemoryAdapters`, `SqlAdapters`) exposing the same providers, and a `UseCases` container that
depends on whichever is given. Engines, pools and clients are resources: created on first use
(never at import), released by `Application.shutdown()`.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import attrs
from dependency_injector import containers, providers

from analytics_adapters.localfs.object_store import LocalDirectoryObjectStore
from analytics_adapters.memory import (
    InMemoryFreshnessCache,
    InMemoryStorage,
    RandomIds,
    SynchronousPipeline,
    SystemClock,
    unit_of_work_factory,
)
from analytics_adapters.msgspec_codec import MsgspecEventDecoder
from analytics_adapters.rabbitmq import (
    BrokerAddress,
    OwnershipMode,
    Retention,
    StreamOptions,
    StreamRuntime,
    StreamTopology,
)
from analytics_adapters.redis.freshness_cache import RedisFreshnessCache
from analytics_adapters.s3.object_store import S3ObjectStore
from analytics_adapters.sql import SqlStorage, migrate_to_head
from analytics_adapters.sql.purge import PurgeReport, purge
from analytics_app.bootstrap.services import AppServices, HttpSettings, JwtSettings
from analytics_app.config import Settings
from analytics_app.observability import metrics, tracing
from analytics_app.workers.export import ExportWorker, WorkerTiming
from analytics_core.errors import ConfigError
from analytics_core.ports import (
    Clock,
    FreshnessCache,
    HealthCheck,
    ObjectStore,
    UnitOfWork,
    UnitOfWorkFactory,
)
from analytics_core.usecases.access import Authorizer
from analytics_core.usecases.export_runner import (
    ExportRunner,
    ExportSettings,
    schedule_monthly_exports,
)


@attrs.define  # HealthCheck.name is a plain (settable) attribute
class Probe:
    """A named readiness probe around any `check()` callable."""

    name: str
    check: Callable[[], None]


def _object_store(settings: Settings) -> Iterator[ObjectStore]:
    """S3 when a bucket is configured, else a local directory (the embedded default)."""
    if settings.s3 is None:
        yield LocalDirectoryObjectStore(settings.export_dir)
        return
    s3 = settings.s3
    yield S3ObjectStore.connect(
        s3.bucket, endpoint_url=s3.endpoint_url, region=s3.region,
        access_key_id=s3.access_key_id,
        secret_access_key=s3.secret_access_key.reveal() if s3.secret_access_key else None,
        path_style=s3.path_style, sse=s3.sse, kms_key_id=s3.kms_key_id,
    )


def _freshness_cache(settings: Settings, clock: Clock) -> Iterator[FreshnessCache]:
    """Redis when configured (closed on shutdown), else an in-process cache."""
    if settings.redis_url is None:
        yield InMemoryFreshnessCache(clock)
        return
    cache = RedisFreshnessCache.from_url(settings.redis_url)
    try:
        yield cache
    finally:
        cache.close()


def _sql_storage(settings: Settings) -> Iterator[SqlStorage]:
    """The SQL engine and pool of this process (nothing connects before first use)."""
    storage = SqlStorage.from_url(settings.database_url)
    metrics.track_pool(storage.engine)
    if settings.otel_exporter != "none":
        tracing.instrument_engine(storage.engine)
    try:
        yield storage
    finally:
        storage.close()


def _object_store_probe(objects: ObjectStore) -> list[HealthCheck]:
    if isinstance(objects, LocalDirectoryObjectStore | S3ObjectStore):
        return [Probe("object_store", objects.check)]
    return []


def _sql_probes(storage: SqlStorage, objects: ObjectStore) -> list[HealthCheck]:
    return [Probe("database", storage.check), *_object_store_probe(objects)]


def _nothing_to_do() -> None:
    """Upkeep of storage that needs none."""


def _sql_upkeep(storage: SqlStorage, clock: Clock) -> Callable[[], None]:
    def upkeep() -> None:
        storage.ensure_partitions(clock.now().date())

    return upkeep


def _cache_probe(cache: FreshnessCache) -> list[HealthCheck]:
    # A Redis outage only degrades freshness reads (the store answers them), so it is reported
    # without failing readiness.
    if isinstance(cache, RedisFreshnessCache):
        return [Probe("redis", cache.check)]
    return []


class Adapters(containers.DeclarativeContainer):
    """Adapters shared by every storage mode."""

    settings = providers.Dependency(instance_of=Settings)
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(RandomIds)
    # HTTP ingestion aggregates before it answers, so the pipeline is never behind.
    progress = providers.Singleton(SynchronousPipeline)
    objects = providers.Resource(_object_store, settings)
    cache = providers.Resource(_freshness_cache, settings, clock)
    degraded_checks = providers.Callable(_cache_probe, cache)
    decoder = providers.Singleton(MsgspecEventDecoder)


class MemoryAdapters(Adapters):
    """Everything in process memory: tests, demos, library use."""

    storage = providers.Singleton(InMemoryStorage)
    uow_factory = providers.Singleton(unit_of_work_factory, storage)
    health_checks = providers.Callable(_object_store_probe, Adapters.objects)
    upkeep = providers.Object(_nothing_to_do)


class SqlAdapters(Adapters):
    """PostgreSQL (production) or a SQLite file (the embedded default)."""

    storage = providers.Resource(_sql_storage, Adapters.settings)
    uow_factory = storage.provided.unit_of_work
    health_checks = providers.Callable(_sql_probes, storage, Adapters.objects)
    upkeep = providers.Callable(_sql_upkeep, storage, Adapters.clock)


def _http_settings(settings: Settings) -> HttpSettings:
    jwt = JwtSettings(
        algorithms=settings.jwt_algorithms,
        key=settings.jwt_key.reveal() if settings.jwt_key else None,
        issuer=settings.jwt_issuer, audience=settings.jwt_audience,
        leeway_seconds=settings.jwt_leeway_seconds, org_claim=settings.jwt_org_claim,
        roles_claim=settings.jwt_roles_claim,
    )
    return HttpSettings(
        jwt=jwt, gateway_headers=settings.gateway_headers, max_body_bytes=settings.max_body_bytes,
        signed_url_ttl=timedelta(seconds=settings.signed_url_ttl_seconds),
        raw_retention=timedelta(days=settings.raw_retention_days),
    )


def _export_settings(settings: Settings) -> ExportSettings:
    return ExportSettings(
        max_attempts=settings.export_max_attempts,
        lease=timedelta(seconds=settings.export_lease_seconds),
        backoff=timedelta(seconds=settings.export_backoff_seconds),
        retention=timedelta(days=settings.export_retention_days),
    )


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class UseCases(containers.DeclarativeContainer):
    """Use cases and the AppServices bundle, over whichever adapters container is given."""

    settings = providers.Dependency(instance_of=Settings)
    adapters = providers.DependenciesContainer()

    authorizer = providers.Singleton(
        Authorizer, uow_factory=adapters.uow_factory, clock=adapters.clock, ids=adapters.ids,
    )
    export_settings = providers.Singleton(_export_settings, settings)
    services = providers.Singleton(
        AppServices,
        uow_factory=adapters.uow_factory, clock=adapters.clock, ids=adapters.ids,
        progress=adapters.progress, objects=adapters.objects,
        cache=providers.Callable(metrics.CountingFreshnessCache, adapters.cache),
        authorizer=authorizer, http=providers.Singleton(_http_settings, settings),
        exports=export_settings, health_checks=adapters.health_checks,
        degraded_checks=adapters.degraded_checks, decoder=adapters.decoder,
    )
    export_runner = providers.Factory(
        ExportRunner, worker=providers.Callable(_worker_name),
        uow_factory=adapters.uow_factory, objects=adapters.objects, clock=adapters.clock,
        progress=adapters.progress, settings=export_settings,
    )
    schedule_monthly = providers.Factory(
        functools.partial, schedule_monthly_exports, uow_factory=adapters.uow_factory,
        clock=adapters.clock, ids=adapters.ids, tz=settings.provided.monthly_export_tz,
    )
    export_worker = providers.Factory(
        ExportWorker, export_runner, schedule_monthly=schedule_monthly, upkeep=adapters.upkeep,
        timing=providers.Factory(WorkerTiming, poll_seconds=settings.provided.worker_poll_seconds),
    )


def adapters_for(settings: Settings) -> Adapters:
    """The adapters container of the storage mode the settings select."""
    if settings.storage == "memory":
        return MemoryAdapters(settings=settings)
    return SqlAdapters(settings=settings)


def _stream_runtime(settings: Settings, adapters: Adapters) -> StreamRuntime | None:
    """Stream ingestion (ANALYTICS_RABBITMQ_HOST set): freshness comes from the partition
    streams, and the broker joins readiness as degraded-only (queries work without it)."""
    config = settings.rabbitmq
    if config is None:
        return None
    retention = Retention(timedelta(hours=config.max_age_hours), config.max_length_bytes,
                          config.segment_bytes)
    options = StreamOptions(
        BrokerAddress(config.host, config.port, config.vhost, config.username, config.password),
        StreamTopology(config.stream, config.partitions, retention), group=config.group,
        credit=config.credit, progress_refresh=config.progress_refresh_seconds,
        ownership=OwnershipMode(config.ownership),
    )

    def unit_of_work() -> UnitOfWork:  # resolved on use: the storage resource starts lazily
        factory: UnitOfWorkFactory = adapters.uow_factory()
        return factory()

    runtime = StreamRuntime(options, unit_of_work,
                            settings.database_url if settings.storage == "postgres" else None)
    adapters.progress.override(providers.Object(runtime.progress))
    adapters.degraded_checks.override(providers.Callable(
        lambda checks: [*checks, runtime.health_check], providers.Callable(_cache_probe,
                                                                             adapters.cache)))
    return runtime


class Application:
    """One process's composition: adapters + use cases built from Settings, closed together."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.adapters = adapters_for(self.settings)
        self.use_cases = UseCases(settings=self.settings, adapters=self.adapters)
        self.stream = _stream_runtime(self.settings, self.adapters)

    @property
    def services(self) -> AppServices:
        """The bundle every driver receives (built once, on first access)."""
        services: AppServices = self.use_cases.services()
        return services

    def export_worker(self, timing: WorkerTiming | None = None) -> ExportWorker:
        """A new export worker loop over this process's adapters."""
        overrides = {} if timing is None else {"timing": timing}
        worker: ExportWorker = self.use_cases.export_worker(**overrides)
        return worker

    def _sql(self) -> SqlStorage | None:
        if self.settings.storage != "memory":
            storage: SqlStorage = self.adapters.storage()
            return storage
        return None

    def preflight(self) -> None:
        """Raise StoreUnavailable or SchemaNotMigrated unless storage can serve now."""
        storage = self._sql()
        if storage is not None:
            storage.check()

    def prepare(self) -> None:
        """preflight(), then the storage upkeep a service start needs (partitions ahead)."""
        self.preflight()
        upkeep: Callable[[], None] = self.adapters.upkeep()
        upkeep()

    def migrate(self) -> str:
        """Apply pending migrations; returns the revision the database is now at."""
        storage = self._sql()
        if storage is None:
            raise ConfigError("ANALYTICS_DATABASE_URL=memory has no schema to migrate")
        return migrate_to_head(storage.engine)

    def purge(self) -> PurgeReport:
        """Apply the retention settings now (raw events, rollups, expired export jobs)."""
        storage = self._sql()
        if storage is None:
            raise ConfigError("ANALYTICS_DATABASE_URL=memory keeps nothing to purge")
        clock: Clock = self.adapters.clock()
        return purge(
            storage.engine, clock.now(),
            raw_retention=timedelta(days=self.settings.raw_retention_days),
            rollup_months=self.settings.rollup_retention_months,
            export_retention=timedelta(days=self.settings.export_retention_days),
        )

    def shutdown(self) -> None:
        """Close every resource (pools, clients) opened so far."""
        if self.stream is not None:
            self.stream.close()
        self.adapters.shutdown_resources()


def build_services(settings: Settings | None = None) -> AppServices:
    """AppServices for `settings` (default: the in-memory mode), e.g. for library use."""
    return Application(settings).services
