"""Clock contract: now() is timezone-aware UTC; the manual clock moves only when told."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from analytics_adapters.memory import FixedClock, ManualClock
from analytics_adapters.system import SystemClock
from analytics_core.ports import Clock
from tests.contract.factories import BASE


@pytest.fixture(params=["system", "manual"])
def clock(request: pytest.FixtureRequest) -> Clock:
    """Each Clock adapter."""
    return SystemClock() if request.param == "system" else ManualClock(BASE)


def test_now_is_timezone_aware_utc(clock: Clock) -> None:
    """now() carries a zero UTC offset."""
    assert clock.now().utcoffset() == timedelta(0)


def test_manual_clock_stays_put_until_moved() -> None:
    """A manual clock returns the same instant until set or advanced."""
    clock = FixedClock(BASE)
    assert clock.now() == clock.now() == BASE


def test_manual_clock_advances_and_sets() -> None:
    """advance() moves forward by the delta; set() jumps anywhere, normalised to UTC."""
    clock = ManualClock(BASE)
    assert clock.advance(timedelta(seconds=90)) == BASE + timedelta(seconds=90)
    assert clock.now() == BASE + timedelta(seconds=90)
    plus_two = BASE.astimezone(timezone(timedelta(hours=2)))
    clock.set(plus_two)
    assert clock.now() == BASE
    assert clock.now().utcoffset() == timedelta(0)


def test_manual_clock_refuses_naive_datetimes() -> None:
    """A naive datetime is ambiguous and refused."""
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(BASE.replace(tzinfo=None))
