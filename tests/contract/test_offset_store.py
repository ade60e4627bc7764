"""OffsetStore contract: last processed offset per (consumer, stream), never moving backwards."""

from __future__ import annotations

from analytics_core.ports import UnitOfWorkFactory
from tests.contract.factories import new_id


def names() -> tuple[str, str]:
    """A random (consumer, stream) pair."""
    return f"consumer-{new_id().hex[:8]}", f"analytics.usage.v1-{new_id().hex[:8]}"


def save(uow_factory: UnitOfWorkFactory, consumer: str, stream: str, offset: int) -> None:
    """offsets.save in its own committed unit of work."""
    with uow_factory() as uow:
        uow.offsets.save(consumer, stream, offset)
        uow.commit()


def get(uow_factory: UnitOfWorkFactory, consumer: str, stream: str) -> int | None:
    """offsets.get in its own unit of work."""
    with uow_factory() as uow:
        return uow.offsets.get(consumer, stream)


def test_get_is_none_when_never_committed(uow_factory: UnitOfWorkFactory) -> None:
    """A consumer that never committed on a stream has no offset."""
    assert get(uow_factory, *names()) is None


def test_saved_offset_is_returned(uow_factory: UnitOfWorkFactory) -> None:
    """The last saved offset is returned, including 0 and 64-bit values."""
    consumer, stream = names()
    save(uow_factory, consumer, stream, 0)
    assert get(uow_factory, consumer, stream) == 0
    save(uow_factory, consumer, stream, 2**63 - 1)
    assert get(uow_factory, consumer, stream) == 2**63 - 1


def test_offset_moves_forward(uow_factory: UnitOfWorkFactory) -> None:
    """A later offset replaces the stored one."""
    consumer, stream = names()
    for offset in (10, 11, 500):
        save(uow_factory, consumer, stream, offset)
    assert get(uow_factory, consumer, stream) == 500


def test_offset_never_moves_backwards(uow_factory: UnitOfWorkFactory) -> None:
    """Saving an older offset keeps the later one."""
    consumer, stream = names()
    save(uow_factory, consumer, stream, 500)
    save(uow_factory, consumer, stream, 499)
    save(uow_factory, consumer, stream, 0)
    assert get(uow_factory, consumer, stream) == 500


def test_offsets_are_kept_per_consumer_and_stream(uow_factory: UnitOfWorkFactory) -> None:
    """Each (consumer, stream) pair has its own offset."""
    (c1, s1), (c2, s2) = names(), names()
    with uow_factory() as uow:
        uow.offsets.save(c1, s1, 1)
        uow.offsets.save(c1, s2, 2)
        uow.offsets.save(c2, s1, 3)
        uow.commit()
    assert [get(uow_factory, c, s) for c, s in ((c1, s1), (c1, s2), (c2, s1), (c2, s2))] == [
        1, 2, 3, None
    ]


def test_saved_offset_is_readable_in_the_same_unit(uow_factory: UnitOfWorkFactory) -> None:
    """A unit of work reads its own uncommitted offset."""
    consumer, stream = names()
    with uow_factory() as uow:
        uow.offsets.save(consumer, stream, 7)
        assert uow.offsets.get(consumer, stream) == 7
