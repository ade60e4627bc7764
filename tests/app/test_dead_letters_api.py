"""Dead letters and the audit log over HTTP (issue 17): list with filters and a cursor, one
letter with its message, the raw bytes, re-drive after a fix, org scoping and audit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import falcon.testing
import pytest

from analytics_adapters.memory.clock import ManualClock
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.records import AuditEntry, DeadLetter
from tests.app.conftest import NOW, PREFIX, HeaderFactory

Ingest = Callable[[list[dict[str, Any]]], dict[str, Any]]


def letters_url(org: uuid.UUID) -> str:
    """The org's dead-letters collection."""
    return f"{PREFIX}/orgs/{org}/dead-letters"


def stored_letters(uow_factory: UnitOfWorkFactory, org: uuid.UUID) -> list[DeadLetter]:
    """The org's letters as stored, newest first."""
    with uow_factory() as uow:
        return uow.dead_letters.recent(org)


@pytest.fixture
def future_event(make_event: Any, org_a: uuid.UUID) -> dict[str, Any]:
    """An event from a producer whose clock runs 20 minutes ahead: rejected now, valid later."""
    return make_event(org_a, occurredAt=(NOW + timedelta(minutes=20)).isoformat())


def test_a_rejected_event_is_listed_shown_and_downloaded_byte_for_byte(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    ingest: Ingest, make_event: Any, future_event: dict[str, Any],
    uow_factory: UnitOfWorkFactory,
) -> None:
    """The list shows why and when (no bytes); the letter shows the message; /raw is the bytes
    as received, as an attachment."""
    ingest([future_event, make_event(org_a, latencyMs=-1)])
    listed = client.simulate_get(letters_url(org_a), headers=admin_of_a)
    assert listed.status_code == 200, listed.text
    letters = listed.json["deadLetters"]
    assert len(letters) == 2
    assert listed.json["nextCursor"] is None
    assert {"raw"} & set(letters[0]) == set()
    by_reason = {("occurredAt" in d["reason"]): d for d in letters}
    future = by_reason[True]
    assert future["orgId"] == str(org_a)
    assert future["source"] == "http"
    assert future["redrive"] is None
    [stored] = [d for d in stored_letters(uow_factory, org_a)
                if str(d.dead_letter_id) == future["deadLetterId"]]
    assert future["sizeBytes"] == len(stored.raw)

    one = client.simulate_get(f"{letters_url(org_a)}/{future['deadLetterId']}",
                              headers=admin_of_a)
    assert one.status_code == 200
    assert one.json["raw"] == {"encoding": "utf-8", "data": stored.raw.decode()}
    raw = client.simulate_get(f"{letters_url(org_a)}/{future['deadLetterId']}/raw",
                              headers=admin_of_a)
    assert raw.status_code == 200
    assert raw.content == stored.raw
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"].startswith("attachment;")
    assert f"{future['deadLetterId']}.json" in raw.headers["content-disposition"]


def test_filters_and_cursor_pages(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    ingest: Ingest, make_event: Any, clock: ManualClock,
) -> None:
    """reason (any case), since/until and pages of 2 that walk every letter once."""
    for latency in (-1, -2, -3):
        ingest([make_event(org_a, latencyMs=latency)])
        clock.advance(timedelta(seconds=1))
    ingest([make_event(org_a, inputTokens="many")])
    seen: list[str] = []
    cursor = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.simulate_get(letters_url(org_a), query_string=query,
                                   headers=admin_of_a).json
        seen += [d["deadLetterId"] for d in page["deadLetters"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 4
    latency = client.simulate_get(letters_url(org_a), query_string="reason=LATENCYMS",
                                  headers=admin_of_a).json["deadLetters"]
    assert len(latency) == 3
    assert all("latencyMs" in d["reason"] for d in latency)
    since = (NOW + timedelta(seconds=1)).isoformat().replace("+", "%2B")
    until = (NOW + timedelta(seconds=3)).isoformat().replace("+", "%2B")
    window = client.simulate_get(letters_url(org_a), query_string=f"since={since}&until={until}",
                                 headers=admin_of_a).json["deadLetters"]
    assert len(window) == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("status=closed", "status"), ("since=yesterday", "since"),
     ("since=2024-03-15T00:00:00Z&until=2024-03-14T00:00:00Z", "until"),
     ("reason=" + "x" * 201, "reason"), ("cursor=%%%", "cursor")],
)
def test_bad_list_parameters_are_400_naming_the_field(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    problem: Any, query: str, field: str,
) -> None:
    """Each bad parameter is named."""
    body = problem(client.simulate_get(letters_url(org_a), query_string=query,
                                       headers=admin_of_a), 400)
    assert field in {e["field"] for e in body["errors"]}


def test_redrive_after_the_fix_stores_the_event_once(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    ingest: Ingest, future_event: dict[str, Any], clock: ManualClock,
    uow_factory: UnitOfWorkFactory, problem: Any,
) -> None:
    """While still invalid: 422 naming the field, nothing stored, no second letter. After the
    fix (here: the producer's clock is no longer ahead): accepted, stored once, the letter
    marked; a second re-drive returns the same outcome and stores nothing."""
    ingest([future_event])
    [letter] = stored_letters(uow_factory, org_a)
    url = f"{letters_url(org_a)}/{letter.dead_letter_id}/redrive"
    still = problem(client.simulate_post(url, headers=admin_of_a), 422)
    assert [e["field"] for e in still["errors"]] == ["occurredAt"]
    assert stored_letters(uow_factory, org_a) == [letter]

    clock.advance(timedelta(minutes=30))
    done = client.simulate_post(url, headers=admin_of_a)
    assert done.status_code == 200, done.text
    assert done.json["outcome"] == "accepted"
    assert done.json["alreadyRedriven"] is False
    assert done.json["deadLetter"]["redrive"]["by"] == "user-1"
    with uow_factory() as uow:
        stored = list(uow.events.scan(org_a, NOW, NOW + timedelta(hours=1)))
    assert [str(e.event_id) for e in stored] == [future_event["eventId"]]

    again = client.simulate_post(url, headers=admin_of_a)
    assert again.json["outcome"] == "accepted"
    assert again.json["alreadyRedriven"] is True
    with uow_factory() as uow:
        assert len(list(uow.events.scan(org_a, NOW, NOW + timedelta(hours=1)))) == 1
    status = client.simulate_get(letters_url(org_a), query_string="status=redriven",
                                 headers=admin_of_a).json["deadLetters"]
    assert [d["deadLetterId"] for d in status] == [str(letter.dead_letter_id)]
    assert client.simulate_get(letters_url(org_a), query_string="status=open",
                               headers=admin_of_a).json["deadLetters"] == []


def test_redrive_of_an_event_already_stored_is_a_duplicate(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    ingest: Ingest, future_event: dict[str, Any], clock: ManualClock,
    uow_factory: UnitOfWorkFactory,
) -> None:
    """The producer retried after its clock was fixed: the re-drive finds the event stored."""
    ingest([future_event])
    [letter] = stored_letters(uow_factory, org_a)
    clock.advance(timedelta(minutes=30))
    ingest([future_event])
    done = client.simulate_post(f"{letters_url(org_a)}/{letter.dead_letter_id}/redrive",
                                headers=admin_of_a)
    assert done.json["outcome"] == "duplicate"


def test_a_letter_naming_another_org_cannot_be_redriven_into_it(
    client: falcon.testing.TestClient, org_a: uuid.UUID, org_b: uuid.UUID,
    admin_of_a: dict[str, str], ingest: Ingest, make_event: Any, clock: ManualClock,
    uow_factory: UnitOfWorkFactory, problem: Any, audit: Callable[[uuid.UUID],
                                                                  list[AuditEntry]],
) -> None:
    """A rejected event naming org B is kept in A; re-driving it once valid is a 403 audited
    in B, and nothing is stored anywhere."""
    theirs = make_event(org_b, occurredAt=(NOW + timedelta(minutes=20)).isoformat())
    ingest([theirs])
    [letter] = stored_letters(uow_factory, org_a)
    clock.advance(timedelta(minutes=30))
    problem(client.simulate_post(f"{letters_url(org_a)}/{letter.dead_letter_id}/redrive",
                                 headers=admin_of_a), 403)
    assert any(e.outcome.value == "denied" and e.org_id == org_b for e in audit(org_b))
    with uow_factory() as uow:
        assert list(uow.events.scan(org_b, NOW, NOW + timedelta(hours=1))) == []
    assert stored_letters(uow_factory, org_a)[0].redriven_at is None


def test_another_orgs_letters_are_403_and_a_foreign_id_is_404(
    client: falcon.testing.TestClient, org_a: uuid.UUID, org_b: uuid.UUID,
    admin_of_a: dict[str, str], auth: HeaderFactory, ingest: Ingest, make_event: Any,
    uow_factory: UnitOfWorkFactory, problem: Any,
    audit: Callable[[uuid.UUID], list[AuditEntry]],
) -> None:
    """B's admin gets 403 (audited) on A's routes; A's letter id under B's path is 404."""
    ingest([make_event(org_a, latencyMs=-1)])
    [letter] = stored_letters(uow_factory, org_a)
    admin_of_b = auth(org_b, "org_admin")
    for path in ("", f"/{letter.dead_letter_id}", f"/{letter.dead_letter_id}/raw"):
        problem(client.simulate_get(letters_url(org_a) + path, headers=admin_of_b), 403)
    problem(client.simulate_post(f"{letters_url(org_a)}/{letter.dead_letter_id}/redrive",
                                 headers=admin_of_b), 403)
    assert sum(e.outcome.value == "denied" for e in audit(org_a)) == 4
    for path in (f"/{letter.dead_letter_id}", f"/{letter.dead_letter_id}/raw"):
        problem(client.simulate_get(letters_url(org_b) + path, headers=admin_of_b), 404)
    problem(client.simulate_post(f"{letters_url(org_b)}/{letter.dead_letter_id}/redrive",
                                 headers=admin_of_b), 404)


@pytest.mark.parametrize("role", ["analytics:usage:read", "analytics:events:write",
                                  "analytics:exports:read"])
def test_fine_grained_roles_do_not_open_dead_letters_or_audit(
    client: falcon.testing.TestClient, org_a: uuid.UUID, auth: HeaderFactory, problem: Any,
    role: str,
) -> None:
    """Payloads and decisions are for org admins: no fine-grained role grants them."""
    headers = auth(org_a, role)
    problem(client.simulate_get(letters_url(org_a), headers=headers), 403)
    problem(client.simulate_get(f"{PREFIX}/orgs/{org_a}/audit", headers=headers), 403)


def test_audit_lists_decisions_with_filters_and_pages(
    client: falcon.testing.TestClient, org_a: uuid.UUID, org_b: uuid.UUID,
    admin_of_a: dict[str, str], auth: HeaderFactory, problem: Any,
) -> None:
    """Denied reads by another org and allowed reads by A's admin are listed newest first; the
    outcome and actor filters hold; pages walk every entry once; reading the log is audited."""
    other = auth(org_b, "org_admin")
    for _ in range(3):
        problem(client.simulate_get(f"{PREFIX}/orgs/{org_a}/budgets", headers=other), 403)
    url = f"{PREFIX}/orgs/{org_a}/audit"
    denied = client.simulate_get(url, query_string="outcome=denied", headers=admin_of_a)
    assert denied.status_code == 200, denied.text
    entries = denied.json["entries"]
    assert len(entries) == 3
    assert all(e["outcome"] == "denied" and e["actorOrgId"] == str(org_b) for e in entries)
    assert entries[0]["reason"] == "identity belongs to another org"
    assert entries[0]["requestId"]
    seen: list[str] = []
    cursor = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.simulate_get(url, query_string=query, headers=admin_of_a).json
        seen += [e["auditId"] for e in page["entries"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 5  # 3 denied, 2 reads of the log
    reads = client.simulate_get(url, query_string="action=analytics:audit:read&outcome=allowed",
                                headers=admin_of_a).json["entries"]
    assert len(reads) >= 3
    assert {e["resource"] for e in reads} == {f"audit:{org_a}"}
    problem(client.simulate_get(url, query_string="outcome=maybe", headers=admin_of_a), 400)
