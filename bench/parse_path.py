"""CPU cost per event of the ingest path before storage: decode+parse, rollups, fingerprint.

Usage: .venv/bin/python bench/parse_path.py [--events 40000] [--batch 2000] [--repeat 7]
                                            [--seed 42]

Builds `--events` realistic stream payloads (JSON bytes from `benchdb.EventFactory`, spread
over the last 15 minutes) and times, in process CPU time (`time.process_time`, so other load on
a shared machine does not count), each stage of what `ingest_batch` does in Python per event
before and around the store:

- decode+parse: `_plan` over batches of `--batch` messages (JSON decoding with Decimal numbers,
  `parse_event` validation into `UsageEvent`, raw bytes kept, in-batch dedupe): the HTTP and
  library path, without a typed decoder;
- msgspec decode: the same `_plan` with the stream edge's `MsgspecEventDecoder` (what
  `analytics consume` and `analytics replay` run);
- rollups: `build_rollups` over each batch's events;
- fingerprint: `UsageEvent.fingerprint()` once per event (the SQL store does this per insert).

The collector is set as `analytics consume` sets it (analytics_app.stream.gc_tuning) unless
`--default-gc`. Each stage runs `--repeat` times after one warm-up pass; the best and the
median run are printed in microseconds per event. Nothing is asserted: compare figures across
commits on one machine.
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
from analytics_adapters.msgspec_codec import MsgspecEventDecoder
from analytics_adapters.system import RandomIds
from analytics_app.stream.gc_tuning import tune_for_batches
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
    parser.add_argument("--default-gc", action="store_true",
                        help="keep CPython's collector settings (the consumer tunes them)")
    args = parser.parse_args(argv)
    if not args.default_gc:
        tune_for_batches()  # as `analytics consume` does after start-up, before any message

    now = datetime.now(UTC).replace(microsecond=0)
    clock, ids, span = ManualClock(now), RandomIds(), timedelta(minutes=15)
    payloads = EventFactory(seed=args.seed).payloads(args.events, now - span, span)
    batches = [
        [RawMessage(p, i + j) for j, p in enumerate(payloads[i : i + args.batch])]
        for i in range(0, len(payloads), args.batch)
    ]

    def planner(decoder: MsgspecEventDecoder | None) -> Callable[[], list[list[UsageEvent]]]:
        def plan_all() -> list[list[UsageEvent]]:
            return [
                [v.event for v in _plan(b, source="bench", clock=clock, ids=ids,
                                        raw_retention=DEFAULT_RAW_RETENTION,
                                        decoder=decoder).unique]
                for b in batches
            ]
        return plan_all

    plan_all, decode_all = planner(None), planner(MsgspecEventDecoder())
    events = plan_all()
    flat = [e for batch in events for e in batch]
    if len(flat) != args.events:
        raise SystemExit(f"expected {args.events} valid unique events, got {len(flat)}")
    if decode_all() != events:
        raise SystemExit("the msgspec decoder read the events differently")

    def rollups() -> None:
        for batch in events:
            build_rollups(batch)

    def fingerprints() -> None:
        for e in flat:
            e.fingerprint()

    collector = "CPython's default collector" if args.default_gc else "the consumer's collector"
    print(f"{machine()}; {args.events} events in batches of {args.batch}, "
          f"{args.repeat} runs, process CPU time, {collector}")
    stages = {"decode+parse": plan_all, "msgspec decode": decode_all, "rollups": rollups,
              "fingerprint": fingerprints}
    totals = dict.fromkeys(["total (http)", "total (stream)"], (0.0, 0.0))
    for name, run in stages.items():
        figures = cpu_per_event(run, args.events, args.repeat)
        best, median = min(figures), statistics.median(figures)
        for total, (b, m) in totals.items():
            if name != ("msgspec decode" if "http" in total else "decode+parse"):
                totals[total] = (b + best, m + median)
        print(f"{name:>15}: {best:6.2f} µs/event best, {median:6.2f} median")
    for total, (best, median) in totals.items():
        print(f"{total:>15}: {best:6.2f} µs/event best, {median:6.2f} median")


if __name__ == "__main__":
    main()
