"""Invoice reconciliation over HTTP (issue 17, SPEC §15): a synthetic invoice equal to the
metered usage except for three injected differences (a missing day, a renamed model, a 3 %
overcharge) flags exactly those lines, in the invoice's zone; the run is kept, listed, read
back and downloaded as CSV; bad files name every bad row; other orgs get 403."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import falcon.testing
import pytest

from tests.app.conftest import PREFIX, HeaderFactory

Ingest = Callable[[list[dict[str, Any]]], dict[str, Any]]
GPT, CLAUDE = uuid.UUID(int=1), uuid.UUID(int=2)
DAYS = (date(2024, 3, 11), date(2024, 3, 12), date(2024, 3, 13))
# Cents per event: two events per model and UTC day, at 20:00 and 20:30 UTC, which is 01:30 and
# 02:00 of the NEXT day in Asia/Kolkata (UTC+05:30).
COSTS = {GPT: (Decimal("12.5"), Decimal("7.25")), CLAUDE: (Decimal("100"), Decimal("0.0001"))}


@pytest.fixture
def metered(client: falcon.testing.TestClient, auth: HeaderFactory, ingest: Ingest,
            make_event: Any, org_a: uuid.UUID) -> dict[tuple[date, str], Decimal]:
    """Two named models with usage on three days; the metered USD per (Kolkata day, name)."""
    admin = auth(None, "admin")
    for model, name, alias in ((GPT, "gpt-4.1", "gpt-4.1-2025-04-14"),
                               (CLAUDE, "claude-sonnet", "anthropic.claude-sonnet-v1")):
        put = client.simulate_put(f"{PREFIX}/models/{model}", headers=admin,
                                  json={"name": name, "aliases": [alias]})
        assert put.status_code == 201, put.text
    events, usd = [], {}
    for day in DAYS:
        for model, name in ((GPT, "gpt-4.1"), (CLAUDE, "claude-sonnet")):
            for minute, cents in zip((0, 30), COSTS[model], strict=True):
                events.append(make_event(org_a, model, costEstimateCents=str(cents),
                                         occurredAt=f"{day}T20:{minute:02d}:00Z"))
            usd[(day + timedelta(days=1), name)] = sum(COSTS[model]) / 100
    ingest(events)
    return usd


def invoice(rows: list[tuple[str, str, str]], header: str = "day,model,cost") -> bytes:
    """A CSV report."""
    return ("\n".join([header, *(",".join(r) for r in rows)]) + "\n").encode()


def post(client: falcon.testing.TestClient, org: uuid.UUID, body: bytes,
         headers: dict[str, str], query: str = "tz=Asia/Kolkata&basis=reported",
         content_type: str = "text/csv") -> falcon.testing.Result:
    """POST a report."""
    return client.simulate_post(f"{PREFIX}/orgs/{org}/reconciliations", body=body,
                                query_string=query,
                                headers={**headers, "Content-Type": content_type})


def test_injected_differences_are_exactly_the_flagged_lines(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    metered: dict[tuple[date, str], Decimal],
) -> None:
    """Missing day, renamed model and a 3 % overcharge: exactly four flagged lines."""
    rows = []
    for (day, metered_name), metered_usd in sorted(metered.items()):
        name, usd = metered_name, metered_usd
        if (day, name) == (date(2024, 3, 13), "claude-sonnet"):
            continue  # (a) a missing day
        if (day, name) == (date(2024, 3, 14), "gpt-4.1"):
            name = "gpt-4.1-turbo-renamed"  # (b) a renamed model
        if (day, name) == (date(2024, 3, 12), "claude-sonnet"):
            usd *= Decimal("1.03")  # (c) a 3 % overcharge
        if name == "gpt-4.1" and day == date(2024, 3, 12):
            name = "GPT-4.1-2025-04-14"  # an alias, any case: still the same model
        rows.append((day.isoformat(), name, f"{usd:f}"))
    result = post(client, org_a, invoice(rows), admin_of_a,
                  "tz=Asia/Kolkata&basis=reported&tolerancePercent=1&name=march.csv")
    assert result.status_code == 201, result.text
    body = result.json
    assert result.headers["location"].endswith(body["reconciliationId"])
    assert (body["firstDay"], body["lastDay"], body["name"]) == ("2024-03-12", "2024-03-14",
                                                                 "march.csv")
    flagged = {(line["day"], line["model"], line["status"]) for line in body["lines"]
               if line["flagged"]}
    assert flagged == {
        ("2024-03-13", "claude-sonnet", "metered_only"),
        ("2024-03-14", "gpt-4.1-turbo-renamed", "invoiced_only"),
        ("2024-03-14", "gpt-4.1", "metered_only"),
        ("2024-03-12", "claude-sonnet", "over_tolerance"),
    }
    over = next(line for line in body["lines"] if line["status"] == "over_tolerance")
    assert over["variancePercent"] == "3.00"
    matched = [line for line in body["lines"] if line["status"] == "matched"]
    assert len(matched) == 3
    assert all(line["varianceUsd"] == "0.000000" for line in matched)
    assert body["flaggedCount"] == 4
    assert body["lineCount"] == 7
    assert Decimal(body["varianceUsd"]) == (Decimal(body["invoicedUsd"])
                                            - Decimal(body["meteredUsd"]))


def test_the_run_is_kept_listed_and_downloads_as_csv(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    auth: HeaderFactory, metered: dict[tuple[date, str], Decimal], org_b: uuid.UUID,
    problem: Any,
) -> None:
    """GET lists it; GET one returns the same lines (flagged=true only those); the CSV has one
    row per line; another org's admin gets 403 and an unknown id is 404."""
    rows = [(d.isoformat(), n, f"{usd:f}") for (d, n), usd in metered.items()]
    rows[0] = (rows[0][0], rows[0][1], "999")
    created = post(client, org_a, invoice(rows), admin_of_a).json
    url = f"{PREFIX}/orgs/{org_a}/reconciliations"
    listed = client.simulate_get(url, headers=admin_of_a).json
    assert [r["reconciliationId"] for r in listed["reconciliations"]] == [
        created["reconciliationId"]]
    assert "lines" not in listed["reconciliations"][0]
    one = client.simulate_get(f"{url}/{created['reconciliationId']}", headers=admin_of_a).json
    assert one == created
    only = client.simulate_get(f"{url}/{created['reconciliationId']}",
                               query_string="flagged=true", headers=admin_of_a).json
    assert [line["flagged"] for line in only["lines"]] == [True]
    download = client.simulate_get(f"{url}/{created['reconciliationId']}/csv",
                                   headers=admin_of_a)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(download.text)))
    assert len(table) == created["lineCount"]
    assert {r["timezone"] for r in table} == {"Asia/Kolkata"}
    assert [r["variance_usd"] for r in table] == [line["varianceUsd"]
                                                  for line in created["lines"]]
    other = auth(org_b, "org_admin")
    problem(client.simulate_get(url, headers=other), 403)
    problem(client.simulate_get(f"{url}/{created['reconciliationId']}/csv", headers=other), 403)
    problem(post(client, org_a, invoice(rows), other), 403)
    problem(client.simulate_get(f"{PREFIX}/orgs/{org_b}/reconciliations/"
                                f"{created['reconciliationId']}", headers=other), 404)


def test_a_provider_export_maps_its_columns_and_cents(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    metered: dict[tuple[date, str], Decimal],
) -> None:
    """Other headers, costs in cents and US dates, through the mapping parameters."""
    rows = [(f"{d:%m/%d/%Y}", n, f"{usd * 100:f}") for (d, n), usd in metered.items()]
    body = invoice(rows, header="Usage Date,SKU,Amount (cents)")
    query = ("tz=Asia/Kolkata&basis=reported&map.day=usage%20date&map.model=SKU"
             "&map.cost=Amount%20(cents)&costUnit=cents&dayFormat=%25m/%25d/%25Y")
    result = post(client, org_a, body, admin_of_a, query)
    assert result.status_code == 201, result.text
    assert result.json["flaggedCount"] == 0
    assert result.json["mapping"]["costUnit"] == "cents"


def test_bad_files_and_parameters_name_each_problem(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    problem: Any,
) -> None:
    """Every bad row is named; bad parameters too; JSON is 415; nothing is kept."""
    bad = invoice([("2024-03-12", "gpt-4.1", "\"1,234.50\""), ("2024-02-30", "gpt-4.1", "1"),
                   ("2024-03-12", "", "x")])
    fields = {e["field"] for e in problem(post(client, org_a, bad, admin_of_a), 400)["errors"]}
    assert {"row 2: cost", "row 3: day", "row 4: model", "row 4: cost"} <= fields
    params = problem(post(client, org_a, invoice([]), admin_of_a,
                          "tz=Mars/Base&tolerancePercent=lots&basis=guess&costUnit=euro"), 400)
    assert {"tz", "tolerancePercent", "basis", "costUnit"} <= {
        e["field"] for e in params["errors"]}
    problem(post(client, org_a, b"", admin_of_a), 400)
    problem(post(client, org_a, b'{"day": 1}', admin_of_a, content_type="application/json"),
            415)
    listed = client.simulate_get(f"{PREFIX}/orgs/{org_a}/reconciliations", headers=admin_of_a)
    assert listed.json["reconciliations"] == []


def test_the_catalog_basis_compares_with_the_catalog_cost(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    auth: HeaderFactory, ingest: Ingest, make_event: Any,
) -> None:
    """By default the invoice meets the catalog cost: a priced model matches at its catalog
    price whatever the producers reported; an unpriced one meters zero and is flagged."""
    admin = auth(None, "admin")
    price = {"modelId": str(GPT), "effectiveFrom": "2024-01-01T00:00:00Z", "restate": True,
             "prices": {"input": "1000", "output": "0"}}  # 10 input tokens: 1 cent an event
    added = client.simulate_post(f"{PREFIX}/prices", json={"versions": [price]}, headers=admin)
    assert added.status_code == 201, added.text
    ingest([make_event(org_a, model, costEstimateCents="55", inputTokens=10,
                       occurredAt=f"2024-03-12T0{hour}:00:00Z")
            for model in (GPT, CLAUDE) for hour in (1, 2)])
    rows = [("2024-03-12", str(GPT), "0.02"), ("2024-03-12", str(CLAUDE), "1.10")]
    result = post(client, org_a, invoice(rows), admin_of_a, "tolerancePercent=0")
    assert result.status_code == 201, result.text
    body = result.json
    assert body["basis"] == "catalog"
    assert [(line["modelId"], line["status"], line["meteredUsd"]) for line in body["lines"]] == [
        (str(GPT), "matched", "0.020000"), (str(CLAUDE), "over_tolerance", "0.000000")]
