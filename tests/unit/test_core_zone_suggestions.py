"""A misspelled zone names the zones it was probably meant to be (issue 20: errors that teach)."""

from __future__ import annotations

import pytest

from analytics_core.timegrid import zone_error


@pytest.mark.parametrize(("typed", "meant"), [
    ("asia/kolkata", "Asia/Kolkata"), ("Asia/Kolkatta", "Asia/Kolkata"),
    ("America/NewYork", "America/New_York"), ("europe/berlin", "Europe/Berlin"),
])
def test_a_near_miss_suggests_the_zone(typed: str, meant: str) -> None:
    """Wrong case or a small typo: the reason ends with `did you mean '...'?`."""
    reason = zone_error(typed)
    assert reason is not None
    assert reason.startswith(f"unknown IANA time zone {typed!r}; did you mean")
    assert repr(meant) in reason


def test_nothing_close_suggests_nothing() -> None:
    """A name far from every zone gets the plain reason; a valid one no error."""
    assert zone_error("Mars/Olympus") == "unknown IANA time zone 'Mars/Olympus'"
    assert zone_error("Asia/Kolkata") is None
