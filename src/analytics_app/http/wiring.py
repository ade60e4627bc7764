"""The use cases bound to the services, as the plain callables resources receive."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import attrs

from analytics_app.bootstrap.services import AppServices
from analytics_core.access import Actor
from analytics_core.events import UsageEvent
from analytics_core.exports import ExportJob, ExportRequest, ExportStatus
from analytics_core.freshness import FreshnessReport
from analytics_core.usecases import access, exports, ingest, queries

Cursor = tuple[datetime, uuid.UUID]


@attrs.frozen
class BoundUseCases:
    """Each method is one use case call with its ports filled in from AppServices."""

    services: AppServices

    def authenticate_api_key(self, presented: str) -> Actor:
        """The actor behind an X-API-Key value."""
        return access.authenticate_api_key(presented, uow_factory=self.services.uow_factory)

    def usage(self, query: queries.AnalyticsQuery) -> queries.AnalyticsReport:
        """Usage report (no latency sketches read)."""
        s = self.services
        return queries.query_analytics(
            query, uow_factory=s.uow_factory, progress=s.progress, clock=s.clock, latency=False
        )

    def reliability(self, query: queries.AnalyticsQuery) -> queries.AnalyticsReport:
        """Reliability report (latency sketches and error codes merged)."""
        s = self.services
        return queries.query_analytics(
            query, uow_factory=s.uow_factory, progress=s.progress, clock=s.clock
        )

    def freshness(self, org_id: uuid.UUID, model_ids: Sequence[uuid.UUID]) -> FreshnessReport:
        """Per-model freshness of one org."""
        s = self.services
        return queries.get_freshness(
            org_id, uow_factory=s.uow_factory, progress=s.progress, clock=s.clock,
            cache=s.cache, model_ids=model_ids,
        )

    def create_export(
        self, request: ExportRequest, initiated_by: str, idempotency_key: str | None
    ) -> tuple[ExportJob, bool]:
        """Create (or replay) an export job."""
        s = self.services
        return exports.create_export(
            request, initiated_by=initiated_by, idempotency_key=idempotency_key,
            uow_factory=s.uow_factory, clock=s.clock, ids=s.ids,
        )

    def list_exports(
        self, org_id: uuid.UUID, status: ExportStatus | None, limit: int, before: Cursor | None
    ) -> exports.JobPage:
        """A page of jobs, newest first."""
        return exports.list_exports(
            org_id, uow_factory=self.services.uow_factory, status=status, limit=limit,
            before=before,
        )

    def get_export(self, org_id: uuid.UUID, job_id: uuid.UUID) -> ExportJob:
        """One job."""
        return exports.get_export(org_id, job_id, uow_factory=self.services.uow_factory)

    def download(self, org_id: uuid.UUID, job_id: uuid.UUID) -> exports.Download:
        """A fresh signed URL or a byte stream."""
        s = self.services
        return exports.resolve_download(
            org_id, job_id, uow_factory=s.uow_factory, objects=s.objects,
            ttl=s.http.signed_url_ttl,
        )

    def ingest(
        self, messages: Sequence[ingest.RawMessage], scope: ingest.IngestScope
    ) -> ingest.BatchResult:
        """Ingest one HTTP batch exactly once, storing only in orgs the scope authorizes."""
        s = self.services
        return ingest.ingest_batch(
            messages, source="http", uow_factory=s.uow_factory, clock=s.clock, ids=s.ids,
            raw_retention=s.http.raw_retention, cache=s.cache, scope=scope,
        )

    def validate(self, payload: object) -> UsageEvent:
        """Validate one event without storing it."""
        s = self.services
        return ingest.validate_event(payload, clock=s.clock, raw_retention=s.http.raw_retention)
