"""RabbitMQ stream adapters on rstream: publisher, partition readers, ownership, progress."""

from __future__ import annotations

from analytics_adapters.rabbitmq.connection import BrokerAddress, BrokerUnavailable
from analytics_adapters.rabbitmq.ownership import PartitionOwnership, SingleProcessOwnership
from analytics_adapters.rabbitmq.progress import StreamPipelineProgress
from analytics_adapters.rabbitmq.publisher import PublishFailed, StreamPublisher
from analytics_adapters.rabbitmq.reader import PartitionReader
from analytics_adapters.rabbitmq.runtime import OwnershipMode, StreamOptions, StreamRuntime
from analytics_adapters.rabbitmq.sac import SingleActiveConsumerOwnership
from analytics_adapters.rabbitmq.subscription import StartAt, StreamChunk
from analytics_adapters.rabbitmq.topology import Retention, StreamTopology

__all__ = [
    "BrokerAddress",
    "BrokerUnavailable",
    "OwnershipMode",
    "PartitionOwnership",
    "PartitionReader",
    "PublishFailed",
    "Retention",
    "SingleActiveConsumerOwnership",
    "SingleProcessOwnership",
    "StartAt",
    "StreamChunk",
    "StreamOptions",
    "StreamPipelineProgress",
    "StreamPublisher",
    "StreamRuntime",
    "StreamTopology",
]
