"""The resolved ports of one process, and the settings its use cases are bound with.

Only the composition root and tests see a `Ports`: the container resolves one per process,
and `UseCases` binds every use case to it. Drivers never receive it (they get `HttpApi`, the
partition worker's callables, a command's use cases).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from analytics_adapters.webhooks import HttpWebhookSender
from analytics_app.http.settings import HttpSettings
from analytics_core.attribution import AttributionSettings
from analytics_core.ports import (
    ApiKeyCache,
    AuditAppender,
    Clock,
    EventDecoder,
    FreshnessCache,
    HealthCheck,
    IdGenerator,
    ObjectStore,
    PipelineProgress,
    UnitOfWorkFactory,
    WebhookSender,
)
from analytics_core.usecases.export_runner import ExportSettings
from analytics_core.usecases.webhooks import WebhookPolicy


@attrs.frozen
class Ports:
    """Adapters behind every port a use case takes, plus the settings use cases are bound with."""

    uow_factory: UnitOfWorkFactory
    clock: Clock
    ids: IdGenerator
    progress: PipelineProgress
    objects: ObjectStore
    cache: FreshnessCache | None
    keys: ApiKeyCache | None = None  # API key records kept between requests (PostgreSQL)
    audit: AuditAppender | None = None  # decisions' audit in one statement (PostgreSQL)
    http: HttpSettings = attrs.field(factory=HttpSettings)
    exports: ExportSettings = attrs.field(factory=ExportSettings)
    health_checks: Sequence[HealthCheck] = ()
    degraded_checks: Sequence[HealthCheck] = ()
    decoder: EventDecoder | None = None  # the stream edge's typed decoder
    attribution: AttributionSettings = attrs.field(factory=AttributionSettings)
    webhooks: WebhookSender = attrs.field(factory=HttpWebhookSender)
    webhook_policy: WebhookPolicy = attrs.field(factory=WebhookPolicy)
