"""`analytics replay`: re-read a range of the partition streams and ingest it again.

Replay never moves the consumer's committed offsets: it only re-applies messages, and the
ingest use case recognises each (orgId, eventId) already stored as a duplicate and each
already dead-lettered message by its stable (stream, offset) id, so totals stay exact.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from analytics_app.stream.commit import IngestBatch
from analytics_app.stream.lag import TailReader
from analytics_app.stream.reading import Chunk, ChunkReader
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.event_parsing import parse_time
from analytics_core.usecases.ingest import RawMessage

Position = int | datetime
OpenReader = Callable[[str, Position], ChunkReader]
"""(stream, offset or instant) -> a reader starting there."""
REPLAY_BATCH = 2000
_QUIET_SECONDS = 2.0  # nothing more within this after the start position: the range is done


def parse_position(text: str, field: str) -> Position:
    """An offset (digits) or an RFC 3339 instant."""
    if text.strip().isdigit():
        return int(text)
    try:
        return parse_time(text.strip())
    except ValueError as e:  # ValidationFailed is a ValueError too
        raise ValidationFailed([FieldError(field, "must be an offset (integer) or an RFC 3339 "
                                                  "date-time")]) from e


def _partition_indexes(partitions: Sequence[int] | None, count: int) -> Sequence[int]:
    """The selected partitions in order, each once (default all); ValidationFailed for one
    outside 0..count-1."""
    if not partitions:
        return range(count)
    if any(not 0 <= p < count for p in partitions):
        raise ValidationFailed([FieldError("--partition", f"must be between 0 and {count - 1}")])
    return sorted(set(partitions))


class Replay(Protocol):
    """`replay` with the streams, readers and ingest use case bound (see `replay`)."""

    def __call__(self, *, start_text: str, end_text: str | None,
                 partitions: Sequence[int] | None,
                 progress: bool = False) -> dict[str, dict[str, int]]: ...


def replay(*, streams: Sequence[str], tails: TailReader, open_reader: OpenReader,
           ingest: IngestBatch, start_text: str, end_text: str | None,
           partitions: Sequence[int] | None, progress: bool = False) -> dict[str, dict[str, int]]:
    """Re-ingest every selected partition (`streams[i]` is partition i) from `start` to `end`
    (default: its tail now); returns the counts per stream."""
    start = parse_position(start_text, "--from")
    end = parse_position(end_text, "--to") if end_text is not None else None
    selected = [streams[i] for i in _partition_indexes(partitions, len(streams))]

    async def run() -> dict[str, dict[str, int]]:
        last_offsets = await tails(selected)
        totals: dict[str, dict[str, int]] = {}
        for stream in selected:
            tail = last_offsets.get(stream)
            last = tail if not isinstance(end, int) or tail is None else min(tail, end)
            totals[stream] = await _replay_stream(
                open_reader(stream, start), stream=stream, last=last,
                end_time=end if isinstance(end, datetime) else None,
                ingest=functools.partial(_ingest, ingest, stream), progress=progress,
            )
        return totals

    return asyncio.run(run())


def _ingest(ingest: IngestBatch, stream: str, batch: list[RawMessage]) -> dict[str, int]:
    result = ingest(batch, source=f"stream:{stream}", checkpoint=None)
    return {"accepted": result.accepted, "duplicate": result.duplicates,
            "rejected": result.rejected}


async def _replay_stream(reader: ChunkReader, *, stream: str, last: int | None,
                         end_time: datetime | None,
                         ingest: Callable[[list[RawMessage]], dict[str, int]],
                         progress: bool) -> dict[str, int]:
    counts = {"read": 0, "accepted": 0, "duplicate": 0, "rejected": 0}
    if last is None:
        return counts  # an empty stream
    from tqdm import tqdm  # noqa: PLC0415  only the CLI needs it

    batch: list[RawMessage] = []
    await reader.open()
    try:
        with tqdm(desc=stream, unit="msg", disable=not progress) as bar:
            while True:
                chunk = await reader.next_chunk(_QUIET_SECONDS)
                if chunk is None or (end_time is not None and chunk.timestamp > end_time):
                    break
                batch.extend(_within(chunk, last))
                bar.update(len(chunk.bodies))
                if len(batch) >= REPLAY_BATCH:
                    await _flush(batch, ingest, counts)
                if chunk.first_offset + len(chunk.bodies) - 1 >= last:
                    break
            await _flush(batch, ingest, counts)
    finally:
        await reader.close()
    return counts


def _within(chunk: Chunk, last: int) -> list[RawMessage]:
    first = chunk.first_offset
    return [RawMessage(body, first + i) for i, body in enumerate(chunk.bodies)
            if first + i <= last]


async def _flush(batch: list[RawMessage], ingest: Callable[[list[RawMessage]], dict[str, int]],
                 counts: dict[str, int]) -> None:
    if not batch:
        return
    result = await asyncio.to_thread(ingest, list(batch))
    counts["read"] += len(batch)
    for key, value in result.items():
        counts[key] += value
    batch.clear()
