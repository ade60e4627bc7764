"""Garbage-collector settings for the batch processes (`analytics consume`, `analytics replay`).

A stream batch allocates a dozen tracked objects per event (the event, its ids, times and
money, the rollup accumulators), almost all freed by reference counting and none part of a
cycle. With CPython's default first-generation threshold (700 allocations) the collector runs
every ~50 events and, as the batch in hand grows, keeps re-scanning it: measured at a third of
the consumer's Python time per event (bench/parse_path.py, bench/ingest_cpu.py). So these
processes freeze what exists after start-up (modules, the container, the settings: never
garbage) and collect the young generation every BATCH_GC_THRESHOLD allocations instead.
Cyclic garbage is still collected, just later; memory stays bounded by the batch size.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BATCH_GC_THRESHOLD = 20_000  # first-generation threshold; later generations keep 10 and 10
_OLDER = 10


def tune_for_batches(threshold: int = BATCH_GC_THRESHOLD) -> None:
    """Freeze the objects alive now and collect the young generation every `threshold`
    allocations. Call once, after start-up and before the first batch."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, _OLDER, _OLDER)


_scope_lock = threading.Lock()
_scope_depth = 0
_scope_saved: tuple[int, int, int] | None = None


@contextmanager
def batch_collection(threshold: int = BATCH_GC_THRESHOLD) -> Iterator[None]:
    """While an ingest batch is in hand (in any thread), collect the young generation every
    `threshold` allocations; the process's own thresholds come back when the last batch in
    hand ends. For the processes that serve more than batches (the API workers, the
    embedded service, a service importing the library), where a process-wide setting is not
    ours to make. A process whose threshold is already as high (`tune_for_batches`) is left
    alone, and so is one whose automatic collection is off (threshold 0). Nothing is frozen:
    the objects alive are the host's."""
    global _scope_depth, _scope_saved  # noqa: PLW0603  one process-wide setting
    with _scope_lock:
        if _scope_depth == 0:
            current = gc.get_threshold()
            _scope_saved = current if 0 < current[0] < threshold else None
            if _scope_saved is not None:
                gc.set_threshold(threshold, current[1], current[2])
        _scope_depth += 1
    try:
        yield
    finally:
        with _scope_lock:
            _scope_depth -= 1
            if _scope_depth == 0 and _scope_saved is not None:
                gc.set_threshold(*_scope_saved)
                _scope_saved = None
