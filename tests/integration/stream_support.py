"""Helpers for the stream integration tests: brokers, databases, scenarios, subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from analytics_adapters.rabbitmq import BrokerAddress, StreamChunk, StreamRuntime, StreamTopology
from analytics_adapters.rabbitmq.runtime import StreamOptions
from analytics_adapters.sql import AdvisoryLockOwnership, SqlStorage
from analytics_adapters.system import RandomIds, SystemClock
from analytics_core.money import Cents
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.timegrid import Grain
from analytics_core.usecases.queries import AnalyticsQuery, GroupBy, query_analytics
from tests.conftest import RABBITMQ_HOST, port_open, require_service
from tests.contract.sql_backends import postgres_server_url

STREAM_PORT = int(os.environ.get("ANALYTICS_TEST_RABBITMQ_STREAM_PORT", "5552"))
GROUP = "analytics-test"
ROOT = Path(__file__).resolve().parents[2]
ANALYTICS = str(Path(sys.executable).with_name("analytics"))


def require_broker() -> BrokerAddress:
    """Skip (fail under CI=true) unless the RabbitMQ stream port answers."""
    require_service("RabbitMQ stream port", port_open(RABBITMQ_HOST, STREAM_PORT))
    return BrokerAddress(RABBITMQ_HOST, STREAM_PORT)


def random_topology(partitions: int) -> StreamTopology:
    """A topology of this test's own (random base name)."""
    return StreamTopology(f"analytics.test.{uuid.uuid4().hex[:10]}", partitions)


def runtime_for(address: BrokerAddress, topology: StreamTopology, uow_factory: UnitOfWorkFactory,
                database_url: str | None) -> StreamRuntime:
    """A StreamRuntime over the test's topology and database."""
    return StreamRuntime(StreamOptions(address, topology, group=GROUP, credit=4,
                                       progress_refresh=0.2), uow_factory,
                         None if database_url is None
                         else functools.partial(AdvisoryLockOwnership, database_url, GROUP))


# --- scenarios with ground truth --------------------------------------------------------------

@dataclass
class OrgTruth:
    """What the usage API must report for one org."""

    invocations: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_units: int = 0


@dataclass
class Scenario:
    """Lines to publish (in order) and the exact totals they must produce."""

    lines: list[bytes] = field(default_factory=list)
    truth: dict[uuid.UUID, OrgTruth] = field(default_factory=dict)
    invalid_lines: list[bytes] = field(default_factory=list)
    duplicates: int = 0

    @property
    def invalid(self) -> int:
        """Lines the consumer must dead-letter."""
        return len(self.invalid_lines)


def make_scenario(n: int, *, orgs: int = 6, seed: int | None = None,
                  now: datetime | None = None) -> Scenario:
    """About `n` lines: valid events (some late), exact and conflicting duplicates, invalid ones."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    org_ids = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(orgs)]
    models = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(3)]
    scenario = Scenario(truth={o: OrgTruth() for o in org_ids})
    accepted: list[dict[str, object]] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.03:
            scenario.lines.append(line := _invalid(rng, org_ids, models, now))
            scenario.invalid_lines.append(line)
        elif roll < 0.08 and accepted:
            first = rng.choice(accepted)
            copy = dict(first) if roll < 0.07 else {**first, "latencyMs": 999_999}
            scenario.lines.append(_dump(copy))
            scenario.duplicates += 1
        else:
            event = _event(rng, org_ids, models, now, late=roll > 0.95)
            accepted.append(event)
            scenario.lines.append(_dump(event))
            _count(scenario.truth[uuid.UUID(str(event["orgId"]))], event)
    return scenario


def _event(rng: random.Random, orgs: list[uuid.UUID], models: list[uuid.UUID], now: datetime,
           *, late: bool) -> dict[str, object]:
    age = timedelta(days=rng.uniform(1, 3)) if late else timedelta(seconds=rng.uniform(0, 7200))
    return {
        "eventId": str(uuid.UUID(int=rng.getrandbits(128))),
        "orgId": str(rng.choice(orgs)), "modelId": str(rng.choice(models)),
        "occurredAt": (now - age).isoformat(),
        "status": rng.choice(["success", "success", "success", "error", "timeout", "throttled"]),
        "latencyMs": rng.randrange(1, 5000), "inputTokens": rng.randrange(0, 4000),
        "outputTokens": rng.randrange(0, 4000),
        "costEstimateCents": round(rng.uniform(0, 50), 4), "clientId": rng.choice(["web", "cli"]),
    }


def _invalid(rng: random.Random, orgs: list[uuid.UUID], models: list[uuid.UUID],
             now: datetime) -> bytes:
    event = _event(rng, orgs, models, now, late=False)
    kind = rng.randrange(4)
    if kind == 0:
        return b"{not json"
    if kind == 1:
        return _dump({**event, "status": "exploded"})
    if kind == 2:
        return _dump({k: v for k, v in event.items() if k != "modelId"})
    return _dump({**event, "occurredAt": (now + timedelta(hours=2)).isoformat()})


def _dump(event: dict[str, object]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def _count(truth: OrgTruth, event: dict[str, object]) -> None:
    truth.invocations += 1
    truth.input_tokens += int(str(event["inputTokens"]))
    truth.output_tokens += int(str(event["outputTokens"]))
    truth.cost_units += Cents.parse(str(event["costEstimateCents"])).units


def usage_totals(uow_factory: UnitOfWorkFactory, org: uuid.UUID) -> OrgTruth:
    """The usage query's totals for one org over the scenario window."""
    now = datetime.now(UTC)
    query = AnalyticsQuery(org, now - timedelta(days=5), now + timedelta(hours=1), Grain.DAY,
                           group_by=GroupBy.NONE)
    report = query_analytics(query, uow_factory=uow_factory, progress=_Now(), clock=SystemClock())
    t = report.totals
    return OrgTruth(t.invocations, t.input_tokens, t.output_tokens, t.cost.units)


class _Now:
    def complete_through(self, now: datetime) -> datetime:
        return now


def dead_letter_count(uow_factory: UnitOfWorkFactory) -> int:
    """Dead letters stored."""
    with uow_factory() as uow:
        return uow.dead_letters.count()


def assert_exact(uow_factory: UnitOfWorkFactory, scenario: Scenario) -> None:
    """Every org's totals and the dead-letter count equal the ground truth."""
    for org, truth in scenario.truth.items():
        assert usage_totals(uow_factory, org) == truth, f"org {org}"
    assert dead_letter_count(uow_factory) == scenario.invalid


# --- broker and database plumbing -----------------------------------------------------------

def publish(runtime: StreamRuntime, lines: list[bytes]) -> None:
    """Publish lines (declaring the streams first) and wait for every confirm."""

    async def run() -> None:
        await runtime.declare()
        async with runtime.publisher(batch_size=200) as publisher:
            for line in lines:
                await publisher.send(line)

    asyncio.run(run())


def read_chunks(runtime: StreamRuntime, timeout: float = 1.0) -> dict[str, list[StreamChunk]]:
    """Every chunk of every partition, from the first message (a stream is done once nothing
    more arrives within `timeout` seconds)."""

    async def read() -> dict[str, list[StreamChunk]]:
        chunks: dict[str, list[StreamChunk]] = {}
        for stream in runtime.topology.streams:
            reader = runtime.reader(stream, None)
            await reader.open()
            chunks[stream] = []
            while (chunk := await reader.next_chunk(timeout)) is not None:
                chunks[stream].append(chunk)
            await reader.close()
        return chunks

    return asyncio.run(read())


def stream_bodies(runtime: StreamRuntime, timeout: float = 1.0) -> dict[str, list[bytes]]:
    """Every message body of every partition, in offset order."""
    return {stream: [body for chunk in chunks for body in chunk.bodies]
            for stream, chunks in read_chunks(runtime, timeout).items()}


def tails(runtime: StreamRuntime) -> dict[str, int | None]:
    """Last offset of every partition."""
    return asyncio.run(runtime.tails(runtime.topology.streams))


def committed(uow_factory: UnitOfWorkFactory, streams: tuple[str, ...]) -> dict[str, int | None]:
    """Committed offsets of the test group."""
    with uow_factory() as uow:
        return {s: uow.offsets.get(GROUP, s) for s in streams}


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.1) -> None:
    """Poll until `condition()` holds; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if condition():
                return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def caught_up(runtime: StreamRuntime, uow_factory: UnitOfWorkFactory) -> Callable[[], bool]:
    """A condition: every partition's committed offset reached its tail (read once, on the
    first check that can reach the broker)."""
    known: list[dict[str, int | None]] = []

    def check() -> bool:
        if not known:
            known.append(tails(runtime))
        last = known[0]
        done = committed(uow_factory, runtime.topology.streams)
        return all(t is None or (done[s] is not None and done[s] >= t) for s, t in last.items())

    return check


def consume_all(runtime: StreamRuntime, storage: SqlStorage) -> None:
    """Run an in-process consumer until it committed every partition's tail, then stop it."""
    with ConsumerThread(runtime, storage) as consumer:
        wait_until(caught_up(runtime, storage.unit_of_work), 60, "the consumer to catch up")
        assert consumer.stop() == 0


def set_connections(url: URL, allowed: bool) -> None:
    """Allow or forbid connections to one test database (and cut the ones it has)."""
    admin = sa.create_engine(postgres_server_url(), isolation_level="AUTOCOMMIT",
                             poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            name, flag = url.database, str(allowed).lower()
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {flag}')
            if not allowed:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = :name AND pid <> pg_backend_pid()"),
                             {"name": name})
    finally:
        admin.dispose()


def open_storage(url: URL) -> SqlStorage:
    """A SqlStorage on a test database."""
    return SqlStorage.from_url(url)


def ingest_ports(storage: SqlStorage) -> tuple[UnitOfWorkFactory, SystemClock, RandomIds]:
    """uow factory, clock and ids for an in-process consumer."""
    return storage.unit_of_work, SystemClock(), RandomIds()


# --- the consumer as a subprocess -------------------------------------------------------------

def consumer_env(url: URL, topology: StreamTopology, host: str = RABBITMQ_HOST,
                 port: int = STREAM_PORT, **extra: str) -> dict[str, str]:
    """Environment of an `analytics consume` process for this test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env.update({
        "ANALYTICS_DATABASE_URL": url.render_as_string(hide_password=False),
        "ANALYTICS_RABBITMQ_HOST": host, "ANALYTICS_RABBITMQ_PORT": str(port),
        "ANALYTICS_RABBITMQ_STREAM": topology.base,
        "ANALYTICS_RABBITMQ_PARTITIONS": str(topology.partitions),
        "ANALYTICS_RABBITMQ_CONSUMER_GROUP": GROUP,
        "ANALYTICS_RABBITMQ_BATCH_SIZE": "300", "ANALYTICS_RABBITMQ_BATCH_MAX_WAIT_MS": "100",
        "ANALYTICS_RABBITMQ_OWNERSHIP_POLL_SECONDS": "0.3",
        "ANALYTICS_RABBITMQ_BACKOFF_MAX_SECONDS": "1", "ANALYTICS_RABBITMQ_STATUS_PORT": "0",
        "ANALYTICS_LOG_LEVEL": "INFO",  # the log file explains a failure
    })
    env.update(extra)
    return env


def start_consumer(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `analytics consume` (stderr to `log`)."""
    with log.open("ab") as sink:
        return subprocess.Popen([ANALYTICS, "consume"], env=env, cwd=ROOT, stdout=sink,
                                stderr=sink)


def run_analytics(env: dict[str, str], *args: str,
                  stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run `analytics ARGS` to completion; its exit code, stdout and stderr."""
    result = subprocess.run([ANALYTICS, *args], env=env, cwd=ROOT, input=stdin,
                            capture_output=True, timeout=180, check=False)
    return subprocess.CompletedProcess(result.args, result.returncode,
                                       result.stdout.decode(errors="replace"),
                                       result.stderr.decode(errors="replace"))


def kill9(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL and reap."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a TCP proxy that can cut every connection (a broker outage as clients see it) ----------

class CuttableProxy:
    """Forwards 127.0.0.1:port to the broker; `cut()` drops every connection and refuses new
    ones until `restore()`: to a client this is exactly a broker restart."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        """Listen again."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Close the listener and every proxied connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() blocked on it (Linux)
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def deleted_afterwards(runtime: StreamRuntime) -> Iterator[StreamRuntime]:
    """Delete the runtime's streams on exit."""
    try:
        yield runtime
    finally:
        asyncio.run(runtime.delete())


# --- an in-process consumer on a thread of its own ----------------------------------------

class ConsumerThread:
    """Runs a StreamConsumer on its own event loop; `stop()` asks it to finish cleanly."""

    def __init__(self, runtime: StreamRuntime, storage: SqlStorage, *, batch_size: int = 500,
                 batch_max_wait: float = 0.1, backoff_max: float = 0.5) -> None:
        from analytics_app.stream.consumer import StreamConsumer  # noqa: PLC0415
        from analytics_app.stream.settings import ConsumerSettings  # noqa: PLC0415
        from tests.wiring import stream_ingest  # noqa: PLC0415

        uow_factory, clock, ids = ingest_ports(storage)
        self.consumer = StreamConsumer(
            streams=runtime.topology.streams, **stream_ingest(uow_factory, clock, ids),
            readers=runtime.reader, ownership=runtime.ownership(),
            settings=ConsumerSettings(group=GROUP, batch_size=batch_size,
                                      batch_max_wait=batch_max_wait, ownership_poll=0.2,
                                      backoff_initial=0.05, backoff_max=backoff_max,
                                      shutdown_grace=5, lag_interval=0.5),
            declare=runtime.declare,
        )
        self.result: int | BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self._loop.run_until_complete(self.consumer.run())
        except BaseException as e:  # reported to the test
            self.result = e

    def __enter__(self) -> ConsumerThread:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> int | BaseException | None:
        """Stop and wait; the consumer's return value (or error)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.consumer.stop)
            self._thread.join(timeout=30)
        return self.result


# --- consumer processes: what they report, and a peer taking over ------------------------------

def readiness(port: int) -> dict[str, object]:
    """The consumer's /status/readyz body (503 bodies included)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status/readyz", timeout=2) as r:
            body: dict[str, object] = json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = json.loads(e.read())
    return body


def owned(port: int) -> set[str]:
    """Partitions a consumer process reports as its own."""
    partitions = readiness(port)["partitions"]
    assert isinstance(partitions, dict)
    return set(partitions)


def survivor_takes_over(runtime: StreamRuntime, storage: SqlStorage, database: URL,
                        log_dir: Path, processes: list[subprocess.Popen[bytes]], *,
                        seed: int, **env: str) -> list[Path]:
    """Two consumer processes over four partitions own two each; half the events are
    published and consumed; one process is killed with -9 and the rest published; the
    survivor must own all four, catch up, stop cleanly on SIGTERM, and the totals be exact.
    The processes use the runtime's broker; `env` adds to their environment. Returns their
    log files."""
    ports, logs = [free_port(), free_port()], [log_dir / f"consumer-{i}.log" for i in range(2)]
    for port, log in zip(ports, logs, strict=True):
        processes.append(start_consumer(consumer_env(
            database, runtime.topology, runtime.address.host, runtime.address.port,
            **{"ANALYTICS_RABBITMQ_STATUS_PORT": str(port), **env}), log))
    wait_until(lambda: [len(owned(p)) for p in ports] == [2, 2], 30,
               "both consumers to own two partitions each")
    assert owned(ports[0]).isdisjoint(owned(ports[1]))
    scenario = make_scenario(6000, seed=seed)
    half = len(scenario.lines) // 2
    publish(runtime, scenario.lines[:half])
    wait_until(caught_up(runtime, storage.unit_of_work), 60, "both consumers to catch up")
    kill9(processes[0])
    publish(runtime, scenario.lines[half:])
    wait_until(lambda: len(owned(ports[1])) == 4, 30, "the survivor to own every partition")
    wait_until(caught_up(runtime, storage.unit_of_work), 60, "the survivor to catch up")
    processes[1].send_signal(signal.SIGTERM)
    assert processes[1].wait(timeout=30) == 0
    assert_exact(storage.unit_of_work, scenario)
    return logs
