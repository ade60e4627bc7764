"""The stream consumer service (`analytics consume`): own partitions, run one worker each.

Each owned partition gets a PartitionWorker that resumes after the offset stored in the
database and commits every batch (events, rollups, dead letters, freshness markers and the
offset) in one transaction through `ingest_batch`. Ownership comes from a `PartitionOwnership`
adapter (the broker's single active consumer on RabbitMQ 3.13+, PostgreSQL advisory locks
otherwise): every `ownership_poll` seconds the service takes free partitions up to its fair
share, gives back extras and stops the workers of partitions it no longer holds, so peers
share the load and take over the partitions of a peer that died.
SIGTERM/SIGINT: stop fetching, commit the batches in hand, release, return 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from analytics_app.stream.commit import IngestBatch, StoredOffset
from analytics_app.stream.lag import CompleteThrough, LagMeter, TailReader, utc_now
from analytics_app.stream.partition import PartitionWorker
from analytics_app.stream.reading import ReaderFactory
from analytics_app.stream.settings import ConsumerSettings
from analytics_app.stream.status import ConsumerStatus, PartitionState, StreamMetrics
from analytics_core.errors import AnalyticsError, StoreUnavailable
from analytics_core.ports import PartitionOwnership

log = logging.getLogger(__name__)



class StreamConsumer:
    """Runs until `stop()` (or SIGTERM/SIGINT); a crashed worker ends it with its error."""

    def __init__(self, *, streams: Sequence[str], ingest: IngestBatch,
                 stored_offset: StoredOffset, readers: ReaderFactory, ownership: PartitionOwnership,
                 settings: ConsumerSettings,
                 declare: Callable[[], Awaitable[object]] | None = None,
                 tails: TailReader | None = None, complete_through: CompleteThrough | None = None,
                 now: Callable[[], datetime] = utc_now, status: ConsumerStatus | None = None,
                 metrics: StreamMetrics | None = None) -> None:
        self.streams = tuple(streams)
        self.ingest, self.stored_offset = ingest, stored_offset
        self.readers, self.ownership, self.settings = readers, ownership, settings
        self.declare = declare
        self.status = status or ConsumerStatus()
        self.metrics = metrics or StreamMetrics()
        self.lag = LagMeter(self.metrics, tails=tails, complete_through=complete_through,
                            now=now)
        self._workers: dict[str, tuple[PartitionWorker, asyncio.Task[None]]] = {}
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask the service to stop: workers commit what they hold, then `run` returns."""
        self._stop.set()

    @property
    def owned(self) -> frozenset[str]:
        """Partitions with a running worker."""
        return frozenset(self._workers)

    async def run(self) -> int:
        """Consume until stopped; 0 after a clean stop."""
        self._install_signals()
        lag_task: asyncio.Task[None] | None = None
        try:
            if not await self._declare():
                return 0
            lag_task = asyncio.create_task(self._lag_loop())
            while not self._stop.is_set():
                await self._balance()
                self._reap()
                await self._sleep(self.settings.ownership_poll)
            log.info("stopping: committing the batches in hand")
        finally:
            if lag_task is not None:
                lag_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lag_task
            await self._stop_workers(list(self._workers))
            await self.ownership.close()
        log.info("consumer stopped cleanly")
        return 0

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop)

    async def _declare(self) -> bool:
        backoff = self.settings.backoff()
        while self.declare is not None and not self._stop.is_set():
            try:
                await self.declare()
                return True
            except StoreUnavailable as e:
                log.warning("cannot declare the streams yet: %s", e)
                self.metrics.broker_retries.inc()
                await self._sleep(backoff.next())
        return not self._stop.is_set()

    async def _balance(self) -> None:
        try:
            if not await self.ownership.alive():
                await self._ownership_lost()
                await self.ownership.connect()
            self.status.ownership_ok = True
            share = await self.ownership.fair_share(len(self.streams))
            await self._hand_over()
            for stream in sorted(self._workers)[share:]:
                log.info("giving partition %s back to a peer (fair share %d)", stream, share)
                await self._stop_workers([stream])
                await self.ownership.release(stream)
            for stream in random.sample(self.streams, len(self.streams)):
                if len(self._workers) >= share:
                    break
                if stream not in self._workers and await self.ownership.try_acquire(stream):
                    self._start_worker(stream)
        except StoreUnavailable as e:
            self.status.ownership_ok = False
            log.warning("partition ownership unavailable: %s", e)
        self._report()

    async def _hand_over(self) -> None:
        """Stop the workers of partitions no longer held (single active consumer: the broker
        is moving them to a peer), then `release` every partition not held and not running,
        which tells the broker it may activate the peer now."""
        held = self.ownership.held
        for stream in sorted(set(self._workers) - held):
            log.info("partition %s goes to a peer; stopping its worker", stream)
            await self._stop_workers([stream])
        for stream in self.streams:
            if stream not in held and stream not in self._workers:
                await self.ownership.release(stream)

    async def _ownership_lost(self) -> None:
        if not self._workers:
            return
        # Exclusivity is gone: stop now. A batch that cannot be committed at once is
        # abandoned; its offset was not committed, so whoever owns the partition re-reads it.
        log.warning("lost the ownership connection; stopping %s", sorted(self._workers))
        await self._stop_workers(list(self._workers), abandon=True)

    def _start_worker(self, stream: str) -> None:
        worker = PartitionWorker(stream, ingest=self.ingest, stored_offset=self.stored_offset,
                                 readers=self.readers, settings=self.settings,
                                 status=self.status, metrics=self.metrics)
        self._workers[stream] = (worker, asyncio.create_task(worker.run(), name=stream))
        log.info("consuming partition %s", stream)

    async def _stop_workers(self, streams: Sequence[str], *, abandon: bool = False) -> None:
        pairs = [self._workers.pop(s) for s in streams if s in self._workers]
        for worker, _ in pairs:
            worker.stop(abandon=abandon)
        results = await asyncio.gather(*(task for _, task in pairs), return_exceptions=True)
        for (worker, _), result in zip(pairs, results, strict=True):
            if isinstance(result, BaseException):
                log.error("partition %s stopped with an error", worker.stream, exc_info=result)

    def _reap(self) -> None:
        for stream, (_, task) in list(self._workers.items()):
            if task.done():
                del self._workers[stream]
                task.result()  # a crashed worker ends the service with its error

    def _report(self) -> None:
        self.metrics.owned.set(len(self._workers))
        _, detail = self.status.readiness()
        states = detail["partitions"]
        assert isinstance(states, dict)
        for reason in (PartitionState.WAITING_FOR_DATABASE, PartitionState.WAITING_FOR_BROKER):
            self.metrics.waiting.labels(str(reason)).set(
                sum(1 for v in states.values() if v == reason)
            )

    async def _lag_loop(self) -> None:
        while not self._stop.is_set():
            await self._sleep(self.settings.lag_interval)
            try:
                await self._measure_lag()
            except AnalyticsError as e:  # broker or database down, or a stream deleted
                log.debug("lag not measured: %s", e)

    async def _measure_lag(self) -> None:
        tails = await self.lag.measure({s: w.committed for s, (w, _) in self._workers.items()})
        for stream, tail in tails.items():
            if stream in self._workers:
                self._workers[stream][0].tail = tail  # for its stall watchdog

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when a stop is requested."""
        if self._stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
