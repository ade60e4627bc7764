"""Tenancy of ingest over HTTP (SPEC §11): the org that is authorized is the org that is stored."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import falcon.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_core.ports import UnitOfWorkFactory

PREFIX = "/analytics/v1"
DAY_BEFORE = datetime(2024, 3, 14, tzinfo=UTC)
DAY_AFTER = datetime(2024, 3, 16, tzinfo=UTC)


def _post(client: falcon.testing.TestClient, path: str, body: Any,
          headers: dict[str, str]) -> falcon.testing.Result:
    return client.simulate_post(f"{PREFIX}/{path}", json=body, headers=headers)


def _stored(uow_factory: UnitOfWorkFactory, org: uuid.UUID) -> list[Any]:
    with uow_factory() as uow:
        return list(uow.events.scan(org, DAY_BEFORE, DAY_AFTER))


def _dead_letter_orgs(uow_factory: UnitOfWorkFactory) -> set[uuid.UUID | None]:
    with uow_factory() as uow:
        return {letter.org_id for letter in uow.dead_letters.recent(None, limit=100_000)}


def test_double_encoded_event_of_another_org_is_never_stored_there(
    client: falcon.testing.TestClient, org_a: uuid.UUID, org_b: uuid.UUID,
    admin_of_a: dict[str, str], make_event: Any, uow_factory: UnitOfWorkFactory,
) -> None:
    """A JSON string of a JSON string is decoded once: rejected, kept in the caller's org."""
    theirs = json.dumps(json.dumps(make_event(org_b)))
    result = _post(client, "events", {"events": [theirs]}, admin_of_a)
    assert result.status_code == 202, result.text
    assert result.json["rejected"] == 1
    assert result.json["results"][0]["errors"] == [
        {"field": "$", "reason": "event must be a JSON object"}
    ]
    assert _stored(uow_factory, org_b) == []
    with uow_factory() as uow:
        assert uow.dead_letters.recent(org_b) == []
        [letter] = uow.dead_letters.recent(org_a)
    assert str(org_b) in letter.raw.decode()


def test_string_encoded_event_of_another_org_is_403_and_audited(
    client: falcon.testing.TestClient, org_a: uuid.UUID, org_b: uuid.UUID,
    admin_of_a: dict[str, str], make_event: Any, audit: Any, uow_factory: UnitOfWorkFactory,
    problem: Any,
) -> None:
    """An event sent as one JSON string is parsed, and its parsed org is the one authorized."""
    problem(_post(client, "events", {"events": [json.dumps(make_event(org_b))]}, admin_of_a), 403)
    assert [e.outcome.value for e in audit(org_b)] == ["denied"]
    assert _stored(uow_factory, org_b) == []


def test_invalid_event_naming_another_org_is_dead_lettered_in_the_callers_org(
    client: falcon.testing.TestClient, org_a: uuid.UUID, org_b: uuid.UUID,
    admin_of_a: dict[str, str], uow_factory: UnitOfWorkFactory,
) -> None:
    """A rejected event's org is only a guess: it is kept in the caller's own org."""
    result = _post(client, "events", {"events": [{"orgId": str(org_b), "status": "bogus"}]},
                   admin_of_a)
    assert result.json["rejected"] == 1
    with uow_factory() as uow:
        assert uow.dead_letters.recent(org_b) == []
        assert len(uow.dead_letters.recent(org_a)) == 1


def test_admins_dead_letter_stays_in_the_org_it_names(
    client: falcon.testing.TestClient, org_b: uuid.UUID, auth: Any,
    uow_factory: UnitOfWorkFactory,
) -> None:
    """A platform admin may write every org, so its rejected event stays where it points."""
    _post(client, "events", {"events": [{"orgId": str(org_b), "status": "bogus"}]},
          auth(None, "admin"))
    with uow_factory() as uow:
        assert len(uow.dead_letters.recent(org_b)) == 1


def test_validate_of_a_double_encoded_event_of_another_org_is_400(
    client: falcon.testing.TestClient, org_b: uuid.UUID, admin_of_a: dict[str, str],
    make_event: Any, problem: Any,
) -> None:
    """/events/validate decodes once too: a string inside the string is not an event."""
    theirs = json.dumps(json.dumps(make_event(org_b)))
    result = _post(client, "events/validate", theirs, admin_of_a)
    assert problem(result, 400)["errors"][0]["field"] == "$"


def test_validate_of_a_string_encoded_event_of_another_org_is_403(
    client: falcon.testing.TestClient, org_b: uuid.UUID, admin_of_a: dict[str, str],
    make_event: Any, audit: Any, problem: Any,
) -> None:
    """/events/validate authorizes the org of the event it parsed."""
    problem(_post(client, "events/validate", json.dumps(make_event(org_b)), admin_of_a), 403)
    assert [e.outcome.value for e in audit(org_b)] == ["denied"]


_SPELLINGS = st.sampled_from([
    str, lambda u: str(u).upper(), lambda u: "{" + str(u) + "}", lambda u: u.urn,
    lambda u: u.hex, lambda u: f" {u} ", lambda u: str(u).replace("-", "", 1),
])


@st.composite
def _hostile_events(draw: st.DrawFn, make_event: Any, own: uuid.UUID) -> tuple[Any, uuid.UUID]:
    """An event in one of the encodings the API accepts, naming another org somewhere."""
    other = uuid.uuid4()
    event = make_event(own)
    org_keys = draw(st.sampled_from([("orgId",), ("org_id",), ("orgId", "org_id"),
                                     ("org_id", "orgId")]))
    del event["orgId"]
    for key in org_keys:
        target = draw(st.sampled_from([own, other]))
        event[key] = draw(_SPELLINGS)(target)
    if draw(st.booleans()):
        event = {k: event[k] for k in reversed(list(event))}
    payload: Any = event
    for _ in range(draw(st.integers(0, 3))):
        payload = json.dumps(payload)
    return payload, other


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_events_are_stored_only_in_orgs_the_caller_may_write(
    client: falcon.testing.TestClient, org_a: uuid.UUID, auth: Any, make_event: Any,
    uow_factory: UnitOfWorkFactory, data: st.DataObject,
) -> None:
    """Whatever the encoding and org keys, nothing lands outside the writer's org."""
    role = data.draw(st.sampled_from(["org_admin", "analytics:events:write"]))
    batch = data.draw(st.lists(_hostile_events(make_event, org_a), min_size=1, max_size=4))
    result = _post(client, "events", {"events": [p for p, _ in batch]}, auth(org_a, role))
    assert result.status_code in (202, 403), result.text
    for _, other in batch:
        assert _stored(uow_factory, other) == []
    assert _dead_letter_orgs(uow_factory) <= {org_a}
    one = data.draw(st.sampled_from(batch))[0]
    checked = _post(client, "events/validate", one, auth(org_a, role))
    assert checked.status_code in (204, 400, 403), checked.text
