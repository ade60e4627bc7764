"""`analytics reconcile FILE` on a migrated SQLite database: the run is kept, the flagged lines
printed with exit 1 (0 when everything matches), the report written as CSV; bad input exits 2
naming every problem."""

from __future__ import annotations

import csv
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics_app.bootstrap.application import Application
from analytics_app.cli import main
from analytics_app.config import load_settings
from analytics_core.usecases.ingest import RawMessage

ORG = uuid.UUID("33333333-3333-4333-8333-333333333333")
MODEL = uuid.UUID("44444444-4444-4444-8444-444444444444")


@pytest.fixture
def day(migrated: Path) -> str:
    """Two events of 25 cents yesterday (UTC); the day as ISO text."""
    when = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0) - timedelta(
        days=1)
    events = [RawMessage({
        "eventId": str(uuid.uuid4()), "orgId": str(ORG), "modelId": str(MODEL),
        "occurredAt": (when + timedelta(minutes=i)).isoformat(), "status": "success",
        "latencyMs": 5, "inputTokens": 1, "outputTokens": 2, "costEstimateCents": "25",
    }) for i in range(2)]
    with Application(load_settings()) as app:
        assert app.use_cases.ingest_trusted(events, source="http").accepted == 2
    return when.date().isoformat()


def test_a_matching_invoice_exits_0_and_a_flagged_one_exits_1(
    migrated: Path, day: str, capsys: pytest.CaptureFixture[str],
) -> None:
    """0.50 USD matches; 0.60 USD is flagged (20 %), the CSV is written, the run is kept."""
    good = migrated / "good.csv"
    good.write_text(f"Date,Model,Cost\n{day},{MODEL},0.50\n", encoding="utf-8")
    base = ["reconcile", "--org", str(ORG), "--basis", "reported", "--map", "day=Date",
            "--map", "model=Model", "--map", "cost=Cost"]
    assert main([*base, str(good)]) == 0
    assert "1 lines, 0 flagged" in capsys.readouterr().out
    bad = migrated / "bad.csv"
    bad.write_text(f"Date,Model,Cost\n{day},{MODEL},0.60\n", encoding="utf-8")
    out_csv = migrated / "report.csv"
    assert main([*base, str(bad), "--output", str(out_csv)]) == 1
    out = capsys.readouterr().out
    assert "1 lines, 1 flagged" in out
    assert "over_tolerance  variance 0.100000 USD (20.00%)" in out
    [row] = list(csv.DictReader(out_csv.open(encoding="utf-8")))
    assert (row["status"], row["metered_cost_usd"], row["invoiced_cost_usd"]) == (
        "over_tolerance", "0.500000", "0.600000")
    assert main([*base, str(bad), "--json", "--name", "again"]) == 1
    assert json.loads(capsys.readouterr().out)["name"] == "again"
    with Application(load_settings()) as app:
        runs = app.use_cases.list_reconciliations(ORG).runs
    assert [r.name for r in runs] == ["again", "bad.csv", "good.csv"]


def test_bad_input_exits_2_naming_each_problem(
    migrated: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad org, tolerance and mapping; then a file with bad rows."""
    assert main(["reconcile", "x.csv", "--org", "nope", "--tolerance", "lots",
                 "--map", "colour=Blue"]) == 2
    err = capsys.readouterr().err
    assert "--org: must be a UUID" in err
    assert "--tolerance: must be a decimal" in err
    assert "--map: 'colour=Blue' must be FIELD=HEADER" in err
    path = migrated / "rows.csv"
    path.write_text("day,model,cost\n2024-13-01,m,1\n2024-01-01,m,one\n", encoding="utf-8")
    assert main(["reconcile", str(path), "--org", str(ORG)]) == 2
    err = capsys.readouterr().err
    assert "row 2: day" in err
    assert "row 3: cost" in err
