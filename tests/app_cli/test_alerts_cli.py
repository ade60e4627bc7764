"""`analytics alerts` on a migrated SQLite database: the demo defines budgets that fire, one
pass prints what fired, a second pass fires nothing, and a second demo adds no budgets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from analytics_adapters.system.clock import SystemClock
from analytics_app.bootstrap.application import Application
from analytics_app.cli import main
from analytics_app.cli.demo_data import ORGS
from analytics_app.config import load_settings


@pytest.fixture
def local_time(monkeypatch: pytest.MonkeyPatch) -> Callable[[int, int], datetime]:
    """Pin the process clock to the latest past instant at HOUR:MINUTE in the first demo org's
    zone on the 4th of a month or later: the demo's daily budget depends on how much of the
    local day has passed, its monthly budget on the month having the demo's days."""
    def pin(hour: int, minute: int) -> datetime:
        local = datetime.now(UTC).astimezone(ZoneInfo(ORGS[0].tz))
        at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if at > local:
            at -= timedelta(days=1)
        while at.day < 4:  # the demo's 3 days and this month's budget both in one month
            at -= timedelta(days=1)
        pinned = at.astimezone(UTC)
        monkeypatch.setattr(SystemClock, "now", lambda self: pinned)
        return pinned
    return pin


def test_the_demo_budgets_fire_once(migrated: object, capsys: pytest.CaptureFixture[str],
                                    local_time: Callable[[int, int], datetime]) -> None:
    """The demo's two budgets: the first pass fires the monthly 50/80 % and the daily 80/100 %
    (and perhaps the forecast); the next pass fires nothing; a second demo adds none."""
    local_time(17, 0)
    assert main(["demo", "--events", "400", "--days", "3", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["alerts", "--once"]) == 0
    out, err = capsys.readouterr()
    fired = [line for line in out.splitlines() if line.startswith("fired:")]
    daily = [line for line in fired if "(Daily invocations)" in line]
    monthly = [line for line in fired if "(Monthly model spend)" in line]
    assert sorted(line.split(") ")[1].split(" of")[0] for line in daily) == [
        "threshold 100%", "threshold 80%"]
    assert {"threshold 50%", "threshold 80%"} <= {line.split(") ")[1].split(" of")[0]
                                                  for line in monthly}
    assert "2 budgets" in err
    assert main(["alerts", "--once"]) == 0
    assert "0 alerts fired" in capsys.readouterr().err
    assert main(["demo", "--events", "400", "--days", "3", "--no-progress"]) == 0
    with Application(load_settings()) as application:
        assert len(application.use_cases.list_budgets(ORGS[0].org_id)) == 2


def test_before_the_first_event_of_the_day_the_daily_budget_waits_for_it(
        migrated: object, capsys: pytest.CaptureFixture[str],
        local_time: Callable[[int, int], datetime]) -> None:
    """Minutes after local midnight the demo has sent nothing today: the daily budget is one
    invocation, nothing of it fires yet, and the monthly budget fires as usual."""
    local_time(0, 5)
    assert main(["demo", "--events", "400", "--days", "3", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["alerts", "--once"]) == 0
    fired = [line for line in capsys.readouterr().out.splitlines() if line.startswith("fired:")]
    assert not [line for line in fired if "(Daily invocations)" in line]
    assert [line for line in fired if "(Monthly model spend)" in line]
    with Application(load_settings()) as application:
        daily = [view.budget.amount
                 for view in application.use_cases.list_budgets(ORGS[0].org_id)
                 if view.budget.name == "Daily invocations"]
    assert daily == [1]


def test_alerts_help_names_the_interval(capsys: pytest.CaptureFixture[str]) -> None:
    """The command documents how often it evaluates."""
    with pytest.raises(SystemExit):
        main(["alerts", "--help"])
    assert "ANALYTICS_ALERTS_INTERVAL_SECONDS" in capsys.readouterr().out
