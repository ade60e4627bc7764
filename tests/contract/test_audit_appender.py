"""AuditAppender contract: a group of entries is committed whole when `append` returns, on
every storage (a unit of work on memory and SQLite, one autocommitted statement on a held
connection on PostgreSQL and Citus); on PostgreSQL a lost connection is a clean failure and
the next group goes through."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from analytics_adapters.sql import SqlStorage
from analytics_adapters.sql.audit_appender import IDLE_CHECK_SECONDS, PgAuditAppender
from analytics_core.access import Outcome
from analytics_core.errors import AnalyticsError, StoreUnavailable
from analytics_core.ports import AuditAppender, UnitOfWorkFactory
from analytics_core.records import AuditEntry
from analytics_core.usecases.access import UnitOfWorkAudit
from tests.contract.factories import BASE, make_audit_entry, new_id

Backend = tuple[AuditAppender, UnitOfWorkFactory]
SERVERS = ("postgres", "citus")


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("citus", marks=pytest.mark.citus)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The appender of each storage with the units of work that read it back."""
    uow_factory: UnitOfWorkFactory = request.getfixturevalue(f"{request.param}_uow_factory")
    if request.param not in SERVERS:
        yield UnitOfWorkAudit(uow_factory), uow_factory
        return
    storage: SqlStorage = request.getfixturevalue(f"{request.param}_storage")
    with held(storage, IDLE_CHECK_SECONDS) as appender:
        yield appender, uow_factory


def test_a_group_lands_whole_with_every_field(backend: Backend) -> None:
    """Entries of one call, about one org, read back exactly (optional fields, outcome,
    cross-org flag, microseconds) and newest first."""
    appender, uow_factory = backend
    org = new_id()
    entries = [
        make_audit_entry(org_id=org, at=BASE + timedelta(seconds=1, microseconds=7)),
        make_audit_entry(org_id=org, at=BASE + timedelta(seconds=3), actor="apikey:ak_1",
                         actor_org=new_id(), outcome=Outcome.DENIED, request_id=None,
                         reason="identity belongs to another org"),
        make_audit_entry(org_id=org, at=BASE + timedelta(seconds=2), cross_org=True,
                         actor="jwt:root", resource=f"exports/{new_id()}"),
    ]
    appender.append(entries)
    with uow_factory() as uow:
        assert uow.audit.recent(org) == [entries[1], entries[2], entries[0]]


def test_a_lone_entry_and_a_large_group(backend: Backend) -> None:
    """One entry (the lone request) and 300 at once (a busy process) both land."""
    appender, uow_factory = backend
    lone = make_audit_entry()
    appender.append([lone])
    org = new_id()
    group = [make_audit_entry(org_id=org, at=BASE + timedelta(milliseconds=i))
             for i in range(300)]
    appender.append(group)
    with uow_factory() as uow:
        assert uow.audit.recent(lone.org_id) == [lone]
        assert uow.audit.recent(org, limit=500) == group[::-1]


def test_no_entries_is_nothing(backend: Backend) -> None:
    """An empty group writes nothing and fails nothing."""
    appender, _ = backend
    appender.append([])


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("citus", marks=pytest.mark.citus)])
def server(request: pytest.FixtureRequest) -> tuple[SqlStorage, UnitOfWorkFactory]:
    """A PostgreSQL or Citus storage with its units of work."""
    uow_factory: UnitOfWorkFactory = request.getfixturevalue(f"{request.param}_uow_factory")
    storage: SqlStorage = request.getfixturevalue(f"{request.param}_storage")
    return storage, uow_factory


@contextlib.contextmanager
def held(storage: SqlStorage, idle_check: float) -> Iterator[PgAuditAppender]:
    """An appender on `storage`, its held connections given back afterwards."""
    appender = PgAuditAppender(storage.engine, idle_check=idle_check)
    try:
        yield appender
    finally:
        appender.close()


def _terminate(storage: SqlStorage, pid: int | None) -> None:
    assert pid is not None
    with storage.engine.connect() as conn:
        ended = sa.text("SELECT pg_terminate_backend(CAST(:pid AS integer))")
        assert conn.execute(ended, {"pid": pid}).scalar()


def test_the_connection_is_held_between_groups(
    server: tuple[SqlStorage, UnitOfWorkFactory],
) -> None:
    """Groups written within the idle check share one connection (no checkout, no ping)."""
    storage, _ = server
    with held(storage, idle_check=60) as appender:
        for _ in range(5):
            appender.append([make_audit_entry()])
        assert appender.checkouts == 1


def test_a_connection_lost_while_held_fails_that_group_only(
    server: tuple[SqlStorage, UnitOfWorkFactory],
) -> None:
    """The server ends the held connection: the next group raises StoreUnavailable and is not
    stored (its outcome is never guessed); the group after it goes through on a new one."""
    storage, uow_factory = server
    with held(storage, idle_check=60) as appender:
        appender.append([make_audit_entry()])
        _terminate(storage, appender.backend_pid)
        lost, kept = make_audit_entry(), make_audit_entry()
        with pytest.raises(StoreUnavailable):
            appender.append([lost])
        appender.append([kept])
        with uow_factory() as uow:
            assert uow.audit.recent(lost.org_id) == []
            assert uow.audit.recent(kept.org_id) == [kept]
        assert appender.checkouts == 2


def test_an_idle_connection_is_checked_again_before_use(
    server: tuple[SqlStorage, UnitOfWorkFactory],
) -> None:
    """Past the idle check the held connection goes back to the pool and a checked one comes
    out: a connection that died while nobody wrote costs no failed request."""
    storage, uow_factory = server
    with held(storage, idle_check=0) as appender:
        appender.append([make_audit_entry()])
        _terminate(storage, appender.backend_pid)
        entry = make_audit_entry()
        appender.append([entry])
        with uow_factory() as uow:
            assert uow.audit.recent(entry.org_id) == [entry]


def test_concurrent_groups_all_land(backend: Backend) -> None:
    """Four threads appending at once (the AuditWriter's writers): every entry is stored once;
    on PostgreSQL at most one connection per concurrent caller was checked out."""
    appender, uow_factory = backend
    org = new_id()
    groups = [[make_audit_entry(org_id=org, at=BASE + timedelta(seconds=t, milliseconds=i))
               for i in range(3)] for t in range(40)]
    errors: list[BaseException] = []

    def write(mine: list[list[AuditEntry]]) -> None:
        try:
            for group in mine:
                appender.append(group)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(groups[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with uow_factory() as uow:
        stored = uow.audit.recent(org, limit=500)
    assert sorted(e.audit_id for e in stored) == sorted(
        e.audit_id for group in groups for e in group)
    if isinstance(appender, PgAuditAppender):
        assert 1 <= appender.checkouts <= 4


def _hold_two(storage: SqlStorage, appender: PgAuditAppender) -> None:
    """Two groups in flight at once (the audit table locked until both wait on it), so that
    the appender holds two connections afterwards."""
    with storage.engine.connect() as locker:
        locker.execute(sa.text("LOCK TABLE audit_log IN EXCLUSIVE MODE"))
        writers = [threading.Thread(target=appender.append, args=([make_audit_entry()],))
                   for _ in range(2)]
        for w in writers:
            w.start()
        waiting = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                          " AND datname = current_database()"
                          " AND query LIKE 'INSERT INTO audit_log%'")
        deadline = time.monotonic() + 10
        with storage.engine.connect() as watcher:
            while watcher.execute(waiting).scalar() != 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        locker.rollback()
    for w in writers:
        w.join(10)
    assert len(appender.backend_pids) == 2


def test_after_a_restart_one_group_fails_not_one_per_held_connection(
    server: tuple[SqlStorage, UnitOfWorkFactory],
) -> None:
    """Every held connection dies at once (a server restart): the first group to notice fails
    (its outcome cannot be known), the others it held are dropped with it, and the next group
    goes through on a checked connection."""
    storage, uow_factory = server
    with held(storage, idle_check=60) as appender:
        _hold_two(storage, appender)
        for pid in appender.backend_pids:
            _terminate(storage, pid)
        with pytest.raises(StoreUnavailable):
            appender.append([make_audit_entry()])
        kept = make_audit_entry()
        appender.append([kept])
        with uow_factory() as uow:
            assert uow.audit.recent(kept.org_id) == [kept]


def test_a_statement_error_keeps_the_connection(
    server: tuple[SqlStorage, UnitOfWorkFactory],
) -> None:
    """A statement the server refuses (here a NUL in a text field) fails that group, and the
    connection, still sound, serves the next group: no checkout for it."""
    storage, uow_factory = server
    with held(storage, idle_check=60) as appender:
        appender.append([make_audit_entry()])
        with pytest.raises(AnalyticsError):
            appender.append([make_audit_entry(actor="bad\x00actor")])
        kept = make_audit_entry()
        appender.append([kept])
        assert appender.checkouts == 1
        with uow_factory() as uow:
            assert uow.audit.recent(kept.org_id) == [kept]


def test_held_connections_are_renewed_after_max_hold(
    server: tuple[SqlStorage, UnitOfWorkFactory],
) -> None:
    """A connection busy without pause is still given back after `max_hold` seconds, so that
    the pool's recycling and pings still reach it."""
    storage, _ = server
    appender = PgAuditAppender(storage.engine, idle_check=60, max_hold=0)
    try:
        for _ in range(3):
            appender.append([make_audit_entry()])
        assert appender.checkouts == 3
    finally:
        appender.close()


def test_a_group_finishing_after_close_gives_its_connection_back(
    server: tuple[SqlStorage, UnitOfWorkFactory],
) -> None:
    """`close()` while a group is in flight: the group still lands, and its connection goes
    back to the pool instead of being held by a closed appender."""
    storage, uow_factory = server
    appender = PgAuditAppender(storage.engine, idle_check=60)
    entry = make_audit_entry()
    with storage.engine.connect() as locker:
        locker.execute(sa.text("LOCK TABLE audit_log IN EXCLUSIVE MODE"))
        writer = threading.Thread(target=appender.append, args=([entry],))
        writer.start()
        deadline = time.monotonic() + 10
        while appender.checkouts == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        appender.close()
        locker.rollback()
    writer.join(10)
    assert appender.backend_pids == []
    with uow_factory() as uow:
        assert uow.audit.recent(entry.org_id) == [entry]
    checked_out = storage.engine.pool.checkedout()  # type: ignore[attr-defined]
    assert checked_out == 0
