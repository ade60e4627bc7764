"""PipelineProgress contract: complete_through(now) is an aware instant no later than now."""

from __future__ import annotations

from datetime import timedelta

from analytics_adapters.memory import SynchronousPipeline
from analytics_core.ports import PipelineProgress
from tests.contract.factories import BASE


def test_complete_through_is_never_after_now(pipeline_progress: PipelineProgress) -> None:
    """The instant returned is at or before `now`."""
    for now in (BASE, BASE + timedelta(days=3, microseconds=1)):
        assert pipeline_progress.complete_through(now) <= now


def test_complete_through_is_timezone_aware(pipeline_progress: PipelineProgress) -> None:
    """The instant returned carries a UTC offset."""
    assert pipeline_progress.complete_through(BASE).utcoffset() is not None


def test_synchronous_pipeline_is_complete_through_now() -> None:
    """Synchronous ingestion commits before answering, so nothing is ever behind."""
    assert SynchronousPipeline().complete_through(BASE) == BASE
