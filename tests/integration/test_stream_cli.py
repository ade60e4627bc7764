"""`analytics publish` and `analytics replay` run as processes against the real broker and
PostgreSQL: routing, message bodies, summaries, exit codes and idempotent re-ingestion."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import mmh3
import pytest
from sqlalchemy.engine import URL

from analytics_adapters.rabbitmq import StreamRuntime
from analytics_adapters.sql import SqlStorage
from tests.integration.stream_support import (
    assert_exact,
    committed,
    consume_all,
    consumer_env,
    free_port,
    make_scenario,
    random_topology,
    read_chunks,
    run_analytics,
    stream_bodies,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

# docs/streams.md, "Routing": the RabbitMQ Java client's super-stream hash, recomputed here
# rather than asked of the publisher so that a routing change fails these tests.
MURMUR_SEED = 104729
SUMMARY = re.compile(r"(?P<stream>\S+): (?P<read>\d+) read, (?P<accepted>\d+) accepted, "
                     r"(?P<duplicate>\d+) duplicate, (?P<rejected>\d+) rejected")
BAD_POSITION = "must be an offset (integer) or an RFC 3339 date-time"


def documented_partition(body: bytes, partitions: int) -> int:
    """murmur3_32(canonical orgId, seed 104729) mod N, unsigned; no readable orgId: 0."""
    try:
        org = str(uuid.UUID(json.loads(body).get("orgId")))
    except (ValueError, AttributeError, TypeError):  # not JSON, not an object, no UUID orgId
        return 0
    return int(mmh3.hash(org.encode(), MURMUR_SEED, signed=False)) % partitions


def by_partition(runtime: StreamRuntime, bodies: list[bytes]) -> dict[str, list[bytes]]:
    """`bodies` split over the runtime's streams by the documented routing, order kept."""
    n = runtime.topology.partitions
    return {stream: [b for b in bodies if documented_partition(b, n) == i]
            for i, stream in enumerate(runtime.topology.streams)}


def write_jsonl(path: Path, lines: list[bytes], ending: bytes = b"\n") -> Path:
    """A JSONL file of `lines`, each ended by `ending`."""
    path.write_bytes(b"".join(line + ending for line in lines))
    return path


def publish_file(env: dict[str, str], path: Path, lines: list[bytes]) -> None:
    """`analytics publish` a file of `lines` and check it reported every line published."""
    result = run_analytics(env, "publish", str(write_jsonl(path, lines)), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"published {len(lines)} events" in result.stderr


def ingested(runtime: StreamRuntime, storage: SqlStorage, database: URL, tmp_path: Path,
             *parts: list[bytes]) -> dict[str, str]:
    """Publish each part with an `analytics publish` of its own, consume everything; the env
    of the CLI processes."""
    env = consumer_env(database, runtime.topology)
    for i, part in enumerate(parts):
        publish_file(env, tmp_path / f"part-{i}.jsonl", part)
    consume_all(runtime, storage)
    return env


def replay_counts(stdout: str) -> dict[str, dict[str, int]]:
    """The per-partition summary `analytics replay` printed (every stdout line is one)."""
    counts: dict[str, dict[str, int]] = {}
    for line in stdout.splitlines():
        match = SUMMARY.fullmatch(line)
        assert match is not None, f"not a summary line: {line!r}"
        counts[match["stream"]] = {k: int(match[k])
                                   for k in ("read", "accepted", "duplicate", "rejected")}
    return counts


def already_ingested(bodies: list[bytes], invalid: set[bytes]) -> dict[str, int]:
    """What replaying `bodies` must report once the consumer ingested them all."""
    rejected = sum(body in invalid for body in bodies)
    return {"read": len(bodies), "accepted": 0, "duplicate": len(bodies) - rejected,
            "rejected": rejected}


def rfc3339(when: datetime) -> str:
    """`when` (UTC) as RFC 3339 with milliseconds and Z, the broker's chunk precision."""
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def last_line(text: str) -> str:
    """The last non-empty line of a process output."""
    return text.rstrip("\n").rsplit("\n", 1)[-1]


# --- publish --------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "padding", "ending"),
                         [("file", b"", b"\n"), ("-", b" \t", b" \r\n")],
                         ids=["file-LF", "stdin-padded-CRLF"])
def test_publish_puts_every_line_on_its_orgs_partition_unchanged_and_in_order(
    runtime: StreamRuntime, database: URL, tmp_path: Path, source: str, padding: bytes,
    ending: bytes,
) -> None:
    """Each line (file or stdin, LF or CRLF, whitespace around it or not) is one message, its
    JSON byte for byte, on its org's stream in file order."""
    lines = make_scenario(1500, orgs=8, seed=21).lines
    event = json.loads(lines[0])
    lines.append(json.dumps({**event, "eventId": str(uuid.uuid4()),
                             "orgId": event["orgId"].upper()}).encode())  # same org, same stream
    padded = [padding + line for line in lines]
    padded[5:5] = [b"", b" \t "]  # blank lines are skipped and counted
    path = write_jsonl(tmp_path / "events.jsonl", padded, ending)
    args = [str(path)] if source == "file" else ["-"]
    result = run_analytics(consumer_env(database, runtime.topology), "publish", *args,
                           "--batch-size", "40",
                           stdin=path.read_bytes() if source == "-" else None)
    assert result.returncode == 0, result.stderr
    assert last_line(result.stderr) == (f"published {len(lines)} events to 3 partitions of "
                                        f"{runtime.topology.base}; skipped 2 blank lines")
    expected = by_partition(runtime, lines)
    assert all(expected.values()), "the data should reach every partition"
    assert stream_bodies(runtime) == expected


def test_publish_shows_a_progress_bar_to_the_end_of_the_file_unless_told_not_to(
    runtime: StreamRuntime, database: URL, tmp_path: Path,
) -> None:
    """The bar (on stderr) reaches 100%; --no-progress leaves only the summary line."""
    path = write_jsonl(tmp_path / "events.jsonl", make_scenario(200, seed=22).lines)
    env = consumer_env(database, runtime.topology)
    shown = run_analytics(env, "publish", str(path))
    hidden = run_analytics(env, "publish", str(path), "--no-progress")
    assert (shown.returncode, hidden.returncode) == (0, 0)
    assert "publishing: 100%" in shown.stderr
    assert "publishing" not in hidden.stderr
    assert last_line(shown.stderr) == last_line(hidden.stderr)
    assert hidden.stderr.startswith("published 200 events")


def test_publish_sends_lines_without_a_readable_org_to_partition_0_to_be_dead_lettered(
    runtime: StreamRuntime, storage: SqlStorage, database: URL, tmp_path: Path,
) -> None:
    """Invalid JSON and other unreadable lines are published as they are, never dropped: the
    consumer dead-letters each, and the valid events still add up exactly."""
    scenario = make_scenario(600, seed=23)
    unreadable = [b"{not JSON at all", b"[1, 2, 3]", b'"just a string"',
                  b'{"eventId": "no org"}', b"\xff\xfe not UTF-8", b'{"orgId": 42}']
    middle = len(scenario.lines) // 2
    scenario.lines[middle:middle] = unreadable
    scenario.invalid_lines.extend(unreadable)
    publish_file(consumer_env(database, runtime.topology), tmp_path / "e.jsonl", scenario.lines)
    bodies = stream_bodies(runtime)
    partition_0 = bodies[runtime.topology.stream(0)]
    assert [b for b in partition_0 if b in unreadable] == unreadable
    assert bodies == by_partition(runtime, scenario.lines)
    consume_all(runtime, storage)
    assert_exact(storage.unit_of_work, scenario)


def test_publish_of_a_file_it_cannot_read_is_a_usage_error(database: URL, tmp_path: Path) -> None:
    """A missing file (or a directory) exits 2 naming the file, not with a traceback."""
    env = consumer_env(database, random_topology(2))
    for path in (tmp_path / "missing.jsonl", tmp_path):
        result = run_analytics(env, "publish", str(path))
        assert result.returncode == 2
        assert result.stderr.startswith(f"analytics: invalid input:\n  file: cannot read "
                                        f"{str(path)!r}: ")
        assert "Traceback" not in result.stderr


# --- replay ---------------------------------------------------------------------------------

def test_replay_from_an_offset_re_reads_every_partition_from_there_and_changes_no_total(
    runtime: StreamRuntime, storage: SqlStorage, database: URL, tmp_path: Path,
) -> None:
    """--from N reads offsets N..tail of each partition (nothing where the tail is below N), all
    duplicates or re-rejected; totals, dead letters and the consumer's offsets stay as they were."""
    scenario = make_scenario(400, seed=25)
    env = ingested(runtime, storage, database, tmp_path, scenario.lines)
    assert_exact(storage.unit_of_work, scenario)
    offsets = committed(storage.unit_of_work, runtime.topology.streams)
    bodies = stream_bodies(runtime)
    assert min(map(len, bodies.values())) < 25 < max(map(len, bodies.values()))

    result = run_analytics(env, "replay", "--from", "25")

    assert result.returncode == 0, result.stderr
    invalid = set(scenario.invalid_lines)
    expected = {s: already_ingested(b[25:], invalid) for s, b in bodies.items()}
    assert replay_counts(result.stdout) == expected
    assert sum(c["rejected"] for c in expected.values()) > 0
    for stream, counts in expected.items():
        if counts["read"]:
            assert f"{stream}: {counts['read']}msg" in result.stderr  # its progress bar
    assert committed(storage.unit_of_work, runtime.topology.streams) == offsets
    assert_exact(storage.unit_of_work, scenario)


def test_replay_to_an_offset_of_one_partition_reads_exactly_that_range(
    runtime: StreamRuntime, storage: SqlStorage, database: URL, tmp_path: Path,
) -> None:
    """--from 3 --to 9 --partition P reads offsets 3..9 of partition P and nothing else."""
    scenario = make_scenario(300, seed=25)
    env = ingested(runtime, storage, database, tmp_path, scenario.lines)
    bodies = stream_bodies(runtime)
    index, stream = max(enumerate(runtime.topology.streams), key=lambda p: len(bodies[p[1]]))
    wanted = bodies[stream][3:10]
    assert len(wanted) == 7

    result = run_analytics(env, "replay", "--from", "3", "--to", "9", "--partition", str(index),
                           "--partition", str(index), "--no-progress")  # named twice: read once

    assert result.returncode == 0, result.stderr
    assert replay_counts(result.stdout) == {
        stream: already_ingested(wanted, set(scenario.invalid_lines))}
    assert_exact(storage.unit_of_work, scenario)


def test_replay_from_an_instant_re_reads_the_chunks_written_since_then(
    runtime: StreamRuntime, storage: SqlStorage, database: URL, tmp_path: Path,
) -> None:
    """--from the broker time of the second publish's first chunk reads exactly the second
    file's messages on each partition, as duplicates; totals do not change."""
    scenario = make_scenario(1200, seed=26)
    half = len(scenario.lines) // 2
    first, second = scenario.lines[:half], scenario.lines[half:]
    env = ingested(runtime, storage, database, tmp_path, first, second)
    counts_first = {s: len(b) for s, b in by_partition(runtime, first).items()}
    chunks = read_chunks(runtime)
    before = [c.timestamp for s, cs in chunks.items() for c in cs
              if c.first_offset < counts_first[s]]
    after = [c.timestamp for s, cs in chunks.items() for c in cs
             if c.first_offset >= counts_first[s]]
    assert max(before) < min(after), "two publish processes wrote chunks in the same ms"

    result = run_analytics(env, "replay", "--from", rfc3339(min(after)), "--no-progress")

    assert result.returncode == 0, result.stderr
    invalid = set(scenario.invalid_lines)
    expected = {s: already_ingested(b, invalid) for s, b in by_partition(runtime, second).items()}
    assert replay_counts(result.stdout) == expected
    assert_exact(storage.unit_of_work, scenario)


def test_replay_from_an_instant_after_the_last_chunk_reads_nothing(
    runtime: StreamRuntime, storage: SqlStorage, database: URL, tmp_path: Path,
) -> None:
    """One millisecond after the newest chunk: every partition reports 0 read, exit 0."""
    scenario = make_scenario(300, seed=27)
    env = ingested(runtime, storage, database, tmp_path, scenario.lines)
    newest = max(c.timestamp for cs in read_chunks(runtime).values() for c in cs)
    offsets = committed(storage.unit_of_work, runtime.topology.streams)

    result = run_analytics(env, "replay", "--from", rfc3339(newest + timedelta(milliseconds=1)),
                           "--no-progress")

    assert result.returncode == 0, result.stderr
    nothing = {"read": 0, "accepted": 0, "duplicate": 0, "rejected": 0}
    assert replay_counts(result.stdout) == dict.fromkeys(runtime.topology.streams, nothing)
    assert committed(storage.unit_of_work, runtime.topology.streams) == offsets
    assert_exact(storage.unit_of_work, scenario)


@pytest.mark.parametrize("option", ["--from", "--to"])
@pytest.mark.parametrize("value", ["yesterday", "2026-01-02T03:04:05", "-3", "12abc", ""])
def test_replay_rejects_a_position_that_is_neither_an_offset_nor_an_instant(
    database: URL, option: str, value: str,
) -> None:
    """Exit 2 with a message naming the option, no traceback, nothing printed on stdout."""
    env = consumer_env(database, random_topology(2))
    args = ["--from", value] if option == "--from" else ["--from", "0", "--to", value]
    result = run_analytics(env, "replay", *args, "--no-progress")
    assert result.returncode == 2
    assert result.stderr == f"analytics: invalid input:\n  {option}: {BAD_POSITION}\n"
    assert result.stdout == ""


@pytest.mark.parametrize("partition", ["2", "-1"])
def test_replay_rejects_a_partition_outside_the_topology(database: URL, partition: str) -> None:
    """--partition beyond 0..N-1 is a usage error naming the range, not a traceback."""
    env = consumer_env(database, random_topology(2))
    result = run_analytics(env, "replay", "--from", "0", "--partition", "0",
                           "--partition", partition, "--no-progress")
    assert result.returncode == 2
    assert result.stderr == "analytics: invalid input:\n  --partition: must be between 0 and 1\n"
    assert result.stdout == ""


def test_replay_of_streams_that_do_not_exist_names_them(database: URL) -> None:
    """A topology nobody published to: exit 2 naming the missing streams, no traceback."""
    topology = random_topology(2)
    result = run_analytics(consumer_env(database, topology), "replay", "--from", "0",
                           "--no-progress")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("analytics: stream(s) ")
    for stream in topology.streams:
        assert stream in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_publish_without_a_reachable_broker_exits_3_naming_the_address(
    database: URL, tmp_path: Path,
) -> None:
    """Nothing listens on the port: exit 3, `analytics: unavailable:` and the address."""
    port = free_port()
    env = consumer_env(database, random_topology(2), port=port)
    path = write_jsonl(tmp_path / "events.jsonl", make_scenario(5, seed=29).lines)
    result = run_analytics(env, "publish", str(path), "--no-progress")
    assert result.returncode == 3, result.stderr
    assert last_line(result.stderr).startswith("analytics: unavailable: ")
    assert f":{port}" in result.stderr
    assert "Traceback" not in result.stderr
