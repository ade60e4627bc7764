"""`analytics usage` / `reliability`: the API's documents on the command line (--json equals
the API's body) and a table with names and an exact total."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import falcon.testing
import pytest

from analytics_app.bootstrap.application import Application
from analytics_app.cli import main
from analytics_app.config import load_settings
from analytics_app.http.app import create_app

ORG = "61cfb301-976e-513e-a7b8-f4d8bf8ec460"  # the first demo org
_NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START, END = (_NOW - timedelta(days=5)).isoformat(), (_NOW + timedelta(days=1)).isoformat()
WINDOW = ["--start", START, "--end", END]


@pytest.fixture
def demo(migrated: Path) -> Path:
    """A migrated SQLite database with 3 days of demo data."""
    assert main(["demo", "--events", "1500", "--days", "3", "--no-progress"]) == 0
    return migrated


def _cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    body: dict[str, object] = json.loads(capsys.readouterr().out)
    return body


@pytest.mark.parametrize(("kind", "extra", "query"), [
    ("usage", ["--group-by", "client"], "groupBy=client"),
    ("reliability", ["--granularity", "hour", "--tz", "Asia/Kolkata", "--percentile", "p99"],
     "granularity=hour&tz=Asia/Kolkata&percentile=p99"),
])
def test_json_is_the_api_document(
    demo: Path, capsys: pytest.CaptureFixture[str], kind: str, extra: list[str], query: str,
) -> None:
    """`--json` prints what GET /orgs/{org}/{kind} returns for the same window (freshness,
    a moving clock, aside)."""
    cli = _cli_json(capsys, kind, "--org", ORG, *WINDOW, *extra)
    with Application(load_settings()) as app:
        client = falcon.testing.TestClient(create_app(app.http_api()))
        key = app.use_cases.create_api_key(None, ["admin"], "test")[0]
        api = client.simulate_get(
            f"/analytics/v1/orgs/{ORG}/{kind}",
            params={"start": START, "end": END,
                    **dict(pair.split("=") for pair in query.split("&"))},
            headers={"X-API-Key": key}).json
    cli.pop("freshness")
    api.pop("freshness")
    assert cli == api


def test_the_usage_table_names_models_and_ends_with_the_exact_total(
    demo: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Rows label models by name; the total row equals the JSON totals."""
    totals = _cli_json(capsys, "usage", "--org", ORG, *WINDOW)["totals"]
    assert isinstance(totals, dict)
    assert main(["usage", "--org", ORG, *WINDOW]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["period", "start"]
    assert any("Llama 3.1 70B Instruct" in line for line in lines[1:-1])
    total = lines[-1].split()
    assert total[0] == "total"
    assert total[1].replace(",", "") == str(totals["invocations"])
    assert total[-1] == totals["costEstimateCentsExact"]


def test_bad_arguments_exit_2_naming_each(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad org id and start are both named; a bad granularity lists the choices."""
    assert main(["usage", "--org", "x", "--start", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert "--org: must be a UUID" in err
    assert "--start: must be an RFC 3339 date-time" in err
    with pytest.raises(SystemExit):
        main(["usage", "--org", ORG, "--granularity", "weekly"])
    assert "choose from 'hour', 'day', 'month'" in capsys.readouterr().err


def test_usage_by_tag_with_top_on_the_command_line(
    migrated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With team as an attribution key, `usage --group-by tag:team --top 2` prints the API's
    document (two teams and (other), totals unchanged) and a table labelling (other)."""
    monkeypatch.setenv("ANALYTICS_ATTRIBUTION_KEYS", "team,feature")
    assert main(["demo", "--events", "1500", "--days", "3", "--no-progress"]) == 0
    cli = _cli_json(capsys, "usage", "--org", ORG, *WINDOW, "--group-by", "tag:team",
                    "--top", "2")
    whole = _cli_json(capsys, "usage", "--org", ORG, *WINDOW, "--group-by", "tag:team")
    with Application(load_settings()) as app:
        client = falcon.testing.TestClient(create_app(app.http_api()))
        key = app.use_cases.create_api_key(None, ["admin"], "test")[0]
        api = client.simulate_get(
            f"/analytics/v1/orgs/{ORG}/usage",
            params={"start": START, "end": END, "groupBy": "tag:team", "top": "2"},
            headers={"X-API-Key": key}).json
    for body in (cli, api, whole):
        body.pop("freshness")
    assert cli == api

    def exact(totals: object) -> dict[str, object]:  # rounded cents sum the rounded points
        assert isinstance(totals, dict)
        return {k: v for k, v in totals.items() if k not in ("costEstimateCents",
                                                               "catalogCostCents")}

    assert exact(cli["totals"]) == exact(whole["totals"])
    totals = whole["totals"]  # the demo's list prices price every demo event at ingest
    assert isinstance(totals, dict)
    assert totals["unpricedInvocations"] == 0
    assert totals["pricedInvocations"] == totals["invocations"] > 0
    assert Decimal(totals["catalogCostCentsExact"]) > 0
    assert Decimal(totals["catalogCostByCategory"]["cacheRead"]) > 0
    teams = {p["tagValue"] for p in cli["series"]}  # type: ignore[attr-defined]
    assert len(teams - {"(other)"}) == 2
    assert "(other)" in teams
    capsys.readouterr()
    assert main(["usage", "--org", ORG, *WINDOW, "--group-by", "tag:team", "--top", "2"]) == 0
    assert "(other)" in capsys.readouterr().out
    assert main(["usage", "--org", ORG, "--group-by", "tag:nope"]) == 2
    assert "tag:team, tag:feature" in capsys.readouterr().err
