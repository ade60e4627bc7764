"""POST /events and /events/validate (SPEC §2, §5) with per-org authorization."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import falcon.testing
import pytest

from analytics_core.ports import UnitOfWorkFactory

PREFIX = "/analytics/v1"
DAY_BEFORE = datetime(2024, 3, 14, tzinfo=UTC)
DAY_AFTER = datetime(2024, 3, 16, tzinfo=UTC)


def _post(client: falcon.testing.TestClient, path: str, body: Any,
          headers: dict[str, str]) -> Any:
    return client.simulate_post(f"{PREFIX}/{path}", json=body, headers=headers)


def test_batch_reports_one_result_per_input_in_order(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    make_event: Any,
) -> None:
    """Accepted, in-batch duplicate and rejected events each get their result and index."""
    good = make_event(org_a)
    bad = make_event(org_a, latencyMs=-1)
    result = _post(client, "events", {"events": [good, good, bad]}, admin_of_a)
    assert result.status_code == 202
    body = result.json
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 1, 1)
    assert [(r["index"], r["status"]) for r in body["results"]] == [
        (0, "accepted"), (1, "duplicate"), (2, "rejected")
    ]
    assert body["results"][2]["errors"] == [
        {"field": "latencyMs", "reason": "must be an integer >= 0"}
    ]
    assert body["results"][0]["eventId"] == good["eventId"]


def test_redelivered_batch_counts_once_and_flags_conflicts(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    make_event: Any,
) -> None:
    """A replay is all duplicates; a changed duplicate is marked as a conflict."""
    event = make_event(org_a)
    _post(client, "events", {"events": [event]}, admin_of_a)
    changed = {**event, "inputTokens": 999}
    body = _post(client, "events", {"events": [event, changed]}, admin_of_a).json
    assert body["duplicates"] == 2
    assert [r.get("conflict", False) for r in body["results"]] == [False, True]


def test_snake_case_events_are_accepted(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
) -> None:
    """snake_case keys are the same contract."""
    event = {
        "event_id": str(uuid.uuid4()), "org_id": str(org_a), "model_id": str(uuid.uuid4()),
        "occurred_at": "2024-03-15T11:00:00+01:00", "status": "throttled", "latency_ms": 0,
        "input_tokens": 0, "output_tokens": 0, "cost_estimate_cents": 0,
    }
    assert _post(client, "events", {"events": [event]}, admin_of_a).json["accepted"] == 1


def test_rejected_http_event_is_dead_lettered(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    uow_factory: UnitOfWorkFactory,
) -> None:
    """An invalid event is kept as a dead letter with its raw payload, not dropped."""
    _post(client, "events", {"events": [{"orgId": str(org_a), "status": "bogus"}]}, admin_of_a)
    with uow_factory() as uow:
        [letter] = uow.dead_letters.recent(org_a)
    assert letter.source == "http"
    assert b"bogus" in letter.raw


def test_any_event_of_another_org_makes_the_batch_403_and_stores_nothing(
    client: falcon.testing.TestClient, org_a: uuid.UUID, org_b: uuid.UUID,
    admin_of_a: dict[str, str], make_event: Any, audit: Any, uow_factory: UnitOfWorkFactory,
    problem: Any,
) -> None:
    """A non-admin cannot write into another org: 403 for all, audited on the other org."""
    mine = make_event(org_a)
    theirs = json.dumps(make_event(org_b))  # string-encoded events are checked too
    problem(_post(client, "events", {"events": [mine, theirs]}, admin_of_a), 403)
    assert [e.outcome.value for e in audit(org_b)] == ["denied"]
    with uow_factory() as uow:
        assert list(uow.events.scan(org_a, DAY_BEFORE, DAY_AFTER)) == []


def test_admin_may_ingest_for_several_orgs_and_each_is_audited_cross_org(
    client: falcon.testing.TestClient, org_a: uuid.UUID, org_b: uuid.UUID, auth: Any,
    make_event: Any, audit: Any,
) -> None:
    """A platform admin writes to any org; each org gets a cross_org audit entry."""
    events = [make_event(org_a), make_event(org_b), make_event(org_b)]
    body = _post(client, "events", {"events": events}, auth(None, "admin")).json
    assert body["accepted"] == 3
    assert [e.cross_org for e in audit(org_a)] == [True]
    assert [e.cross_org for e in audit(org_b)] == [True]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "events"), ({"events": {}}, "events"), ([], "body"), ("x", "body")],
)
def test_malformed_batches_are_400_naming_the_field(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], problem: Any, body: Any,
    field: str,
) -> None:
    """The body must be {"events": [...]}."""
    result = problem(_post(client, "events", body, admin_of_a), 400)
    assert result["errors"][0]["field"] == field


def test_more_than_5000_events_is_413_naming_events(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], problem: Any
) -> None:
    """The batch limit is a 413 whose errors name `events`."""
    body = problem(_post(client, "events", {"events": [{}] * 5001}, admin_of_a), 413)
    assert body["errors"][0]["field"] == "events"


def test_validate_is_204_for_a_valid_event(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    make_event: Any, uow_factory: UnitOfWorkFactory,
) -> None:
    """A valid event validates with 204 and is not stored."""
    event = make_event(org_a)
    result = _post(client, "events/validate", event, admin_of_a)
    assert result.status_code == 204
    with uow_factory() as uow:
        assert uow.events.fingerprints([(org_a, uuid.UUID(event["eventId"]))]) == {}


def test_validate_is_400_naming_every_bad_field(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    make_event: Any, problem: Any,
) -> None:
    """Each invalid field appears in errors[]."""
    event = make_event(org_a, status="meh", occurredAt="2030-01-01T00:00:00Z",
                       costEstimateCents=-1)
    body = problem(_post(client, "events/validate", event, admin_of_a), 400)
    assert {e["field"] for e in body["errors"]} == {"status", "occurredAt", "costEstimateCents"}


def test_validate_needs_events_write(
    client: falcon.testing.TestClient, org_a: uuid.UUID, auth: Any, make_event: Any,
    problem: Any,
) -> None:
    """events:write is the permission for validation too."""
    headers = auth(org_a, "analytics:events:write")
    assert _post(client, "events/validate", make_event(org_a), headers).status_code == 204
    problem(_post(client, "events/validate", make_event(org_a),
                  auth(org_a, "analytics:usage:read")), 403)


def test_events_with_lone_surrogates_are_rejected_naming_the_field_not_a_500(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    make_event: Any,
) -> None:
    """`\\ud800` escapes in the JSON body: those events are rejected by field, the rest stored."""
    good = make_event(org_a)
    bad_client = make_event(org_a, clientId="web-\ud800")
    bad_metadata = make_event(org_a, metadata={"trace": "\udfff"})
    text = json.dumps({"events": [bad_client, good, bad_metadata]})  # ASCII, \ud800 escapes
    assert "\\ud800" in text
    result = client.simulate_post(f"{PREFIX}/events", body=text.encode(),
                                  headers={**admin_of_a, "Content-Type": "application/json"})
    assert result.status_code == 202, result.text
    body = result.json
    assert (body["accepted"], body["rejected"]) == (1, 2)
    assert [r["errors"][0]["field"] for r in body["results"] if r["status"] == "rejected"] == [
        "clientId", "metadata"]
