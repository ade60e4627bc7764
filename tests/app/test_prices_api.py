"""The price catalog over the API (SPEC §12): admin manages /prices, events get their catalog
cost at ingest, bad input names every field and stores nothing, repricing is a restatement an
org can read, and another org's negotiated rates stay invisible."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import falcon.testing

from analytics_adapters.memory import ManualClock
from analytics_app.bootstrap.ports import Ports
from analytics_app.bootstrap.use_cases import UseCases
from tests.app.conftest import NOW, PREFIX, HeaderFactory

DAY = {"start": "2024-03-15T00:00:00Z", "end": "2024-03-16T00:00:00Z", "granularity": "day"}


def _price(model: uuid.UUID | str, start: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"effectiveFrom": start,
                            "prices": {"input": "0.15", "output": "0.60", "cacheRead": "0.075"}}
    body["model" if isinstance(model, str) else "modelId"] = str(model)
    body.update(overrides)
    return body


def _post(client: falcon.testing.TestClient, headers: dict[str, str], *versions: Any
          ) -> falcon.testing.Result:
    return client.simulate_post(f"{PREFIX}/prices", json={"versions": list(versions)},
                                headers=headers)


def _usage(client: falcon.testing.TestClient, headers: dict[str, str], org: uuid.UUID
           ) -> dict[str, Any]:
    result = client.simulate_get(f"{PREFIX}/orgs/{org}/usage", headers=headers, params=DAY)
    assert result.status_code == 200, result.text
    body: dict[str, Any] = result.json
    return body


def test_events_get_their_catalog_cost_beside_the_reported_one(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, make_event: Any, ingest: Any,
) -> None:
    """1,000 input (400 cached) and 500 output tokens at 0.15/0.075/0.60 USD per million cost
    0.042 cents; an event of an unpriced model counts as unpriced; the version is listed."""
    admin = auth(None, "admin")
    model, unpriced = uuid.uuid4(), uuid.uuid4()
    added = _post(client, admin, _price(model, "2024-03-15T12:00:00Z"))
    assert added.status_code == 201, added.text
    version_id = added.json["versions"][0]["versionId"]
    assert added.json["restatements"] == []  # it starts in the future of NOW
    later = (NOW + timedelta(minutes=1)).isoformat()
    ingest([make_event(org_a, model, occurredAt=later, inputTokens=1000, outputTokens=500,
                       tokenDetails={"cacheReadTokens": 400}, costEstimateCents="0.05"),
            make_event(org_a, unpriced, occurredAt=later)])
    totals = _usage(client, admin_of_a, org_a)["totals"]
    assert totals["catalogCostCentsExact"] == "0.0420"
    assert totals["catalogCostByCategory"] == {
        "input": "0.0090", "cacheRead": "0.0030", "cacheWrite": "0.0000",
        "audioInput": "0.0000", "output": "0.0300", "reasoning": "0.0000",
        "audioOutput": "0.0000"}
    assert totals["costEstimateCentsExact"] == "1.5500"
    assert (totals["pricedInvocations"], totals["unpricedInvocations"]) == (1, 1)
    versions = _usage(client, admin_of_a, org_a)["priceVersions"]
    assert [v["versionId"] for v in versions] == [version_id]


def test_bad_versions_name_every_field_and_store_nothing(
    client: falcon.testing.TestClient, auth: HeaderFactory,
) -> None:
    """Negative and over-precise prices, a missing output price, an unknown model name, a
    backdated version without restate, and two versions starting at one instant: one 400
    naming each, and the good version beside them is not stored either."""
    admin = auth(None, "admin")
    model = uuid.uuid4()
    result = _post(
        client, admin,
        _price(model, "2024-04-01T00:00:00Z"),
        _price(model, "2024-04-02T00:00:00Z", prices={"input": "-1", "output": "0.1234567"}),
        _price(model, "2024-04-03T00:00:00Z", prices={"input": "1"}),
        _price("no-such-model-name", "2024-04-04T00:00:00Z"),
        _price(model, "2024-01-01T00:00:00Z"),
        _price(model, "2024-04-01T00:00:00Z", note="same start as the first"),
    )
    assert result.status_code == 400, result.text
    fields = {e["field"] for e in result.json["errors"]}
    assert fields == {"versions[1].prices.input", "versions[1].prices.output",
                      "versions[2].prices.output", "versions[3].model",
                      "versions[4].restate", "versions[5].effectiveFrom"}
    listed = client.simulate_get(f"{PREFIX}/prices", headers=admin,
                                 params={"modelId": str(model)})
    assert listed.json["versions"] == []


def test_only_admin_manages_prices_and_orgs_never_see_other_orgs_overrides(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, org_b: uuid.UUID,
) -> None:
    """An org_admin gets 403 on /prices; /orgs/{org}/prices lists global versions and the
    org's own override, never another org's; reading another org's prices is 403."""
    admin = auth(None, "admin")
    model = uuid.uuid4()
    assert _post(client, admin_of_a, _price(model, "2024-04-01T00:00:00Z")).status_code == 403
    assert client.simulate_get(f"{PREFIX}/prices", headers=admin_of_a).status_code == 403
    created = _post(client, admin, _price(model, "2024-04-01T00:00:00Z"),
                    _price(model, "2024-04-01T00:00:00Z", orgId=str(org_a),
                           prices={"input": "0.10", "output": "0.40"}),
                    _price(model, "2024-04-01T00:00:00Z", orgId=str(org_b),
                           prices={"input": "0.01", "output": "0.04"}))
    assert created.status_code == 201, created.text
    mine = client.simulate_get(f"{PREFIX}/orgs/{org_a}/prices", headers=admin_of_a)
    assert mine.status_code == 200
    assert sorted(str(v["orgId"]) for v in mine.json["versions"]
                  if v["modelId"] == str(model)) == sorted(["None", str(org_a)])
    theirs = client.simulate_get(f"{PREFIX}/orgs/{org_b}/prices", headers=admin_of_a)
    assert theirs.status_code == 403


def test_a_backdated_correction_restates_exactly_and_the_org_reads_the_delta(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, make_event: Any, ingest: Any, services: Ports, clock: ManualClock,
) -> None:
    """Correcting a past price reprices exactly the events it covered: usage shows the new
    catalog cost, and /restatements the delta per model and day (new minus old), with who
    and when; the old version is marked superseded."""
    admin = auth(None, "admin")
    model = uuid.uuid4()
    first = _post(client, admin, _price(model, "2024-03-15T00:00:00Z", restate=True))
    assert first.status_code == 201, first.text
    old_id = first.json["versions"][0]["versionId"]
    ingest([make_event(org_a, model, occurredAt="2024-03-15T08:00:00Z", inputTokens=2_000_000,
                       outputTokens=0)] * 1
           + [make_event(org_a, model, occurredAt="2024-03-15T09:00:00Z",
                         inputTokens=1_000_000, outputTokens=1_000_000)])
    before = Decimal(_usage(client, admin_of_a, org_a)["totals"]["catalogCostCentsExact"])
    assert before == Decimal("105.0000")  # 3M input at 0.15 + 1M output at 0.60 USD/M
    fix = _post(client, admin, _price(model, "2024-03-15T00:00:00Z", supersedes=old_id,
                                      restate=True,
                                      prices={"input": "0.30", "output": "0.60"}))
    assert fix.status_code == 201, fix.text
    (restatement,) = fix.json["restatements"]
    assert restatement["supersedes"] == old_id
    clock.advance(timedelta(seconds=11))
    assert UseCases(services).run_restatements() >= 1
    after = Decimal(_usage(client, admin_of_a, org_a)["totals"]["catalogCostCentsExact"])
    assert after == Decimal("150.0000")
    listed = client.simulate_get(f"{PREFIX}/orgs/{org_a}/restatements", headers=admin_of_a)
    assert listed.status_code == 200
    done = next(r for r in listed.json["restatements"]
                if r["restatementId"] == restatement["restatementId"])
    assert done["status"] == "succeeded"
    assert done["eventsRepriced"] == 2
    assert done["createdBy"]
    assert [(d["day"], d["events"], d["deltaCents"]) for d in done["deltas"]] == [
        ("2024-03-15", 2, f"{after - before:.4f}")]
    old = client.simulate_get(f"{PREFIX}/prices/{old_id}", headers=admin)
    assert old.json["supersededBy"] == fix.json["versions"][0]["versionId"]
    history = client.simulate_get(f"{PREFIX}/prices", headers=admin,
                                  params={"modelId": str(model), "history": "true"})
    assert len(history.json["versions"]) == 2
    live = client.simulate_get(f"{PREFIX}/prices", headers=admin, params={"modelId": str(model)})
    assert [v["versionId"] for v in live.json["versions"]] == [
        fix.json["versions"][0]["versionId"]]


def test_usage_exports_carry_the_catalog_cost(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, make_event: Any, ingest: Any, services: Ports,
) -> None:
    """The usage CSV ends with catalog_cost_cents and unpriced_invocations; the manifest
    totals carry them too."""
    import csv  # noqa: PLC0415
    import io  # noqa: PLC0415
    import json  # noqa: PLC0415

    from analytics_core.usecases.export_runner import ExportRunner  # noqa: PLC0415

    model = uuid.uuid4()
    assert _post(client, auth(None, "admin"),
                 _price(model, "2024-03-15T12:00:00Z")).status_code == 201
    later = (NOW + timedelta(minutes=1)).isoformat()
    ingest([make_event(org_a, model, occurredAt=later, inputTokens=1000, outputTokens=500),
            make_event(org_a, model, occurredAt="2024-03-15T08:00:00Z")])  # before the price
    url = f"{PREFIX}/orgs/{org_a}/exports"
    body = {"timeRange": {"start": "2024-03-15T00:00:00Z", "end": "2024-03-16T00:00:00Z"},
            "granularity": "daily", "kind": "usage"}
    job_id = client.simulate_post(url, json=body, headers=admin_of_a).json["jobId"]
    ExportRunner("w", services.uow_factory, services.objects, services.clock,
                 services.progress, services.exports).run_next()
    text = client.simulate_get(f"{url}/{job_id}/download", headers=admin_of_a).text
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert list(row)[-2:] == ["catalog_cost_cents", "unpriced_invocations"]
    assert (row["catalog_cost_cents"], row["unpriced_invocations"]) == ("0.0450", "1")
    with services.uow_factory() as uow:
        key = uow.exports.get(org_a, uuid.UUID(job_id)).object_key  # type: ignore[union-attr]
    manifest = json.loads(b"".join(services.objects.open(
        key.removesuffix(".csv") + ".manifest.json")))  # type: ignore[union-attr]
    assert manifest["totals"]["catalogCostCents"] == "0.0450"
