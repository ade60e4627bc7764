"""IdGenerator contract: fresh, unique UUIDs."""

from __future__ import annotations

import uuid

import pytest

from analytics_adapters.memory import SequentialIds
from analytics_adapters.system import RandomIds
from analytics_core.ports import IdGenerator
from tests.contract.factories import run_concurrently


@pytest.fixture(params=["random", "sequential"])
def ids(request: pytest.FixtureRequest) -> IdGenerator:
    """Each IdGenerator adapter."""
    return RandomIds() if request.param == "random" else SequentialIds()


def test_ids_are_unique_uuids(ids: IdGenerator) -> None:
    """Thousands of ids, drawn from several threads, never repeat."""
    drawn = run_concurrently(lambda _: [ids.new_id() for _ in range(1_000)], 4)
    flat = [i for batch in drawn for i in batch]
    assert all(isinstance(i, uuid.UUID) for i in flat)
    assert len(set(flat)) == len(flat)


def test_ids_are_version_4_uuids(ids: IdGenerator) -> None:
    """Ids are RFC 4122 version 4 UUIDs."""
    new = ids.new_id()
    assert (new.version, new.variant) == (4, uuid.RFC_4122)


def test_sequential_ids_follow_their_counter() -> None:
    """SequentialIds counts up from its start, predictably."""
    ids = SequentialIds(start=41)
    assert [i.int & 0xFFFF for i in (ids.new_id(), ids.new_id())] == [41, 42]
