"""The names registry over HTTP (issue 21): models named by admin, client names per org, names
beside the ids in usage, reliability and freshness; renaming never changes a number."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from typing import Any

import falcon.testing

from analytics_app.bootstrap.ports import Ports
from analytics_core.usecases.export_runner import ExportRunner
from tests.app.conftest import PREFIX, HeaderFactory

Problem = Callable[[falcon.testing.Result, int], dict[str, Any]]
WINDOW = {"start": "2024-03-14T00:00:00Z", "end": "2024-03-16T00:00:00Z"}


def _put_model(client: falcon.testing.TestClient, headers: dict[str, str], model: uuid.UUID,
               **body: Any) -> falcon.testing.Result:
    return client.simulate_put(f"{PREFIX}/models/{model}", json=body, headers=headers)


def test_admin_registers_then_renames_a_model_and_anyone_signed_in_reads_it(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
) -> None:
    """PUT is 201 then 200; GET /models and GET /models/{id} return the entry to any caller."""
    admin, model = auth(None, "admin"), uuid.uuid4()
    created = _put_model(client, admin, model, name=" gpt-4.1-mini ", provider="openai",
                         family="gpt-4.1", aliases=["gpt-4.1-mini-2025-04-14"])
    assert created.status_code == 201, created.text
    assert created.json == {"modelId": str(model), "name": "gpt-4.1-mini", "provider": "openai",
                            "family": "gpt-4.1", "aliases": ["gpt-4.1-mini-2025-04-14"]}
    renamed = _put_model(client, admin, model, name="GPT-4.1 mini")
    assert renamed.status_code == 200
    one = client.simulate_get(f"{PREFIX}/models/{model}", headers=admin_of_a)
    assert one.json == {"modelId": str(model), "name": "GPT-4.1 mini", "provider": "",
                        "family": "", "aliases": []}
    listed = client.simulate_get(f"{PREFIX}/models", headers=admin_of_a).json["models"]
    assert [m["name"] for m in listed if m["modelId"] == str(model)] == ["GPT-4.1 mini"]


def test_only_admin_writes_models(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], problem: Problem,
) -> None:
    """An org_admin may read but not register or remove a model: 403."""
    model = uuid.uuid4()
    problem(_put_model(client, admin_of_a, model, name="mine"), 403)
    problem(client.simulate_delete(f"{PREFIX}/models/{model}", headers=admin_of_a), 403)
    problem(client.simulate_get(f"{PREFIX}/models/{model}", headers=admin_of_a), 404)


def test_an_alias_that_names_another_model_is_a_409_naming_it(
    client: falcon.testing.TestClient, auth: HeaderFactory, problem: Problem,
) -> None:
    """Labels are unique across models, compared case-insensitively; nothing is stored."""
    admin, first, second = auth(None, "admin"), uuid.uuid4(), uuid.uuid4()
    assert _put_model(client, admin, first, name="llama-3.3-70b",
                      aliases=["meta-llama/Llama-3.3-70B"]).status_code == 201
    body = problem(_put_model(client, admin, second, name="llama-3.3-70b (self-hosted)",
                              aliases=["META-LLAMA/llama-3.3-70b"]), 409)
    assert str(first) in body["detail"]
    assert client.simulate_get(f"{PREFIX}/models/{second}", headers=admin).status_code == 404


def test_a_bad_model_body_is_a_400_naming_each_field(
    client: falcon.testing.TestClient, auth: HeaderFactory, problem: Problem,
) -> None:
    """Empty name, non-string provider and a repeated alias are each named."""
    body = problem(_put_model(client, auth(None, "admin"), uuid.uuid4(), name=" ",
                              provider=7, aliases=["a", "A"]), 400)
    assert {e["field"] for e in body["errors"]} == {"name", "provider", "aliases[1]"}


def test_usage_and_reliability_points_carry_names_and_renaming_changes_no_number(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, make_event: Any, ingest: Any,
) -> None:
    """modelName sits beside modelId (null when unregistered); after a rename the names
    change and every number stays."""
    named, unnamed = uuid.uuid4(), uuid.uuid4()
    ingest([make_event(org_a, named), make_event(org_a, named), make_event(org_a, unnamed)])
    admin = auth(None, "admin")
    assert _put_model(client, admin, named, name="claude-sonnet").status_code == 201

    def usage() -> dict[str, Any]:
        result = client.simulate_get(f"{PREFIX}/orgs/{org_a}/usage", headers=admin_of_a,
                                     params=WINDOW)
        assert result.status_code == 200, result.text
        body: dict[str, Any] = result.json
        return body

    before = usage()
    names = {p["modelId"]: p["modelName"] for p in before["series"]}
    assert names == {str(named): "claude-sonnet", str(unnamed): None}
    assert _put_model(client, admin, named, name="claude-sonnet-4").status_code == 200
    after = usage()
    assert {p["modelName"] for p in after["series"]} == {"claude-sonnet-4", None}
    strip = [{k: v for k, v in p.items() if k != "modelName"} for p in after["series"]]
    assert strip == [{k: v for k, v in p.items() if k != "modelName"} for p in before["series"]]
    assert after["totals"] == before["totals"]
    reliability = client.simulate_get(f"{PREFIX}/orgs/{org_a}/reliability",
                                      headers=admin_of_a, params=WINDOW).json
    assert {p["modelName"] for p in reliability["series"]} == {"claude-sonnet-4", None}
    freshness = client.simulate_get(f"{PREFIX}/orgs/{org_a}/freshness", headers=admin_of_a).json
    assert {e["modelId"]: e["modelName"] for e in freshness["entries"]} == {
        str(named): "claude-sonnet-4", str(unnamed): None}


def test_client_names_label_usage_and_are_invisible_to_other_orgs(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, org_b: uuid.UUID, make_event: Any, ingest: Any, problem: Problem,
) -> None:
    """Org A names its client; A's usage by client shows it; org B sees neither the name nor
    A's list (403), and B's own list is empty."""
    ingest([make_event(org_a, clientId="svc-search"), make_event(org_a, clientId="svc-x")])
    put = client.simulate_put(f"{PREFIX}/orgs/{org_a}/clients/svc-search",
                              json={"name": "Search"}, headers=admin_of_a)
    assert put.status_code == 200, put.text
    listed = client.simulate_get(f"{PREFIX}/orgs/{org_a}/clients", headers=admin_of_a).json
    assert listed == {"orgId": str(org_a), "clients": [{"clientId": "svc-search",
                                                        "name": "Search"}]}
    by_client = client.simulate_get(f"{PREFIX}/orgs/{org_a}/usage", headers=admin_of_a,
                                    params={**WINDOW, "groupBy": "client"}).json
    assert {p["clientId"]: p["clientName"] for p in by_client["series"]} == {
        "svc-search": "Search", "svc-x": None}
    admin_of_b = auth(org_b, "org_admin")
    problem(client.simulate_get(f"{PREFIX}/orgs/{org_a}/clients", headers=admin_of_b), 403)
    problem(client.simulate_put(f"{PREFIX}/orgs/{org_a}/clients/svc-x", json={"name": "B"},
                                headers=admin_of_b), 403)
    own = client.simulate_get(f"{PREFIX}/orgs/{org_b}/clients", headers=admin_of_b).json
    assert own["clients"] == []


def test_naming_a_client_needs_the_write_grant_and_delete_forgets_it(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, problem: Problem,
) -> None:
    """A usage reader may list but not name (403); delete is 204, then 404."""
    reader = auth(org_a, "analytics:usage:read")
    url = f"{PREFIX}/orgs/{org_a}/clients/app-1"
    problem(client.simulate_put(url, json={"name": "App"}, headers=reader), 403)
    assert client.simulate_get(f"{PREFIX}/orgs/{org_a}/clients", headers=reader).status_code == 200
    assert client.simulate_put(url, json={"name": "App"}, headers=admin_of_a).status_code == 200
    assert client.simulate_delete(url, headers=admin_of_a).status_code == 204
    problem(client.simulate_delete(url, headers=admin_of_a), 404)



def _export_rows(client: falcon.testing.TestClient, headers: dict[str, str], org: uuid.UUID,
                 runner: ExportRunner, kind: str) -> list[dict[str, str]]:
    url = f"{PREFIX}/orgs/{org}/exports"
    body = {"timeRange": {"start": "2024-03-15T00:00:00Z", "end": "2024-03-16T00:00:00Z"},
            "granularity": "daily", "kind": kind}
    job_id = client.simulate_post(url, json=body, headers=headers).json["jobId"]
    runner.run_next()
    download = client.simulate_get(f"{url}/{job_id}/download", headers=headers)
    assert download.status_code == 200, download.text
    return list(csv.DictReader(io.StringIO(download.text)))


def test_exports_carry_names_in_the_last_columns_and_a_rename_shows_in_new_exports_only(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, make_event: Any, ingest: Any, services: Ports,
) -> None:
    """Usage rows gain model_name, event rows model_name and client_name (empty when
    unnamed, formula text neutralised); renaming changes the names, never the numbers."""
    runner = ExportRunner("w", services.uow_factory, services.objects, services.clock,
                          services.progress, services.exports)
    model = uuid.uuid4()
    ingest([make_event(org_a, model, occurredAt="2024-03-15T08:00:00Z", clientId="app"),
            make_event(org_a, occurredAt="2024-03-15T09:00:00Z")])
    admin = auth(None, "admin")
    assert _put_model(client, admin, model, name="=cmd|calc").status_code == 201
    assert client.simulate_put(f"{PREFIX}/orgs/{org_a}/clients/app", json={"name": "Our app"},
                               headers=admin_of_a).status_code == 200
    usage = _export_rows(client, admin_of_a, org_a, runner, "usage")
    assert list(usage[0])[13] == "model_name"  # after the first columns, before later ones
    assert sorted(r["model_name"] for r in usage) == ["", "'=cmd|calc"]
    events = _export_rows(client, admin_of_a, org_a, runner, "events")
    assert {(r["model_name"], r["client_name"]) for r in events} == {
        ("'=cmd|calc", "Our app"), ("", "")}
    assert _put_model(client, admin, model, name="renamed").status_code == 200
    again = _export_rows(client, admin_of_a, org_a, runner, "usage")
    assert sorted(r["model_name"] for r in again) == ["", "renamed"]
    numbers = [{k: v for k, v in r.items() if k != "model_name"} for r in again]
    assert numbers == [{k: v for k, v in r.items() if k != "model_name"} for r in usage]
