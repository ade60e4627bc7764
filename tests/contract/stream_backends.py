"""The RabbitMQ-stream backend of the PipelineProgress contract suite."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from analytics_adapters.memory import InMemoryStorage, unit_of_work_factory
from analytics_adapters.rabbitmq import (
    BrokerAddress,
    StreamPipelineProgress,
    StreamRuntime,
    StreamTopology,
)
from analytics_adapters.rabbitmq.runtime import StreamOptions
from analytics_core.ports import PipelineProgress
from tests.conftest import RABBITMQ_HOST, port_open, require_service

STREAM_PORT = 5552


@pytest.fixture
def rabbitmq_pipeline_progress() -> Iterator[PipelineProgress]:
    """Progress over two fresh partition streams (deleted afterwards), offsets in memory."""
    require_service("RabbitMQ stream port", port_open(RABBITMQ_HOST, STREAM_PORT))
    topology = StreamTopology(f"analytics.contract.{uuid.uuid4().hex[:10]}", 2)
    runtime = StreamRuntime(
        StreamOptions(BrokerAddress(RABBITMQ_HOST, STREAM_PORT), topology, progress_refresh=0.2),
        unit_of_work_factory(InMemoryStorage()), None,
    )
    asyncio.run(runtime.declare())
    progress: StreamPipelineProgress = runtime.progress
    try:
        yield progress
    finally:
        runtime.close()
        asyncio.run(runtime.delete())
