"""In-memory adapters: complete, thread-safe implementations of every port (tests, embedded)."""

from __future__ import annotations

from analytics_adapters.memory.cache import InMemoryFreshnessCache
from analytics_adapters.memory.clock import FixedClock, ManualClock
from analytics_adapters.memory.ids import SequentialIds
from analytics_adapters.memory.pipeline import SynchronousPipeline
from analytics_adapters.memory.uow import InMemoryStorage, InMemoryUnitOfWork, unit_of_work_factory

__all__ = [
    "FixedClock",
    "InMemoryFreshnessCache",
    "InMemoryStorage",
    "InMemoryUnitOfWork",
    "ManualClock",
    "SequentialIds",
    "SynchronousPipeline",
    "unit_of_work_factory",
]
