"""The group-commit audit writer: concurrent decisions share a transaction, none is lost or
acknowledged before its commit, and a failed commit fails exactly the callers it held."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from analytics_adapters.memory.state import InMemoryStorage
from analytics_adapters.memory.uow import InMemoryUnitOfWork, unit_of_work_factory
from analytics_core.access import Outcome
from analytics_core.errors import StoreUnavailable
from analytics_core.records import AuditEntry
from analytics_core.usecases.access import AuditWriter

ORG = uuid.UUID(int=7)


def entry(n: int) -> AuditEntry:
    """A distinct allowed decision."""
    return AuditEntry(audit_id=uuid.UUID(int=n + 1), at=datetime(2026, 12, 4, tzinfo=UTC),
                      actor=f"apikey:{n}", actor_org=ORG, org_id=ORG, action="read",
                      resource=f"org:{ORG}", outcome=Outcome.ALLOWED, reason="", request_id=None)


class Gated:
    """A unit-of-work factory whose first commit waits until `release` is set, and whose
    commits fail while `failing` is set."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.inner = unit_of_work_factory(storage)
        self.release = threading.Event()
        self.failing = False
        self.entered = threading.Event()

    def __call__(self) -> InMemoryUnitOfWork:
        uow = self.inner()
        gate = self
        original: Callable[[], None] = uow.commit

        def commit() -> None:
            gate.entered.set()
            gate.release.wait(10)
            if gate.failing:
                raise StoreUnavailable("database down")
            original()

        uow.commit = commit  # type: ignore[method-assign]
        return uow


def stored(storage: InMemoryStorage) -> set[uuid.UUID]:
    """Audit ids stored for ORG."""
    with unit_of_work_factory(storage)() as uow:
        return {e.audit_id for e in uow.audit.recent(ORG, 1000)}


def run_threads(writer: AuditWriter, numbers: range) -> tuple[list[threading.Thread],
                                                             dict[int, BaseException]]:
    """Start one recording thread per number; errors by number."""
    errors: dict[int, BaseException] = {}

    def record(n: int) -> None:
        try:
            writer.record(entry(n))
        except BaseException as e:  # the test inspects it
            errors[n] = e

    threads = [threading.Thread(target=record, args=(n,)) for n in numbers]
    for t in threads:
        t.start()
    return threads, errors


def wait_queued(writer: AuditWriter, n: int) -> None:
    """Until `n` entries wait behind the writer's transaction."""
    deadline = time.monotonic() + 10
    while len(writer._queue) < n:
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_concurrent_entries_share_a_commit_and_all_are_stored() -> None:
    """While one transaction commits, the entries of 7 other callers queue; they all go in
    the next one: 8 entries, 2 commits, none returned before its commit."""
    storage = InMemoryStorage()
    gated = Gated(storage)
    writer = AuditWriter(gated)
    first, errors = run_threads(writer, range(1))
    assert gated.entered.wait(10)
    rest, more = run_threads(writer, range(1, 8))
    wait_queued(writer, 7)
    assert all(t.is_alive() for t in first + rest)  # nobody acknowledged before the commit
    gated.release.set()
    for t in first + rest:
        t.join(10)
    assert errors == {}
    assert more == {}
    assert stored(storage) == {entry(n).audit_id for n in range(8)}
    assert writer.commits == 2


def test_a_failed_commit_fails_its_callers_and_stores_nothing_of_theirs() -> None:
    """Every caller whose entry was in the failed transaction gets the error; the next
    caller's entry is written."""
    storage = InMemoryStorage()
    gated = Gated(storage)
    gated.failing = True
    writer = AuditWriter(gated)
    first, errors = run_threads(writer, range(1))
    assert gated.entered.wait(10)
    rest, more = run_threads(writer, range(1, 4))
    wait_queued(writer, 3)
    gated.release.set()
    for t in first + rest:
        t.join(10)
    failed = {**errors, **more}
    assert sorted(failed) == [0, 1, 2, 3]
    assert all(isinstance(e, StoreUnavailable) for e in failed.values())
    assert stored(storage) == set()
    gated.failing = False
    writer.record(entry(9))
    assert stored(storage) == {entry(9).audit_id}


def test_a_writer_interrupted_mid_write_hands_over_to_a_waiting_caller() -> None:
    """A writer thread stopped by a BaseException (not an error of the store) leaves its
    queue to the waiting callers, who take over the writing."""
    storage = InMemoryStorage()
    inner = unit_of_work_factory(storage)
    calls = {"n": 0}

    def factory() -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return inner()

    writer = AuditWriter(factory)
    with pytest.raises(KeyboardInterrupt):
        writer.record(entry(0))
    writer.record(entry(1))  # nobody is writing: this caller writes
    assert stored(storage) == {entry(1).audit_id}


def test_a_given_appender_receives_the_groups_instead_of_a_unit_of_work() -> None:
    """With an appender (PostgreSQL's one-statement writer) every entry reaches it, in order
    and once, and no unit of work is opened for the audit."""
    groups: list[list[AuditEntry]] = []

    class Appender:
        def append(self, entries: list[AuditEntry]) -> None:
            groups.append(list(entries))

    def no_units() -> InMemoryUnitOfWork:
        raise AssertionError("the audit must go through the appender")

    writer = AuditWriter(no_units, appender=Appender())
    for n in range(3):
        writer.record(entry(n))
    assert [e for group in groups for e in group] == [entry(n) for n in range(3)]
    assert writer.commits == len(groups) == 3


def test_with_two_writers_a_second_group_is_written_while_the_first_is_in_flight() -> None:
    """`writers=2`: while the first writer's group is held up in its appender, a second
    caller writes its own entry and returns; the first returns once its group is released.
    With one writer the second caller would wait behind the first."""
    release, entered = threading.Event(), threading.Event()
    written: list[AuditEntry] = []

    class Appender:
        def append(self, entries: list[AuditEntry]) -> None:
            if entries[0] == entry(0):
                entered.set()
                assert release.wait(5)
            written.extend(entries)

    writer = AuditWriter(lambda: None, appender=Appender(), writers=2)  # type: ignore[arg-type,return-value]
    first = threading.Thread(target=writer.record, args=(entry(0),))
    first.start()
    assert entered.wait(5)
    writer.record(entry(1))  # returns while the first group is still in flight
    assert written == [entry(1)]
    release.set()
    first.join(5)
    assert written == [entry(1), entry(0)]
    assert writer.commits == 2
