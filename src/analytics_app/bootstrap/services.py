"""What the drivers (HTTP, CLI, workers) receive from the container: ports, settings, use cases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import attrs

from analytics_core.ports import (
    Clock,
    EventDecoder,
    FreshnessCache,
    HealthCheck,
    IdGenerator,
    ObjectStore,
    PipelineProgress,
    UnitOfWorkFactory,
)
from analytics_core.usecases.access import Authorizer
from analytics_core.usecases.export_runner import ExportSettings


@attrs.frozen
class JwtSettings:
    """How bearer tokens are verified. `key` is an HS256 secret or a PEM public key."""

    algorithms: tuple[str, ...] = ("HS256",)
    key: str | None = attrs.field(default=None, repr=False)  # a secret: never printed
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = 30
    org_claim: str = "org_id"
    roles_claim: str = "roles"


@attrs.frozen
class HttpSettings:
    """HTTP driver behaviour."""

    jwt: JwtSettings = attrs.field(factory=JwtSettings)
    gateway_headers: bool = False
    max_body_bytes: int = 10 * 1024 * 1024
    signed_url_ttl: timedelta = timedelta(minutes=15)
    raw_retention: timedelta = timedelta(days=400)


@attrs.frozen
class AppServices:
    """Everything a driver needs, built once per process by the container."""

    uow_factory: UnitOfWorkFactory
    clock: Clock
    ids: IdGenerator
    progress: PipelineProgress
    objects: ObjectStore
    cache: FreshnessCache | None
    authorizer: Authorizer
    http: HttpSettings = attrs.field(factory=HttpSettings)
    exports: ExportSettings = attrs.field(factory=ExportSettings)
    health_checks: Sequence[HealthCheck] = ()
    degraded_checks: Sequence[HealthCheck] = ()
    decoder: EventDecoder | None = None  # the stream edge's typed decoder
