"""`Application`: one process's composition, opened once and closed once.

    with Application(settings) as app:
        worker = app.export_worker()
        ...

Every process (the API workers, the export worker, the stream consumer, replay, each CLI
command, the tests) builds its parts through this class and the `Container` behind it; nothing
else constructs an adapter or binds a use case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

import attrs

from analytics_adapters.rabbitmq import StreamRuntime
from analytics_adapters.s3.object_store import S3ObjectStore
from analytics_adapters.sql import SqlStorage, migrate_to_head, zone_days
from analytics_adapters.sql.purge import PurgeReport, purge
from analytics_app.bootstrap.container import Container, ingestion_mode, storage_mode
from analytics_app.bootstrap.ports import Ports
from analytics_app.bootstrap.use_cases import UseCases
from analytics_app.config import Settings
from analytics_app.http.api import HttpApi
from analytics_app.ui.api import DashboardApi
from analytics_core.errors import ConfigError, FieldError, ValidationFailed
from analytics_core.ports import Clock
from analytics_core.timegrid import zone_error
from analytics_core.usecases.fleet import FleetRow, FleetWindow, fleet_summary

if TYPE_CHECKING:
    from analytics_app.stream.consumer import StreamConsumer
    from analytics_app.stream.replay import Replay
    from analytics_app.workers.alerts import AlertWorker
    from analytics_app.workers.export import ExportWorker, WorkerTiming


class Sender(Protocol):
    """A publisher on the partition streams (routes each event to its org's partition)."""

    async def send(self, payload: bytes) -> None: ...


@attrs.frozen
class StreamPublishing:
    """What `analytics publish` is given: declare the streams, open a confirmed publisher."""

    declare: Callable[[], Awaitable[object]]
    open: Callable[[int], AbstractAsyncContextManager[Sender]]


class Application:
    """The container of one process, with the operations that act on its storage as a whole."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.container = Container(settings=self.settings)

    def __enter__(self) -> Application:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()

    @property
    def ports(self) -> Ports:
        """The resolved ports (for the composition root and tests, never for a driver)."""
        ports: Ports = self.container.ports()
        return ports

    @property
    def use_cases(self) -> UseCases:
        """Every use case bound to this process's ports (built once, on first access)."""
        use_cases: UseCases = self.container.use_cases()
        return use_cases

    def http_api(self) -> HttpApi:
        """What the HTTP driver serves."""
        api: HttpApi = self.container.http_api()
        return api

    def dashboard_api(self) -> DashboardApi:
        """What the dashboard driver serves: the API's use cases, sessions and the fleet."""
        uc, ports = self.use_cases, self.ports

        def fleet(window: FleetWindow) -> list[FleetRow]:
            return fleet_summary(window, uow_factory=ports.uow_factory)

        return DashboardApi(
            http=self.http_api(), start_session=uc.start_session,
            resume_session=uc.resume_session, end_session=uc.end_session, fleet=fleet,
            now=uc.now, freshness=uc.pipeline_freshness,
            attribution_keys=tuple(ports.attribution.keys),
            secure_cookies=self.settings.ui_secure_cookies,
        )

    def export_worker(self, timing: WorkerTiming | None = None) -> ExportWorker:
        """A new export worker loop over this process's adapters."""
        overrides = {} if timing is None else {"timing": timing}
        worker: ExportWorker = self.container.export_worker(**overrides)
        return worker

    def alert_worker(self) -> AlertWorker:
        """A new alerts worker loop (budget evaluation) over this process's adapters."""
        worker: AlertWorker = self.container.alert_worker()
        return worker

    def stream_consumer(self) -> StreamConsumer:
        """The consumer service of this process (stream mode only)."""
        consumer: StreamConsumer = self.container.stream_consumer()
        return consumer

    def replayer(self) -> Replay:
        """`replay` bound to this process's streams and ingest use case (stream mode only)."""
        bound: Replay = self.container.replayer()
        return bound

    def stream_publishing(self) -> StreamPublishing:
        """Declare the partition streams and open publishers on them (stream mode only)."""
        runtime = self.stream
        if runtime is None:
            raise ConfigError("stream ingestion is off: set ANALYTICS_RABBITMQ_HOST")
        return StreamPublishing(
            declare=runtime.declare,
            open=lambda batch_size: runtime.publisher(batch_size=batch_size),
        )

    @property
    def stream(self) -> StreamRuntime | None:
        """The RabbitMQ stream adapters (None unless ANALYTICS_RABBITMQ_HOST is set)."""
        if ingestion_mode(self.settings) != "stream":
            return None
        runtime: StreamRuntime = self.container.stream()
        return runtime

    def _sql(self) -> SqlStorage | None:
        if storage_mode(self.settings) == "sql":
            storage: SqlStorage = self.container.sql_storage()
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
        upkeep: Callable[[], None] = self.container.upkeep()
        upkeep()

    def database_clock_skew(self) -> timedelta | None:
        """This host's clock minus the PostgreSQL server's (None for SQLite and memory, whose
        clock is this host's); StoreUnavailable when the database does not answer."""
        storage = self._sql()
        if storage is None or storage.dialect != "postgresql":
            return None
        clock: Clock = self.container.clock()
        return clock.now() - storage.server_now()

    def object_store_encryption(self) -> str:
        """How S3 encrypts exports at rest, from a probe upload (StoreUnavailable when the
        upload fails or is unencrypted); ValueError for a local directory (private files)."""
        objects = self.container.objects()
        if not isinstance(objects, S3ObjectStore):
            raise ValueError("exports are files in a local directory")
        return objects.encryption()

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
        clock: Clock = self.container.clock()
        return purge(
            storage.engine, clock.now(),
            raw_retention=timedelta(days=self.settings.raw_retention_days),
            rollup_months=self.settings.rollup_retention_months,
            export_retention=timedelta(days=self.settings.export_retention_days),
        )

    def _zoned(self) -> SqlStorage:
        storage = self._sql()
        if storage is None or storage.dialect != "postgresql":
            raise ConfigError(
                "zone day tiers are kept by PostgreSQL (and Citus) storage only; SQLite and "
                "the in-memory store read hours and 15-minute buckets for zone days, which is "
                "fast at their scale (docs/storage.md, 'Zone day tiers')")
        return storage

    def zone_tiers(self) -> list[tuple[str, datetime, int, datetime | None]]:
        """The zones with a day tier: (zone, added at, orgs with progress, least built
        midnight over those orgs)."""
        with self._zoned().engine.connect() as conn:
            return zone_days.zones(conn)

    def add_zone_tier(self, name: str) -> bool:
        """List a zone for a day tier (built by `build_zone_tiers`); False when listed."""
        problem = zone_error(name)
        if problem is not None or name.upper() == "UTC":
            raise ValidationFailed([FieldError(
                "zone", problem or "UTC days are the day tier itself; name another zone")],
                "invalid zone")
        clock: Clock = self.container.clock()
        return zone_days.add_zone(self._zoned().engine, name, clock.now())

    def remove_zone_tier(self, name: str) -> int:
        """Unlist a zone and delete its day rows (returns how many); ValidationFailed naming
        the listed zones when it is not one of them."""
        storage = self._zoned()
        with storage.engine.connect() as conn:
            listed = [z[0] for z in zone_days.zones(conn)]
        if name not in listed:
            raise ValidationFailed([FieldError(
                "zone", f"{name!r} has no day tier; listed: {', '.join(listed) or 'none'}")],
                "invalid zone")
        return zone_days.remove_zone(storage.engine, name)

    def build_zone_tiers(self, progress: Callable[[str, int, int], None] | None = None
                         ) -> zone_days.BuildReport:
        """Build the listed zones' local days that ended an hour ago or more."""
        clock: Clock = self.container.clock()
        return zone_days.build(self._zoned().engine, clock.now(), progress=progress)

    def shutdown(self) -> None:
        """Close every resource (pools, clients, the stream runtime) opened so far."""
        self.container.shutdown_resources()


def build_services(settings: Settings | None = None) -> Ports:
    """The ports for `settings` (default: the in-memory mode), for library use with the core's
    use-case functions (README, "Use it as a library")."""
    return Application(settings).ports
