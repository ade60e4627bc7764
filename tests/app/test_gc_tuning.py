"""The batch processes' collector settings: young generation every 20,000 allocations, start-up
objects frozen out of every scan; the same threshold held only while a batch is in hand in the
processes that serve more than batches."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from analytics_app.stream.gc_tuning import (
    BATCH_GC_THRESHOLD,
    batch_collection,
    tune_for_batches,
)


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


@pytest.mark.usefixtures("restored_gc")
def test_batch_collection_raises_the_threshold_only_while_a_batch_is_in_hand() -> None:
    """Inside: the batch threshold with the older generations as they were; two batches in
    hand at once (two threads) keep it until the last one ends; then the process's own
    thresholds are back."""
    gc.set_threshold(700, 11, 12)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def second() -> None:
        with batch_collection():
            second_in.set()
            first_out.wait(5)
            seen.append(gc.get_threshold())

    with batch_collection():
        first_in.set()
        assert gc.get_threshold() == (BATCH_GC_THRESHOLD, 11, 12)
        worker = threading.Thread(target=second)
        worker.start()
        second_in.wait(5)
    first_out.set()
    worker.join(5)
    assert seen == [(BATCH_GC_THRESHOLD, 11, 12)]
    assert gc.get_threshold() == (700, 11, 12)


@pytest.mark.usefixtures("restored_gc")
def test_batch_collection_leaves_a_tuned_process_alone() -> None:
    """A process already collecting less often (`tune_for_batches`, or a host's own choice)
    keeps its setting inside and after a batch, and an exception still restores."""
    gc.set_threshold(50_000, 10, 10)
    with batch_collection():
        assert gc.get_threshold() == (50_000, 10, 10)
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), batch_collection():
        raise RuntimeError
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.usefixtures("restored_gc")
def test_batch_collection_leaves_a_disabled_collector_disabled() -> None:
    """A host that turned automatic collection off (`gc.set_threshold(0)`) keeps it off during
    a batch: a batch never starts collections the host chose not to have."""
    gc.set_threshold(0, 10, 10)
    with batch_collection():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold() == (0, 10, 10)
