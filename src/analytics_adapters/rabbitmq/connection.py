"""Stream-protocol connections (rstream's low-level Client) with errors translated to ours."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import attrs
from rstream import exceptions as rs_errors
from rstream.client import Client
from rstream.connection import ConnectionClosed
from rstream.utils import OnClosedErrorInfo

from analytics_core.errors import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a dead, unreachable or not-yet-ready broker surfaces as. Other server responses
# (StreamAlreadyExists, StreamDoesNotExist, ...) are answers, left to the caller.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ConnectionClosed, TimeoutError, rs_errors.StreamNotAvailable,
    rs_errors.InternalError, rs_errors.LeaderNotAvailable,
)


@attrs.frozen
class BrokerAddress:
    """Where the stream port listens and how to log in.

    Every connection goes to this address (not to the host a node advertises), which is right
    for a single node and for a load balancer in front of a cluster: a consumer may read from
    any member of a stream, and a node forwards what a publisher sends to the stream's leader.
    """

    host: str = "127.0.0.1"
    port: int = 5552
    vhost: str = "/"
    username: str = "guest"
    password: str = attrs.field(default="guest", repr=False)
    connect_timeout: float = 5.0
    heartbeat: int = 20
    frame_max: int = 1024 * 1024

    def describe(self) -> str:
        """host:port for logs and error messages (never the password)."""
        return f"{self.host}:{self.port}"


class BrokerUnavailable(StoreUnavailable):
    """The RabbitMQ stream port cannot be reached or the connection broke."""


async def connect(address: BrokerAddress, name: str, host: str | None = None,
                  port: int | None = None) -> Client:
    """An authenticated client, or BrokerUnavailable."""
    client = Client(
        host or address.host, port or address.port, frame_max=address.frame_max,
        heartbeat=address.heartbeat, connection_name=name,
        connection_closed_handler=_closed,  # our callers notice; without it rstream logs a trace
    )
    try:
        async with asyncio.timeout(address.connect_timeout):
            await client.start()
            await client.authenticate(
                vhost=address.vhost, username=address.username, password=address.password
            )
    except BaseException as e:
        await close_quietly(client)
        if isinstance(e, (*BROKER_ERRORS, rs_errors.ServerError)):  # login refused included
            raise BrokerUnavailable(
                f"RabbitMQ stream port {address.describe()} unavailable: {_describe(e)}"
            ) from e
        raise
    return client


def silent(client: Client) -> bool:
    """No frame for three heartbeat intervals: the broker is gone even if the socket looks
    open (a peer that vanished without closing it)."""
    last = getattr(client, "_last_heartbeat", 0.0)
    heartbeat = getattr(client, "_heartbeat", 0)
    return bool(heartbeat and last and time.monotonic() - last > 3 * heartbeat)


async def _closed(_info: OnClosedErrorInfo) -> None:
    """A lost connection is seen by its users (`is_connection_alive()`), not reported here."""


async def close_quietly(client: Client) -> None:
    """Close a client that may already be broken, without raising."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2):
            await client.close()


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{error.__class__.__name__}: {text}" if text else error.__class__.__name__


def unavailable(address: BrokerAddress, error: BaseException) -> BrokerUnavailable:
    """The BrokerUnavailable for a driver error (raise it `from error`)."""
    return BrokerUnavailable(f"RabbitMQ stream {address.describe()}: {_describe(error)}")


@contextlib.asynccontextmanager
async def session(address: BrokerAddress, name: str) -> AsyncIterator[Client]:
    """A connection for a few requests, always closed; driver errors become BrokerUnavailable."""
    client = await connect(address, name)
    try:
        yield client
    except BROKER_ERRORS as e:
        raise unavailable(address, e) from e
    finally:
        await close_quietly(client)


async def request(address: BrokerAddress, awaitable: Awaitable[T]) -> T:
    """Await one broker request with a timeout, translating driver errors."""
    try:
        async with asyncio.timeout(address.connect_timeout):
            return await awaitable
    except BROKER_ERRORS as e:
        raise unavailable(address, e) from e
