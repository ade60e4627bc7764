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

BATCH_GC_THRESHOLD = 20_000  # first-generation threshold; later generations keep 10 and 10
_OLDER = 10


def tune_for_batches(threshold: int = BATCH_GC_THRESHOLD) -> None:
    """Freeze the objects alive now and collect the young generation every `threshold`
    allocations. Call once, after start-up and before the first batch."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, _OLDER, _OLDER)
