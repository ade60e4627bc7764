"""Realistic synthetic usage events for demos, fed through the real ingest use case."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs

from analytics_core.prices import PriceCategory, price_micros
from analytics_core.registry import ClientName, ModelEntry
from analytics_core.timegrid import BUCKET, floor_bucket, zone
from analytics_core.usecases.ingest import BatchResult, RawMessage
from analytics_core.usecases.prices import PriceDraft

IngestDemo = Callable[[Sequence[RawMessage]], BatchResult]
"""The ingest use case, bound (source `demo`)."""

DEMO_NAMESPACE = uuid.UUID("5b0f8a52-3c1e-4d7a-9a57-1d2f0c6b7e10")
DEFAULT_EVENTS = 20_000
LATE_SHARE = 0.006
DUPLICATE_SHARE = 0.004
CONFLICTS = 3
_QUANTUM = Decimal("0.0001")
_ERROR_CODES = {
    "error": ("upstream_5xx", "model_overloaded", "invalid_request", "content_filter"),
    "timeout": ("deadline_exceeded",),
    "throttled": ("rate_limited",),
}


@attrs.frozen
class DemoModel:
    """A model with its latency profile and price per 1,000 tokens (cents)."""

    name: str
    median_latency_ms: int
    input_price: Decimal
    output_price: Decimal

    @property
    def model_id(self) -> uuid.UUID:
        """Stable id derived from the name."""
        return uuid.uuid5(DEMO_NAMESPACE, f"model:{self.name}")


@attrs.frozen
class DemoOrg:
    """A tenant: its zone, traffic weight, models and clients."""

    name: str
    tz: str
    weight: float
    models: tuple[str, ...]
    clients: tuple[str, ...]

    @property
    def org_id(self) -> uuid.UUID:
        """Stable id derived from the name (the same for every seed)."""
        return uuid.uuid5(DEMO_NAMESPACE, f"org:{self.name}")


MODELS = tuple(DemoModel(n, lat, Decimal(i), Decimal(o)) for n, lat, i, o in (
    ("llama-3.1-8b-instruct", 180, "0.0200", "0.0200"),
    ("llama-3.1-70b-instruct", 650, "0.0880", "0.0880"),
    ("llama-3.1-405b-instruct", 1400, "0.3500", "0.3500"),
    ("mistral-7b-instruct", 150, "0.0150", "0.0150"),
    ("mixtral-8x22b-instruct", 720, "0.1200", "0.1200"),
    ("qwen2.5-72b-instruct", 600, "0.0900", "0.0900"),
    ("gemma-2-27b-it", 420, "0.0800", "0.0800"),
    ("deepseek-v3", 900, "0.0270", "0.1100"),
    ("bge-large-en-v1.5", 40, "0.0010", "0.0000"),
    ("whisper-large-v3", 2400, "0.0600", "0.0000"),
))
ORGS = (
    DemoOrg("Acme Robotics", "America/New_York", 1.0,
            ("llama-3.1-70b-instruct", "llama-3.1-8b-instruct", "deepseek-v3",
             "bge-large-en-v1.5", "whisper-large-v3"),
            ("web-app", "support-bot", "batch-summarizer")),
    DemoOrg("Globex", "Europe/Berlin", 0.6,
            ("mixtral-8x22b-instruct", "mistral-7b-instruct", "bge-large-en-v1.5",
             "llama-3.1-405b-instruct"),
            ("search", "analytics-pipeline")),
    DemoOrg("Initech", "Asia/Kolkata", 0.35,
            ("qwen2.5-72b-instruct", "gemma-2-27b-it", "llama-3.1-8b-instruct"),
            ("chat-widget", "doc-qa", "nightly-eval")),
    DemoOrg("Hooli", "Asia/Kathmandu", 0.15,
            ("llama-3.1-8b-instruct", "deepseek-v3"), ("prototype",)),
)
_MODELS_BY_NAME = {m.name: m for m in MODELS}

# The names the demo registers: display name, provider, family, and the aliases an invoice or
# a price catalog would use (the demo's own model slug among them).
_REGISTRY = {
    "llama-3.1-8b-instruct": ("Llama 3.1 8B Instruct", "meta (self-hosted)", "llama-3.1",
                              ("meta-llama/Llama-3.1-8B-Instruct",)),
    "llama-3.1-70b-instruct": ("Llama 3.1 70B Instruct", "meta (self-hosted)", "llama-3.1",
                               ("meta-llama/Llama-3.1-70B-Instruct",)),
    "llama-3.1-405b-instruct": ("Llama 3.1 405B Instruct", "meta (self-hosted)", "llama-3.1",
                                ("meta-llama/Llama-3.1-405B-Instruct",)),
    "mistral-7b-instruct": ("Mistral 7B Instruct", "mistral", "mistral",
                            ("mistralai/Mistral-7B-Instruct-v0.3",)),
    "mixtral-8x22b-instruct": ("Mixtral 8x22B Instruct", "mistral", "mixtral",
                               ("mistralai/Mixtral-8x22B-Instruct-v0.1",)),
    "qwen2.5-72b-instruct": ("Qwen2.5 72B Instruct", "alibaba", "qwen2.5",
                             ("Qwen/Qwen2.5-72B-Instruct",)),
    "gemma-2-27b-it": ("Gemma 2 27B", "google", "gemma-2", ("google/gemma-2-27b-it",)),
    "deepseek-v3": ("DeepSeek V3", "deepseek", "deepseek-v3", ("deepseek-chat",)),
    "bge-large-en-v1.5": ("BGE Large EN v1.5", "baai", "bge", ("BAAI/bge-large-en-v1.5",)),
    "whisper-large-v3": ("Whisper Large v3", "openai (self-hosted)", "whisper",
                         ("openai/whisper-large-v3",)),
}


def demo_model_names() -> list[ModelEntry]:
    """A registry entry per demo model (the slug events were generated with is an alias)."""
    return [ModelEntry(m.model_id, name, provider, family, (m.name, *aliases))
            for m in MODELS for name, provider, family, aliases in [_REGISTRY[m.name]]]


DEMO_PRICES_FROM = datetime(2020, 1, 1, tzinfo=UTC)


def demo_price_drafts() -> list[PriceDraft]:
    """List prices for the demo models, in effect since 2020: the cents per 1,000 tokens the
    demo events report, as USD per million tokens (x 10), with cached input at half price."""
    drafts = []
    for m in MODELS:
        input_price = price_micros(m.input_price * 10)
        drafts.append(PriceDraft(
            m.model_id, None, DEMO_PRICES_FROM,
            {PriceCategory.INPUT: input_price, PriceCategory.OUTPUT: price_micros(
                m.output_price * 10), PriceCategory.CACHE_READ: input_price // 2},
            note="demo list price", restate=True,
        ))
    return drafts


def demo_client_names() -> list[ClientName]:
    """A readable name for every demo org's clients ("support-bot" -> "Support bot")."""
    return [ClientName(org.org_id, client, client.replace("-", " ").capitalize())
            for org in ORGS for client in org.clients]


@attrs.frozen
class Spike:
    """A window where one org's model fails often and slowly."""

    org_id: uuid.UUID
    model_id: uuid.UUID
    start: datetime
    end: datetime


@attrs.frozen
class DemoData:
    """Events in arrival order (late ones arrive after newer ones), with what was planted."""

    payloads: tuple[dict[str, object], ...]
    spike: Spike
    late: int
    duplicates: int
    conflicts: int
    orgs: tuple[DemoOrg, ...] = ORGS
    models: tuple[DemoModel, ...] = MODELS


def _diurnal(local: datetime) -> float:
    """Traffic shape over the local day: a quiet night and an afternoon peak."""
    hour = local.hour + local.minute / 60
    shape: float = 0.15 + 0.85 * max(0.0, math.sin(math.pi * (hour - 6) / 16)) ** 1.5
    return shape * (0.45 if local.weekday() >= 5 else 1.0)


def _status(rng: random.Random, spiking: bool) -> str:
    roll = rng.random()
    error, timeout, throttled = (0.22, 0.12, 0.03) if spiking else (0.012, 0.004, 0.006)
    if roll < error:
        return "error"
    if roll < error + timeout:
        return "timeout"
    return "throttled" if roll < error + timeout + throttled else "success"


def _event(
    rng: random.Random, run: str, org: DemoOrg, at: datetime, *, spiking: bool, model: DemoModel,
) -> dict[str, object]:
    status = _status(rng, spiking)
    latency = rng.lognormvariate(math.log(model.median_latency_ms), 0.45) * (6 if spiking else 1)
    tokens_in = int(rng.lognormvariate(math.log(600), 0.8))
    tokens_out = int(rng.lognormvariate(math.log(250), 0.7)) if status == "success" else 0
    if status == "throttled":
        latency, tokens_in = rng.uniform(2, 15), 0
    elif status == "timeout":
        latency = max(latency, 30_000 + rng.uniform(0, 500))
    cost = (tokens_in * model.input_price + tokens_out * model.output_price) / 1000
    event_id = uuid.uuid5(DEMO_NAMESPACE, f"{run}:{rng.getrandbits(64)}")
    # Token categories and attribution tags come from a generator seeded by the event id, so
    # the main generator (and with it every demo figure before they existed) is unchanged.
    extra = random.Random(event_id.int)  # noqa: S311 - demo data, not secrets
    return {
        "eventId": str(event_id),
        "orgId": str(org.org_id),
        "modelId": str(model.model_id),
        "occurredAt": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "status": status,
        "latencyMs": int(latency),
        "inputTokens": tokens_in,
        "outputTokens": tokens_out,
        "costEstimateCents": cost.quantize(_QUANTUM),
        "clientId": rng.choice(org.clients),
        "actorId": str(uuid.uuid5(org.org_id, f"user-{rng.randrange(12)}")),
        "errorCode": rng.choice(_ERROR_CODES[status]) if status in _ERROR_CODES else None,
        "metadata": {"region": rng.choice(("us-east-1", "eu-west-1")), "source": "demo",
                     "team": extra.choice(_TEAMS), "feature": extra.choice(_FEATURES)},
        "tokenDetails": _token_details(extra, tokens_in, tokens_out),
    }


_TEAMS = ("search", "support", "growth", "platform")
_FEATURES = ("chat", "summarise", "classify", "embed-backfill", "agent")


def _token_details(rng: random.Random, tokens_in: int, tokens_out: int) -> dict[str, int]:
    """Prompt-cache hits on about half the calls, a few cache writes, and reasoning tokens on
    about a third of the answers (the categories of SPEC §12)."""
    details = {"cacheReadTokens": 0, "cacheWriteTokens": 0, "reasoningTokens": 0}
    if tokens_in and rng.random() < 0.5:
        details["cacheReadTokens"] = int(tokens_in * rng.uniform(0.3, 0.9))
    elif tokens_in and rng.random() < 0.1:
        details["cacheWriteTokens"] = int(tokens_in * rng.uniform(0.5, 1.0))
    if tokens_out and rng.random() < 0.35:
        details["reasoningTokens"] = int(tokens_out * rng.uniform(0.2, 0.7))
    return details


def _spike(now: datetime) -> Spike:
    org = ORGS[0]
    local = (now - timedelta(days=2)).astimezone(zone(org.tz))
    start = floor_bucket(local.replace(hour=15, minute=0, second=0, microsecond=0))
    return Spike(org.org_id, _MODELS_BY_NAME[org.models[0]].model_id, start,
                 start + timedelta(minutes=90))


def _org_events(
    rng: random.Random, org: DemoOrg, buckets: Sequence[datetime], expected: float, spike: Spike,
) -> Iterable[dict[str, object]]:
    run = f"{org.org_id}:{buckets[-1].isoformat()}"  # new ids for a run at another time
    weights = [1 / (i + 1) for i in range(len(org.models))]
    models = [_MODELS_BY_NAME[name] for name in org.models]
    shapes = [_diurnal(b.astimezone(zone(org.tz))) for b in buckets]
    scale = expected / sum(shapes)
    end = buckets[-1] + BUCKET
    for bucket, shape in zip(buckets, shapes, strict=True):
        spiking_bucket = org.org_id == spike.org_id and spike.start <= bucket < spike.end
        rate = scale * shape * (2 if spiking_bucket else 1)
        for _ in range(int(rate * rng.uniform(0.7, 1.3) + rng.random())):
            model = rng.choices(models, weights)[0]
            at = bucket + timedelta(seconds=rng.uniform(0, BUCKET.total_seconds()))
            at = min(at, end - timedelta(milliseconds=1))
            spiking = spiking_bucket and model.model_id == spike.model_id
            yield _event(rng, run, org, at, spiking=spiking, model=model)


def generate_demo(
    *, now: datetime, seed: int = 7, days: int = 14, events: int = DEFAULT_EVENTS,
) -> DemoData:
    """Events over the last `days` days, about `events` of them; deterministic per (seed, now).

    Traffic is diurnal in each org's zone; a 90-minute error and latency spike hits the first
    org's busiest model two days ago; a few events arrive hours late; some are delivered twice,
    and a few redeliveries carry different content (dedupe conflicts).
    """
    rng = random.Random(seed)  # noqa: S311  reproducible demo data, not a secret
    now = now.astimezone(UTC)
    first = floor_bucket(now - timedelta(days=days))
    buckets = [first + BUCKET * i for i in range(int((floor_bucket(now) - first) / BUCKET))]
    spike = _spike(now)
    total_weight = sum(o.weight for o in ORGS)
    stream: list[tuple[datetime, dict[str, object]]] = []
    late = 0
    for org in ORGS:
        expected = events * org.weight / total_weight
        for payload in _org_events(rng, org, buckets, expected, spike):
            at = datetime.fromisoformat(str(payload["occurredAt"]))
            if rng.random() < LATE_SHARE:
                late += 1
                at = min(now, at + timedelta(hours=rng.uniform(1, 36)))
            stream.append((at, payload))
    stream.sort(key=lambda item: item[0])
    duplicates = _redeliver(rng, stream)
    return DemoData(tuple(p for _, p in stream), spike, late, duplicates, CONFLICTS)


def _redeliver(rng: random.Random, stream: list[tuple[datetime, dict[str, object]]]) -> int:
    """Append redeliveries: exact copies, and CONFLICTS copies with altered content."""
    count = max(CONFLICTS + 1, int(len(stream) * DUPLICATE_SHARE))
    picks = rng.sample(range(len(stream)), min(count, len(stream)))
    for n, i in enumerate(picks):
        at, payload = stream[i]
        copy = dict(payload)
        if n < CONFLICTS:
            copy["latencyMs"] = int(str(copy["latencyMs"])) + 1
        stream.append((at, copy))
    return len(picks)


@attrs.frozen
class DemoSummary:
    """What ingesting the demo produced."""

    accepted: int
    duplicates: int
    rejected: int
    conflicts: int


def ingest_demo(
    payloads: Sequence[dict[str, object]], ingest: IngestDemo, *, batch_size: int = 1000,
    progress: Callable[[int], object] | None = None,
) -> DemoSummary:
    """Feed payloads through the bound ingest use case in batches; `progress` gets each
    batch's size."""
    totals = [0, 0, 0, 0]
    for offset in range(0, len(payloads), batch_size):
        batch = payloads[offset:offset + batch_size]
        result = ingest([RawMessage(p) for p in batch])
        for i, n in enumerate((result.accepted, result.duplicates, result.rejected,
                               result.conflicts)):
            totals[i] += n
        if progress is not None:
            progress(len(batch))
    return DemoSummary(*totals)
