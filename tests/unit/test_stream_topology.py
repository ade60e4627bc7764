"""Partition naming, org-hash routing, retention arguments and message decoding of streams."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rstream import AMQPMessage

from analytics_adapters.rabbitmq import Retention, StreamTopology
from analytics_adapters.rabbitmq.subscription import StartAt, message_body


def test_partition_streams_use_the_super_stream_naming() -> None:
    """N partitions are named base-0 .. base-(N-1)."""
    assert StreamTopology("analytics.usage.v1", 3).streams == (
        "analytics.usage.v1-0", "analytics.usage.v1-1", "analytics.usage.v1-2",
    )


@given(st.uuids(), st.integers(min_value=1, max_value=200))
def test_an_org_always_routes_to_the_same_partition_in_range(org: uuid.UUID, n: int) -> None:
    """Routing is a pure function of the org id, within 0..N-1, whatever its spelling."""
    topology = StreamTopology("s", n)
    index = topology.partition_of(org)
    assert 0 <= index < n
    assert topology.partition_of(str(org).upper()) == index
    assert topology.partition_of(str(org)) == index


def test_routing_matches_the_java_client_super_stream_hash() -> None:
    """murmur3_32 seed 104729 of the UTF-8 key, unsigned, modulo N (known values)."""
    import mmh3  # noqa: PLC0415

    key = "9b2f1c1e-8a4e-4f0e-9d3b-6f1a2b3c4d5e"
    expected = mmh3.hash(key.encode(), 104729, signed=False) % 7
    assert StreamTopology("s", 7).partition_of(key) == expected


def test_events_without_an_org_go_to_partition_zero() -> None:
    """No orgId: partition 0 (where the consumer dead-letters it)."""
    assert StreamTopology("s", 5).partition_of(None) == 0


def test_retention_becomes_the_stream_create_arguments() -> None:
    """max-age in seconds, max-length-bytes and segment size as the broker expects."""
    retention = Retention(timedelta(hours=2), 10 * 1024**2, 1024**2)
    assert retention.arguments() == {
        "max-age": "7200s", "max-length-bytes": "10485760",
        "stream-max-segment-size-bytes": "1048576",
    }


@pytest.mark.parametrize("partitions", [0, 201])
def test_a_partition_count_outside_1_to_200_is_refused(partitions: int) -> None:
    """The protocol allows at most 256 subscriptions per connection; 200 is the cap."""
    with pytest.raises(ValueError, match="partitions"):
        StreamTopology("s", partitions)


def test_an_amqp_encoded_message_is_unwrapped_to_its_body() -> None:
    """Producers using AMQP 1.0 messages are read like raw JSON producers."""
    body = b'{"eventId": "x"}'
    assert message_body(bytes(AMQPMessage(body=body))) == body
    assert message_body(body) == body


def test_a_start_offset_skips_earlier_messages_of_its_chunk() -> None:
    """Chunks arrive whole; messages below the requested offset are not delivered."""
    assert StartAt.offset(42).min_offset == 42
    assert StartAt.first().min_offset == 0
