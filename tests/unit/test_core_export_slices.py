"""Usage exports read one zone-local day at a time and still give the whole-window series."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_adapters.memory import InMemoryStorage, unit_of_work_factory
from analytics_core.events import Status, UsageEvent
from analytics_core.exports import ExportGranularity, ExportRequest
from analytics_core.money import Cents
from analytics_core.rollups import build_rollups
from analytics_core.timegrid import Grain, floor_bucket
from analytics_core.usecases.export_points import usage_points
from analytics_core.usecases.queries import GroupBy, SeriesPoint, group_series

ORIGIN = datetime(2024, 10, 20, tzinfo=UTC)  # New York falls back on 2024-11-03
ZONES = ("UTC", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham")
GRAINS = {ExportGranularity.HOURLY: Grain.HOUR, ExportGranularity.DAILY: Grain.DAY,
          ExportGranularity.MONTHLY: Grain.MONTH}
ORG = uuid.UUID(int=1)
MODELS = [uuid.UUID(int=10 + i) for i in range(3)]


def event(minute: int, model: int, latency: int) -> UsageEvent:
    """An event `minute` minutes after ORIGIN."""
    return UsageEvent(
        event_id=uuid.uuid4(), org_id=ORG, model_id=MODELS[model],
        occurred_at=ORIGIN + timedelta(minutes=minute), status=Status.SUCCESS,
        latency_ms=latency, input_tokens=latency % 97, output_tokens=3, cost=Cents(latency),
        client_id="c",
    )


def view(p: SeriesPoint) -> tuple[object, ...]:
    """A point's period, group and every additive statistic (what a usage CSV row holds)."""
    s = p.stats
    return (p.bucket_start, p.bucket_end, p.group, s.invocations, s.success, s.errors,
            s.timeouts, s.throttled, s.input_tokens, s.output_tokens, s.cost)


@st.composite
def windows(draw: st.DrawFn) -> tuple[int, int, list[UsageEvent]]:
    """(start minute, length in minutes, events mostly inside the window, some just around it)."""
    start = draw(st.integers(-60, 14 * 24 * 60))
    minutes = draw(st.integers(1, 31 * 24 * 60))
    at = st.integers(start - 120, start + minutes + 120)
    found = draw(st.lists(st.builds(event, at, st.integers(0, 2), st.integers(0, 10**6)),
                          min_size=1, max_size=120))
    return start, minutes, found


@settings(max_examples=settings().max_examples * 4)  # cheap examples; order bugs are rare draws
@given(
    window=windows(), tz=st.sampled_from(ZONES), granularity=st.sampled_from(list(GRAINS)),
    models=st.sets(st.sampled_from(MODELS), max_size=2),
)
def test_usage_export_points_equal_the_whole_window_series(
    window: tuple[int, int, list[UsageEvent]], tz: str, granularity: ExportGranularity,
    models: set[uuid.UUID],
) -> None:
    """Any window, zone, grain and models: export points equal group_series over the window."""
    start_minute, minutes, events = window
    storage = unit_of_work_factory(InMemoryStorage())
    rollups = build_rollups(events)
    with storage() as uow:
        uow.rollups.add(rollups)
        uow.commit()
    start = ORIGIN + timedelta(minutes=start_minute)
    request = ExportRequest(ORG, start, start + timedelta(minutes=minutes), granularity, tz,
                            tuple(sorted(models)))
    low = floor_bucket(start)
    inside = [r for r in rollups if low <= r.key.bucket_start < request.end
              and (not models or r.key.model_id in models)]
    expected = group_series(sorted(inside, key=lambda r: r.key.bucket_start),
                            GRAINS[granularity], tz, GroupBy.MODEL)
    assert [view(p) for p in usage_points(request, storage)] == [view(p) for p in expected]
