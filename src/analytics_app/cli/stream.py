"""`analytics consume`, `analytics publish FILE.jsonl` and `analytics replay --from ...`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from analytics_app.bootstrap.application import Application, StreamPublishing
    from analytics_app.config import Settings
    from analytics_app.config.stream import StreamConfig

log = logging.getLogger(__name__)


def register_stream_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add consume, publish and replay to the `analytics` parser."""
    p = sub.add_parser("consume", help="ingest from the RabbitMQ partition streams until SIGTERM",
                       description="Consume the partition streams this process owns and commit "
                                   "each batch with its offset in one transaction. Peer processes "
                                   "share the partitions by ANALYTICS_RABBITMQ_OWNERSHIP: auto "
                                   "(default: the broker's single active consumer on RabbitMQ "
                                   "3.13+ with PostgreSQL storage, else advisory locks), "
                                   "single-active-consumer or advisory-locks (PostgreSQL); with "
                                   "SQLite one process owns them all. SIGTERM/SIGINT commit the "
                                   "batch in hand and exit 0.")
    p.add_argument("--status-port", type=int, help="port of /metrics and /status/readyz "
                   "(ANALYTICS_RABBITMQ_STATUS_PORT; 0 disables)")
    p.set_defaults(handler=_lazy("consume_command"))
    p = sub.add_parser("publish", help="publish usage events from a JSONL file to the streams",
                       description="Publish one event per line (routed to its org's partition), "
                                   "waiting for broker confirms; - reads standard input.")
    p.add_argument("file", help="JSONL file, or - for standard input")
    p.add_argument("--batch-size", type=int, default=500, help="messages per publish frame")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=_lazy("publish_command"))
    p = sub.add_parser("replay", help="re-ingest a range of the streams (idempotent)",
                       description="Re-read each partition from an offset or an RFC 3339 instant "
                                   "up to its tail (or --to) and ingest again; duplicates are "
                                   "recognised, so totals do not change. Offsets are not moved.")
    p.add_argument("--from", dest="start", required=True, help="OFFSET or RFC 3339 TIMESTAMP")
    p.add_argument("--to", dest="end", help="last OFFSET or TIMESTAMP (default: the tail now)")
    p.add_argument("--partition", type=int, action="append", dest="partitions",
                   help="partition index (repeatable; default all)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=_lazy("replay_command"))


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        handler: Callable[[argparse.Namespace], int] = globals()[name]
        return handler(args)

    return run


def _stream_app() -> tuple[Settings, StreamConfig, Application]:
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415  imported on use
    from analytics_app.config import load_settings  # noqa: PLC0415
    from analytics_core.errors import ConfigError  # noqa: PLC0415

    settings = load_settings()
    config = settings.rabbitmq
    if config is None:
        raise ConfigError("stream ingestion is off: set ANALYTICS_RABBITMQ_HOST")
    return settings, config, Application(settings)


def consume_command(args: argparse.Namespace) -> int:
    """Run the consumer service until SIGTERM/SIGINT."""
    from analytics_app.observability.setup import configure_process  # noqa: PLC0415
    from analytics_app.observability.status_server import serve_status  # noqa: PLC0415
    from analytics_app.stream.gc_tuning import tune_for_batches  # noqa: PLC0415
    from analytics_core.errors import StoreUnavailable  # noqa: PLC0415

    settings, config, app = _stream_app()
    configure_process(settings)
    with app:
        try:
            app.prepare()  # a missing schema is fatal; an unreachable database is retried
        except StoreUnavailable as e:
            log.warning("database unavailable at start, will retry: %s", e)
        consumer = app.stream_consumer()
        port = config.status_port if args.status_port is None else args.status_port
        server = serve_status(settings.host, port, name="consumer-status",
                              render=consumer.metrics.render_page,
                              readiness=consumer.status.readiness) if port else None
        tune_for_batches()
        try:
            return asyncio.run(consumer.run())
        finally:
            if server is not None:
                server.shutdown()


def publish_command(args: argparse.Namespace) -> int:
    """Publish a JSONL file; exit 0 when every line was confirmed by the broker."""
    _, config, app = _stream_app()
    from tqdm import tqdm  # noqa: PLC0415

    with app, _open(args.file) as source:
        total = _size(source)
        with tqdm(total=total, unit="B", unit_scale=True, disable=args.no_progress,
                  desc="publishing", file=sys.stderr) as bar:
            sent, blank = asyncio.run(_publish(app.stream_publishing(), source,
                                               args.batch_size, bar.update))
    skipped = f"; skipped {blank} blank line{'s' * (blank != 1)}" if blank else ""
    print(f"published {sent} events to {config.partitions} partitions of {config.stream}"
          f"{skipped}", file=sys.stderr)
    return 0


async def _publish(publishing: StreamPublishing, source: BinaryIO, batch_size: int,
                   advance: Callable[[int], object]) -> tuple[int, int]:
    """(messages sent, blank or whitespace-only lines skipped)."""
    await publishing.declare()
    sent = blank = 0
    async with publishing.open(batch_size) as publisher:
        for line in source:
            advance(len(line))
            body = line.strip()
            if body:
                await publisher.send(body)
                sent += 1
            else:
                blank += 1
    return sent, blank


class _StdinBinary:
    def __enter__(self) -> BinaryIO:
        return sys.stdin.buffer

    def __exit__(self, *_: object) -> None:
        return None


def _open(path: str) -> _StdinBinary | BinaryIO:
    from analytics_core.errors import FieldError, ValidationFailed  # noqa: PLC0415

    if path == "-":
        return _StdinBinary()
    try:
        return Path(path).open("rb")
    except OSError as e:
        raise ValidationFailed([FieldError("file", f"cannot read {path!r}: {e}")]) from None


def _size(source: BinaryIO) -> int | None:
    try:
        return Path(source.name).stat().st_size if isinstance(source.name, str) else None
    except OSError:
        return None


def replay_command(args: argparse.Namespace) -> int:
    """Re-ingest a range of the partition streams."""
    from analytics_app.observability.setup import configure_process  # noqa: PLC0415
    from analytics_app.stream.gc_tuning import tune_for_batches  # noqa: PLC0415

    settings, _, app = _stream_app()
    configure_process(settings)
    tune_for_batches()
    with app:
        totals = app.replayer()(start_text=args.start, end_text=args.end,
                                partitions=args.partitions, progress=not args.no_progress)
    for line in _summary(totals):
        print(line)
    return 0


def _summary(totals: dict[str, dict[str, int]]) -> Iterator[str]:
    for stream, counts in sorted(totals.items()):
        yield (f"{stream}: {counts['read']} read, {counts['accepted']} accepted, "
               f"{counts['duplicate']} duplicate, {counts['rejected']} rejected")
