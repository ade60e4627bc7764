"""CPU cost per event of the ingest path before storage: decode+parse, rollups, fingerprint.

Usage: .venv/bin/python bench/parse_path.py [--events 40000] [--batch 2000] [--repeat 7]
                                            [--seed 42]

Builds `--events` realistic stream payloads (JSON bytes from `benchdb.EventFactory`, spread
over the last 15 minutes) and times, in process CPU time (`time.process_time`, so other load on
a shared machine does not count), each stage of what `ingest_batch` does in Python per event
before and around the store:

- decode+parse: `_plan` over batches of `--batch` messages (JSON decoding with Decimal numbers,
  `parse_event` validation into `UsageEvent`, raw bytes kept, in-batch dedupe);
- rollups: `build_rollups` over each batch's events;
- fingerprint: `UsageEvent.fingerprint()` once per event (the SQL store does this per insert).

Each stage runs `--repeat` times after one warm-up pass; the best and the median run are printed
in microseconds per event. Nothing is asserted: compare figures across commits on one machine.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import EventFactory, machine

from analytics_adapters.memory.clock import ManualClock
from analytics_adapters.memory.ids import RandomIds
from analytics_core.events import UsageEvent
from analytics_core.rollups import build_rollups
from analytics_core.usecases.ingest import DEFAULT_RAW_RETENTION, RawMessage, _plan


def cpu_per_event(run: Callable[[], object], events: int, repeat: int) -> list[float]:
    """Process CPU microseconds per event of `repeat` runs (after one warm-up run)."""
    run()
    out = []
    for _ in range(repeat):
        gc.collect()
        start = time.process_time()
        run()
        out.append((time.process_time() - start) / events * 1e6)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Print µs/event (best and median CPU time) for each stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    now = datetime.now(UTC).replace(microsecond=0)
    clock, ids, span = ManualClock(now), RandomIds(), timedelta(minutes=15)
    payloads = EventFactory(seed=args.seed).payloads(args.events, now - span, span)
    batches = [
        [RawMessage(p, i + j) for j, p in enumerate(payloads[i : i + args.batch])]
        for i in range(0, len(payloads), args.batch)
    ]

    def plan_all() -> list[list[UsageEvent]]:
        return [
            [v.event for v in _plan(b, source="bench", clock=clock, ids=ids,
                                    raw_retention=DEFAULT_RAW_RETENTION).unique]
            for b in batches
        ]

    events = plan_all()
    flat = [e for batch in events for e in batch]
    if len(flat) != args.events:
        raise SystemExit(f"expected {args.events} valid unique events, got {len(flat)}")

    def rollups() -> None:
        for batch in events:
            build_rollups(batch)

    def fingerprints() -> None:
        for e in flat:
            e.fingerprint()

    print(f"{machine()}; {args.events} events in batches of {args.batch}, "
          f"{args.repeat} runs, process CPU time")
    stages = {"decode+parse": plan_all, "rollups": rollups, "fingerprint": fingerprints}
    best_total = median_total = 0.0
    for name, run in stages.items():
        figures = cpu_per_event(run, args.events, args.repeat)
        best, median = min(figures), statistics.median(figures)
        best_total += best
        median_total += median
        print(f"{name:>14}: {best:6.2f} µs/event best, {median:6.2f} median")
    print(f"{'total':>14}: {best_total:6.2f} µs/event best, {median_total:6.2f} median")


if __name__ == "__main__":
    main()
