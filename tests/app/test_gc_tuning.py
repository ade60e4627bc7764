"""The batch processes' collector settings: young generation every 20,000 allocations, start-up
objects frozen out of every scan."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from analytics_app.stream.gc_tuning import BATCH_GC_THRESHOLD, tune_for_batches


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Put the collector back as it was after the test."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_tuning_freezes_what_exists_and_raises_the_young_threshold() -> None:
    """Objects alive at start-up move to the permanent generation; collections of the young
    generation happen every BATCH_GC_THRESHOLD allocations; cycles are still collected."""
    gc.unfreeze()
    before = gc.get_freeze_count()
    tune_for_batches()
    assert gc.get_freeze_count() > before
    assert gc.get_threshold() == (BATCH_GC_THRESHOLD, 10, 10)

    class Node:
        def __init__(self) -> None:
            self.me = self

    import weakref  # noqa: PLC0415

    cycle = Node()
    ref = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert ref() is None
