"""`analytics alerts` on a migrated SQLite database: the demo defines budgets that fire, one
pass prints what fired, a second pass fires nothing, and a second demo adds no budgets."""

from __future__ import annotations

import pytest

from analytics_app.bootstrap.application import Application
from analytics_app.cli import main
from analytics_app.cli.demo_data import ORGS
from analytics_app.config import load_settings


def test_the_demo_budgets_fire_once(migrated: object,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's two budgets: the first pass fires the monthly 50/80 % and the daily 80/100 %
    (and perhaps the forecast); the next pass fires nothing; a second demo adds none."""
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


def test_alerts_help_names_the_interval(capsys: pytest.CaptureFixture[str]) -> None:
    """The command documents how often it evaluates."""
    with pytest.raises(SystemExit):
        main(["alerts", "--help"])
    assert "ANALYTICS_ALERTS_INTERVAL_SECONDS" in capsys.readouterr().out
