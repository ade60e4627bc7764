"""What a platform team's service does with the library: record calls, report spend, export.

Imports only the public `analytics` module (a test checks it) and passes `mypy --strict`.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from analytics import Analytics, BatchResult, Cents, ExportStatus, ValidationFailed


class SpendService:
    """Records inference calls and answers "what did this org spend in the last day?"."""

    def __init__(self, analytics: Analytics) -> None:
        self._analytics = analytics

    def record_call(self, org_id: uuid.UUID, model_id: uuid.UUID, *, cost_cents: str,
                    at: datetime, tokens: tuple[int, int] = (100, 20)) -> BatchResult:
        """Store one call (exactly once per event id)."""
        event = {
            "eventId": str(uuid.uuid4()), "orgId": str(org_id), "modelId": str(model_id),
            "occurredAt": at.isoformat(), "status": "success", "latencyMs": 120,
            "inputTokens": tokens[0], "outputTokens": tokens[1], "costEstimateCents": cost_cents,
        }
        return self._analytics.ingest([event], source="consumer-service")

    def spend_last_day(self, org_id: uuid.UUID, now: datetime) -> Cents:
        """The org's reported spend over the last 24 hours, exact."""
        report = self._analytics.usage(org_id, now - timedelta(days=1),
                                       now + timedelta(minutes=1), group_by="none")
        return report.totals.cost

    def export_last_day(self, org_id: uuid.UUID, now: datetime) -> str:
        """The last 24 hours as one usage CSV row per model, made in this process."""
        job = self._analytics.create_export(org_id, now - timedelta(days=1),
                                            now + timedelta(minutes=1), granularity="monthly")
        self._analytics.run_exports()
        done = self._analytics.export(org_id, job.job_id)
        if done.status is not ExportStatus.SUCCEEDED:
            raise RuntimeError(f"export {done.job_id} ended {done.status}: {done.error}")
        return self._analytics.read_export(org_id, job.job_id).decode("utf-8")

    def rejects_garbage(self) -> list[str]:
        """The fields a malformed event is refused for."""
        try:
            self._analytics.validate({"eventId": "x"})
        except ValidationFailed as e:
            return sorted(err.field for err in e.errors)
        return []

    async def spend_last_day_async(self, org_id: uuid.UUID, now: datetime) -> Cents:
        """The same answer from asyncio code, without blocking the loop."""
        report = await self._analytics.aio.usage(org_id, now - timedelta(days=1),
                                                 now + timedelta(minutes=1), group_by="none")
        return report.totals.cost


def run(analytics: Analytics) -> tuple[str, str, str, list[str]]:
    """One pass: two calls, the last day's spend (sync and async), the CSV, and the fields
    bad input is refused for."""
    service = SpendService(analytics)
    org, model = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    service.record_call(org, model, cost_cents="1.2500", at=now - timedelta(hours=1))
    service.record_call(org, model, cost_cents="0.0001", at=now - timedelta(minutes=30))
    spend = service.spend_last_day(org, now).exact_str()
    spend_async = asyncio.run(service.spend_last_day_async(org, now)).exact_str()
    csv_text = service.export_last_day(org, now)
    return spend, spend_async, csv_text, service.rejects_garbage()
