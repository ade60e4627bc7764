"""`ANALYTICS_RABBITMQ_*` settings: stream ingestion is on when ANALYTICS_RABBITMQ_HOST is set."""

from __future__ import annotations

import re
from typing import Protocol

import attrs

_STREAM_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
MAX_PARTITIONS = 200


class EnvReader(Protocol):
    """The part of config's reader this module uses (it collects one message per bad value)."""

    def raw(self, name: str) -> str | None: ...

    def fail(self, name: str, reason: str) -> None: ...

    def text(self, name: str, default: str) -> str: ...

    def integer(self, name: str, default: int, low: int, high: int) -> int: ...

    def number(self, name: str, default: float, low: float, high: float) -> float: ...



@attrs.frozen
class StreamConfig:
    """Broker address, topology, retention and consumer behaviour (see docs/streams.md)."""

    host: str
    port: int = 5552
    vhost: str = "/"
    username: str = "guest"
    password: str = attrs.field(default="guest", repr=False)
    stream: str = "analytics.usage.v1"
    partitions: int = 4
    max_age_hours: int = 168
    max_length_bytes: int = 20 * 1024**3
    segment_bytes: int = 500 * 1024**2
    group: str = "analytics"
    batch_size: int = 10_000
    batch_max_wait_ms: int = 500
    credit: int = 4
    ownership_poll_seconds: float = 2.0
    ownership: str = "auto"
    backoff_max_seconds: float = 30.0
    shutdown_grace_seconds: float = 30.0
    progress_refresh_seconds: float = 1.0
    status_port: int = 8085


def read_stream_config(r: EnvReader) -> StreamConfig | None:
    """Read every ANALYTICS_RABBITMQ_* variable; None when RABBITMQ_HOST is unset."""
    host = r.raw("RABBITMQ_HOST")
    values = StreamConfig(
        host=host or "",
        port=r.integer("RABBITMQ_PORT", 5552, 1, 65535),
        vhost=r.text("RABBITMQ_VHOST", "/"),
        username=r.text("RABBITMQ_USERNAME", "guest"),
        password=r.text("RABBITMQ_PASSWORD", "guest"),
        stream=_stream_name(r),
        partitions=r.integer("RABBITMQ_PARTITIONS", 4, 1, MAX_PARTITIONS),
        max_age_hours=r.integer("RABBITMQ_MAX_AGE_HOURS", 168, 1, 24 * 3650),
        max_length_bytes=r.integer("RABBITMQ_MAX_LENGTH_BYTES", 20 * 1024**3, 1024**2, 2**62),
        segment_bytes=r.integer("RABBITMQ_SEGMENT_BYTES", 500 * 1024**2, 1024**2, 3 * 1024**3),
        group=r.text("RABBITMQ_CONSUMER_GROUP", "analytics"),
        batch_size=r.integer("RABBITMQ_BATCH_SIZE", 10_000, 1, 100_000),
        batch_max_wait_ms=r.integer("RABBITMQ_BATCH_MAX_WAIT_MS", 500, 1, 600_000),
        credit=r.integer("RABBITMQ_CREDIT", 4, 1, 1000),
        ownership_poll_seconds=r.number("RABBITMQ_OWNERSHIP_POLL_SECONDS", 2.0, 0.05, 3600),
        ownership=_ownership(r),
        backoff_max_seconds=r.number("RABBITMQ_BACKOFF_MAX_SECONDS", 30.0, 0.1, 3600),
        shutdown_grace_seconds=r.number("RABBITMQ_SHUTDOWN_GRACE_SECONDS", 30.0, 0, 3600),
        progress_refresh_seconds=r.number("RABBITMQ_PROGRESS_REFRESH_SECONDS", 1.0, 0.05, 600),
        status_port=r.integer("RABBITMQ_STATUS_PORT", 8085, 0, 65535),
    )
    if values.segment_bytes > values.max_length_bytes:
        r.fail("RABBITMQ_SEGMENT_BYTES", "must not exceed ANALYTICS_RABBITMQ_MAX_LENGTH_BYTES")
    if host is None:
        stray = [n for n in _OTHER_NAMES if r.raw(n) is not None]
        for name in stray:
            r.fail(name, "requires ANALYTICS_RABBITMQ_HOST (stream ingestion is off without it)")
        return None
    return values


_OTHER_NAMES = (
    "RABBITMQ_PORT", "RABBITMQ_VHOST", "RABBITMQ_USERNAME", "RABBITMQ_PASSWORD",
    "RABBITMQ_STREAM", "RABBITMQ_PARTITIONS", "RABBITMQ_CONSUMER_GROUP",
)


OWNERSHIP_MODES = ("auto", "advisory-locks", "single-active-consumer")


def _ownership(r: EnvReader) -> str:
    mode = r.text("RABBITMQ_OWNERSHIP", "auto")
    if mode not in OWNERSHIP_MODES:
        r.fail("RABBITMQ_OWNERSHIP", f"must be one of {', '.join(OWNERSHIP_MODES)}, got {mode!r}")
        return "auto"
    return mode


def _stream_name(r: EnvReader) -> str:
    name = r.text("RABBITMQ_STREAM", "analytics.usage.v1")
    if not _STREAM_NAME.match(name):
        r.fail("RABBITMQ_STREAM", f"must be 1-200 of A-Z a-z 0-9 _ . : -, got {name!r}")
        return "analytics.usage.v1"
    return name
