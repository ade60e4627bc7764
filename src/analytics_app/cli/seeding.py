"""Seed demo data with a progress bar, mint an API key, and print ready-to-run curl commands."""

from __future__ import annotations

import shlex
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, time, timedelta
from typing import TextIO

import attrs
from tqdm import tqdm

from analytics_app.cli.demo_data import (
    DemoData,
    DemoSummary,
    IngestDemo,
    generate_demo,
    ingest_demo,
)
from analytics_core.access import ORG_ADMIN
from analytics_core.records import ApiKeyRecord

CreateApiKey = Callable[[uuid.UUID | None, Iterable[str], str], tuple[str, ApiKeyRecord]]

API_PREFIX = "/analytics/v1"


@attrs.frozen
class SeedResult:
    """What a demo run did (summary is None when existing data was kept as is)."""

    data: DemoData | None
    summary: DemoSummary | None


def seed_demo(
    ingest: IngestDemo, *, now: datetime, seed: int, events: int, days: int = 14,
    progress: bool = True, stream: TextIO | None = None,
) -> SeedResult:
    """Generate demo data ending at `now` and ingest it through the real ingest use case."""
    data = generate_demo(now=now, seed=seed, days=days, events=events)
    with tqdm(
        total=len(data.payloads), desc="Ingesting demo events", unit="ev", disable=not progress,
        file=stream or sys.stderr, leave=True, smoothing=0.1,
    ) as bar:
        summary = ingest_demo(data.payloads, ingest, progress=bar.update)
    return SeedResult(data, summary)


DEMO_KEY_NAME = "demo"


def mint_demo_key(create_api_key: CreateApiKey, org_id: uuid.UUID, *,
                  list_api_keys: Callable[[uuid.UUID | None], list[ApiKeyRecord]],
                  revoke_api_key: Callable[[str, str], object]) -> tuple[str, int]:
    """A new org_admin key named `demo` for the demo org, and how many earlier demo keys were
    revoked: keys are stored hashed (a start cannot show the old one again), so each start
    rotates the key instead of piling up live org_admin keys."""
    old = [r for r in list_api_keys(org_id) if r.name == DEMO_KEY_NAME and not r.revoked]
    for record in old:
        revoke_api_key(record.key_id, "analytics demo")
    key, _ = create_api_key(org_id, [ORG_ADMIN], DEMO_KEY_NAME)
    return key, len(old)


def _day(when: datetime) -> str:
    return datetime.combine(when.date(), time(0)).strftime("%Y-%m-%dT%H:%M:%SZ")


def instructions(base_url: str, org_id: uuid.UUID, org_name: str, key: str, now: datetime, *,
                 tags: Sequence[str] = ()) -> str:
    """Copy-paste shell commands for usage, reliability, freshness and an export download (and
    usage by the first attribution tag, when one is configured)."""
    start, end = _day(now - timedelta(days=7)), _day(now + timedelta(days=1))
    org_url = f"{base_url}{API_PREFIX}/orgs/$ORG"
    auth = '-H "X-API-Key: $KEY"'
    pretty = " | python3 -m json.tool"  # indented, one field per line
    body = (f'{{"timeRange":{{"start":"{start}","end":"{end}"}},'
            f'"granularity":"daily","tz":"UTC"}}')
    job_id = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"jobId\"])'"
    return "\n".join([
        f"Org {org_name}: {org_id}",
        "API key (org_admin; shown once, stored only as a hash):",
        f"  {key}",
        "",
        f"Dashboard: {base_url}/analytics/ui/  (sign in by pasting the API key above)",
        "",
        "Try it:",
        f"  export KEY={shlex.quote(key)} ORG={org_id}",
        f'  curl -s {auth} "{org_url}/usage?start={start}&end={end}&granularity=day"{pretty}',
        *([f'  curl -s {auth} "{org_url}/usage?start={start}&end={end}&granularity=day'
           f'&groupBy=tag:{tags[0]}&top=3"{pretty}'] if tags else []),
        f'  curl -s {auth} "{org_url}/reliability?start={start}&end={end}'
        f'&granularity=day&groupBy=none&percentile=p95"{pretty}',
        f'  curl -s {auth} "{org_url}/freshness"{pretty}',
        f'  curl -s {auth} "{org_url}/budgets"{pretty}',
        "  # the embedded alerts worker evaluates the demo budgets within 30 seconds:",
        f'  curl -s {auth} "{org_url}/alerts"{pretty}',
        f"  JOB=$(curl -s {auth} -H 'Content-Type: application/json' -d '{body}' "
        f'"{org_url}/exports" | {job_id})',
        "  sleep 3  # the embedded export worker picks the job up within seconds",
        f'  curl -s {auth} "{org_url}/exports/$JOB"',
        f'  curl -sL {auth} -o export.csv "{org_url}/exports/$JOB/download" && head export.csv',
        "",
        f"Health: {base_url}{API_PREFIX}/status/readyz?verbose   Metrics: {base_url}/metrics   "
        f"OpenAPI: {base_url}{API_PREFIX}/openapi.json",
    ])


def describe(result: SeedResult) -> str:
    """One paragraph on what the demo data contains."""
    if result.data is None or result.summary is None:
        return "Existing data kept (the database already has usage data)."
    d, s = result.data, result.summary
    spike_zone = d.orgs[0].tz
    return (
        f"Demo data: {len(d.orgs)} orgs, {len(d.models)} models, {len(d.payloads):,} events "
        f"ingested ({s.accepted:,} accepted, {s.duplicates:,} duplicates of which "
        f"{s.conflicts} conflicting, {s.rejected} rejected; {d.late} arrived late).\n"
        f"An error/latency spike hit {d.orgs[0].name} on {d.spike.start:%Y-%m-%d %H:%M} UTC "
        f"(15:00 {spike_zone}) for 90 minutes."
    )
