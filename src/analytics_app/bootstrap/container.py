"""The one composition root: a dependency-injector container that builds every adapter and
binds every use case, for every process (API, export worker, stream consumer, replay, CLI).

Modes are declared here, each a `Selector` keyed by the settings:

* storage: `memory` (in-process) or `sql` (PostgreSQL, or the embedded SQLite file);
* object store: `local` (a private directory) or `s3`;
* freshness cache: `memory` or `redis`;
* ingestion: `http` (aggregated before the API answers) or `stream` (RabbitMQ partition
  streams: progress comes from the streams and the broker joins readiness as degraded-only;
  the stream consumer and replay are built only in this mode).

Engines, pools and clients are `Resource`s: created on first use (never at import) and closed
by `shutdown_resources()` (see `Application`). Tests override single providers (a manual
clock) with dependency-injector's `override`; no mode is patched in.
"""

from __future__ import annotations

import functools
import logging
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
    SynchronousPipeline,
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
from analytics_adapters.sql import AdvisoryLockOwnership, SqlStorage, zone_days
from analytics_adapters.sql.advisory_locks import libpq_url
from analytics_adapters.sql.audit_appender import PgAuditAppender
from analytics_adapters.sql.key_cache import NotifiedKeyCache
from analytics_adapters.system import RandomIds, SystemClock
from analytics_adapters.webhooks import HttpWebhookSender
from analytics_app.bootstrap.ports import Ports
from analytics_app.bootstrap.use_cases import UseCases, http_api
from analytics_app.config import Settings
from analytics_app.http.settings import HttpSettings, JwtSettings
from analytics_app.observability import metrics, tracing
from analytics_app.stream.consumer import StreamConsumer
from analytics_app.stream.replay import Replay, replay
from analytics_app.stream.settings import ConsumerSettings
from analytics_app.workers.alerts import AlertWorker
from analytics_app.workers.export import ExportWorker, WorkerTiming
from analytics_core.attribution import AttributionSettings
from analytics_core.ports import (
    ApiKeyCache,
    AuditAppender,
    Clock,
    FreshnessCache,
    HealthCheck,
    ObjectStore,
    UnitOfWorkFactory,
)
from analytics_core.usecases.budgets import Closed, Evaluation
from analytics_core.usecases.export_runner import (
    ExportRunner,
    ExportSettings,
    detect_restatements,
    schedule_monthly_exports,
)
from analytics_core.usecases.webhooks import DeliveryRound, WebhookPolicy


@attrs.define  # HealthCheck.name is a plain (settable) attribute
class Probe:
    """A named readiness probe around any `check()` callable."""

    name: str
    check: Callable[[], None]


# -- mode selectors (each returns the key of the provider to use) ------------------------------

def _attribution(settings: Settings) -> AttributionSettings:
    return AttributionSettings(settings.attribution_keys, settings.attribution_value_cap)


def _restate(use_cases: UseCases) -> Callable[[int], int]:
    """At most `n` restatement batches per call (the worker's rounds stay short)."""
    return lambda n: use_cases.run_restatements(max_batches=n)


def _evaluate(use_cases: UseCases) -> Callable[[Closed], Evaluation]:
    """One budget evaluation pass per call (the alerts worker's round)."""
    return use_cases.evaluate_budgets


def _deliver(use_cases: UseCases) -> Callable[[], DeliveryRound]:
    """One claim of due webhook deliveries per call (the alerts worker's other half)."""
    return use_cases.deliver_webhooks


def storage_mode(settings: Settings) -> str:
    """`memory` or `sql` (PostgreSQL and SQLite share the SQL adapters)."""
    return "memory" if settings.storage == "memory" else "sql"


def object_store_mode(settings: Settings) -> str:
    """`s3` when a bucket is configured, else `local` (the embedded default)."""
    return "local" if settings.s3 is None else "s3"


def cache_mode(settings: Settings) -> str:
    """`redis` when ANALYTICS_REDIS_URL is set, else `memory`."""
    return "memory" if settings.redis_url is None else "redis"


def ingestion_mode(settings: Settings) -> str:
    """`stream` when ANALYTICS_RABBITMQ_HOST is set, else `http`."""
    return "http" if settings.rabbitmq is None else "stream"


# -- resources ---------------------------------------------------------------------------------

def _s3_store(settings: Settings) -> Iterator[ObjectStore]:
    s3 = settings.s3
    assert s3 is not None  # selected only when configured
    yield S3ObjectStore.connect(
        s3.bucket, endpoint_url=s3.endpoint_url, region=s3.region,
        access_key_id=s3.access_key_id,
        secret_access_key=s3.secret_access_key.reveal() if s3.secret_access_key else None,
        path_style=s3.path_style, sse=s3.sse, kms_key_id=s3.kms_key_id,
    )


def _redis_cache(settings: Settings) -> Iterator[FreshnessCache]:
    assert settings.redis_url is not None  # selected only when configured
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


def _key_cache(settings: Settings) -> Iterator[ApiKeyCache | None]:
    """API keys kept between requests: PostgreSQL only (it tells of revocations); None else."""
    if settings.storage != "postgres":
        yield None
        return
    cache = NotifiedKeyCache(libpq_url(settings.database_url))
    try:
        yield cache
    finally:
        cache.close()


def _audit_appender(settings: Settings, storage: SqlStorage) -> Iterator[AuditAppender | None]:
    """Audit entries in one autocommitted statement on a held connection: PostgreSQL only;
    None else (the AuditWriter then writes through a unit of work)."""
    if settings.storage != "postgres":
        yield None
        return
    appender = PgAuditAppender(storage.engine)
    try:
        yield appender
    finally:
        appender.close()


def _stream_runtime(settings: Settings, uow_factory: UnitOfWorkFactory) -> Iterator[StreamRuntime]:
    """The RabbitMQ stream adapters of this process (selected only in stream mode)."""
    config = settings.rabbitmq
    assert config is not None
    retention = Retention(timedelta(hours=config.max_age_hours), config.max_length_bytes,
                          config.segment_bytes)
    options = StreamOptions(
        BrokerAddress(config.host, config.port, config.vhost, config.username, config.password),
        StreamTopology(config.stream, config.partitions, retention), group=config.group,
        credit=config.credit, progress_refresh=config.progress_refresh_seconds,
        ownership=OwnershipMode(config.ownership),
    )
    # Advisory locks need PostgreSQL; with SQLite or memory one consumer process owns them all.
    advisory_locks = (functools.partial(AdvisoryLockOwnership, settings.database_url, config.group)
                      if settings.storage == "postgres" else None)
    runtime = StreamRuntime(options, uow_factory, advisory_locks)
    try:
        yield runtime
    finally:
        runtime.close()


# -- readiness and upkeep ----------------------------------------------------------------------

def _object_store_probe(objects: ObjectStore) -> list[HealthCheck]:
    if isinstance(objects, LocalDirectoryObjectStore | S3ObjectStore):
        return [Probe("object_store", objects.check)]
    return []


def _sql_probes(storage: SqlStorage, objects: ObjectStore) -> list[HealthCheck]:
    return [Probe("database", storage.check), *_object_store_probe(objects)]


def _cache_probe(cache: FreshnessCache) -> list[HealthCheck]:
    # A Redis outage only degrades freshness reads (the store answers them), so it is reported
    # without failing readiness.
    if isinstance(cache, RedisFreshnessCache):
        return [Probe("redis", cache.check)]
    return []


def _stream_probes(cache: FreshnessCache, runtime: StreamRuntime) -> list[HealthCheck]:
    return [*_cache_probe(cache), runtime.health_check]


def _nothing_to_do() -> None:
    """Upkeep of storage that needs none."""


def _worker_upkeep(storage_upkeep: Callable[[], None], zone_upkeep: Callable[[], None],
                   use_cases: UseCases) -> Callable[[], None]:
    """The export worker's housekeeping upkeep: the storage's, then ended dashboard sessions
    are deleted, then the zone day tiers are extended."""
    def upkeep() -> None:
        storage_upkeep()
        use_cases.purge_sessions()
        zone_upkeep()

    return upkeep


# Seconds of zone day building per housekeeping round (a new zone's history is backfilled
# over several rounds; `analytics rollups build` backfills it at once).
ZONE_BUILD_SECONDS = 10.0
_worker_log = logging.getLogger("analytics.worker")


def _zone_upkeep(storage: SqlStorage, clock: Clock) -> Callable[[], None]:
    """Extend the listed zones' day tiers (PostgreSQL and Citus; nothing elsewhere). A failure
    is logged and left to the next round: reads are exact without the tier, and the rest of
    the housekeeping (expiry, monthly exports) must not wait on it."""
    if storage.dialect != "postgresql":
        return _nothing_to_do

    def upkeep() -> None:
        try:
            report = zone_days.build(storage.engine, clock.now(),
                                     budget_seconds=ZONE_BUILD_SECONDS)
        except Exception:
            _worker_log.exception("building zone day tiers failed; the next housekeeping "
                                  "round tries again")
            return
        if report.days:
            _worker_log.info(
                "built %d org-days of zone day tiers (%s)", report.days,
                "up to date" if report.finished else "more next round",
                extra={"zones": report.zones, "transactions": report.transactions})

    return upkeep


def _sql_upkeep(storage: SqlStorage, clock: Clock) -> Callable[[], None]:
    def upkeep() -> None:
        storage.ensure_partitions(clock.now().date())

    return upkeep


# -- settings the use cases and drivers are bound with ------------------------------------------

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
        focus_provider=settings.focus_provider_name, focus_service=settings.focus_service_name,
        tag_keys=settings.attribution_keys, monthly_tz=settings.monthly_export_tz,
    )


def _consumer_settings(settings: Settings) -> ConsumerSettings:
    config = settings.rabbitmq
    assert config is not None  # resolved only in stream mode
    return ConsumerSettings(
        group=config.group, batch_size=config.batch_size,
        batch_max_wait=config.batch_max_wait_ms / 1000,
        ownership_poll=config.ownership_poll_seconds, backoff_max=config.backoff_max_seconds,
        shutdown_grace=config.shutdown_grace_seconds,
    )


def _stream_consumer(runtime: StreamRuntime, use_cases: UseCases,
                     settings: ConsumerSettings) -> StreamConsumer:
    return StreamConsumer(
        streams=runtime.topology.streams, ingest=use_cases.ingest_stream,
        stored_offset=use_cases.stored_offset, readers=runtime.reader,
        ownership=runtime.ownership(), settings=settings, declare=runtime.declare,
        tails=runtime.tails, complete_through=use_cases.complete_through, now=use_cases.now,
    )


def _replayer(runtime: StreamRuntime, use_cases: UseCases) -> Replay:
    return functools.partial(replay, streams=runtime.topology.streams, tails=runtime.tails,
                             open_reader=runtime.replay_reader, ingest=use_cases.ingest_stream)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Container(containers.DeclarativeContainer):
    """Every adapter and bound use case of one process, selected by `settings`."""

    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(RandomIds)
    decoder = providers.Singleton(MsgspecEventDecoder)

    # storage
    memory_storage = providers.Singleton(InMemoryStorage)
    sql_storage = providers.Resource(_sql_storage, settings)
    uow_factory = providers.Selector(
        providers.Callable(storage_mode, settings),
        memory=providers.Singleton(unit_of_work_factory, memory_storage),
        sql=sql_storage.provided.unit_of_work,
    )

    audit_appender = providers.Selector(
        providers.Callable(storage_mode, settings),
        memory=providers.Object(None),
        sql=providers.Resource(_audit_appender, settings, sql_storage),
    )

    key_cache = providers.Resource(_key_cache, settings)
    keys = providers.Selector(
        providers.Callable(storage_mode, settings),
        memory=providers.Object(None),
        sql=key_cache,
    )

    # object store
    s3_objects = providers.Resource(_s3_store, settings)
    objects = providers.Selector(
        providers.Callable(object_store_mode, settings),
        local=providers.Singleton(LocalDirectoryObjectStore, settings.provided.export_dir),
        s3=s3_objects,
    )

    # freshness cache
    redis_cache = providers.Resource(_redis_cache, settings)
    cache = providers.Selector(
        providers.Callable(cache_mode, settings),
        memory=providers.Singleton(InMemoryFreshnessCache, clock),
        redis=redis_cache,
    )

    # ingestion: HTTP aggregates before it answers, so its pipeline is never behind
    stream = providers.Resource(_stream_runtime, settings, uow_factory)
    progress = providers.Selector(
        providers.Callable(ingestion_mode, settings),
        http=providers.Singleton(SynchronousPipeline),
        stream=stream.provided.progress,
    )

    health_checks = providers.Selector(
        providers.Callable(storage_mode, settings),
        memory=providers.Callable(_object_store_probe, objects),
        sql=providers.Callable(_sql_probes, sql_storage, objects),
    )
    degraded_checks = providers.Selector(
        providers.Callable(ingestion_mode, settings),
        http=providers.Callable(_cache_probe, cache),
        stream=providers.Callable(_stream_probes, cache, stream),
    )
    upkeep = providers.Selector(
        providers.Callable(storage_mode, settings),
        memory=providers.Object(_nothing_to_do),
        sql=providers.Callable(_sql_upkeep, sql_storage, clock),
    )
    zone_upkeep = providers.Selector(
        providers.Callable(storage_mode, settings),
        memory=providers.Object(_nothing_to_do),
        sql=providers.Callable(_zone_upkeep, sql_storage, clock),
    )

    http_settings = providers.Singleton(_http_settings, settings)
    export_settings = providers.Singleton(_export_settings, settings)

    ports = providers.Singleton(
        Ports,
        uow_factory=uow_factory, clock=clock, ids=ids, progress=progress, objects=objects,
        cache=providers.Callable(metrics.CountingFreshnessCache, cache), keys=keys,
        audit=audit_appender,
        http=http_settings, exports=export_settings, health_checks=health_checks,
        degraded_checks=degraded_checks, decoder=decoder,
        attribution=providers.Callable(_attribution, settings),
        webhooks=providers.Singleton(
            HttpWebhookSender, allow_private=settings.provided.webhook_allow_private,
            timeout_seconds=settings.provided.webhook_timeout_seconds),
        webhook_policy=providers.Singleton(
            WebhookPolicy, allow_private=settings.provided.webhook_allow_private),
    )
    use_cases = providers.Singleton(UseCases, ports)
    http_api = providers.Singleton(http_api, use_cases, settings.provided.data_location)

    consumer_settings = providers.Singleton(_consumer_settings, settings)
    stream_consumer = providers.Factory(_stream_consumer, stream, use_cases, consumer_settings)
    replayer = providers.Factory(_replayer, stream, use_cases)

    export_runner = providers.Factory(
        ExportRunner, worker=providers.Callable(_worker_name),
        uow_factory=uow_factory, objects=objects, clock=clock, progress=progress,
        settings=export_settings,
    )
    detect_restated = providers.Factory(
        functools.partial, detect_restatements, uow_factory=uow_factory, clock=clock, ids=ids,
    )
    schedule_monthly = providers.Factory(
        functools.partial, schedule_monthly_exports, uow_factory=uow_factory,
        clock=clock, ids=ids, tz=settings.provided.monthly_export_tz,
    )
    alert_worker = providers.Factory(
        AlertWorker, providers.Callable(_evaluate, use_cases),
        deliver=providers.Callable(_deliver, use_cases),
        interval_seconds=settings.provided.alerts_interval_seconds,
        poll_seconds=settings.provided.worker_poll_seconds,
    )
    export_worker = providers.Factory(
        ExportWorker, export_runner, schedule_monthly=schedule_monthly,
        upkeep=providers.Callable(_worker_upkeep, upkeep, zone_upkeep, use_cases),
        detect_restated=detect_restated,
        restate=providers.Callable(_restate, use_cases),
        timing=providers.Factory(WorkerTiming, poll_seconds=settings.provided.worker_poll_seconds),
    )
