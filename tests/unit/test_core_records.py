"""Audit/operations records and the error tree: round trips and built-in error families."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from core_strategies import utc_instants
from hypothesis import given
from hypothesis import strategies as st

from analytics_core import errors
from analytics_core.access import Outcome
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.records import (
    ApiKeyRecord,
    AuditEntry,
    DeadLetter,
    DedupeConflict,
    StreamPosition,
)

hexes = st.text("0123456789abcdef", min_size=64, max_size=64)
RECORDS: dict[str, st.SearchStrategy[Any]] = {
    "dead_letter": st.builds(
        DeadLetter,
        dead_letter_id=st.uuids(),
        received_at=utc_instants,
        source=st.sampled_from(["http", "stream:analytics.usage.v1"]),
        raw=st.binary(max_size=64),
        reason=st.text(max_size=40),
        org_id=st.none() | st.uuids(),
        offset=st.none() | st.integers(min_value=0),
    ),
    "dedupe_conflict": st.builds(
        DedupeConflict,
        org_id=st.uuids(),
        event_id=st.uuids(),
        detected_at=utc_instants,
        source=st.text(max_size=20),
        first_fingerprint=hexes,
        new_fingerprint=hexes,
        raw=st.binary(max_size=64),
    ),
    "audit_entry": st.builds(
        AuditEntry,
        audit_id=st.uuids(),
        at=utc_instants,
        actor=st.text(max_size=20),
        actor_org=st.none() | st.uuids(),
        org_id=st.uuids(),
        action=st.text(max_size=30),
        resource=st.text(max_size=30),
        outcome=st.sampled_from(list(Outcome)),
        reason=st.text(max_size=30),
        request_id=st.none() | st.text(max_size=36),
        cross_org=st.booleans(),
    ),
    "api_key": st.builds(
        ApiKeyRecord,
        key_id=st.text(min_size=1, max_size=20),
        org_id=st.none() | st.uuids(),
        roles=st.frozensets(st.text(max_size=30)),
        secret_hash=hexes,
        created_at=utc_instants,
        name=st.text(max_size=20),
        revoked=st.booleans(),
    ),
    "stream_position": st.builds(
        StreamPosition,
        consumer=st.text(max_size=20),
        stream=st.text(max_size=20),
        offset=st.integers(min_value=0),
    ),
    "field_error": st.builds(FieldError, field=st.text(max_size=20), reason=st.text(max_size=40)),
}


@pytest.mark.parametrize("kind", sorted(RECORDS))
@given(data=st.data())
def test_record_round_trips_through_asdict_and_evolve(kind: str, data: st.DataObject) -> None:
    """Every record rebuilds from its fields unchanged and evolves to an equal copy."""
    record = data.draw(RECORDS[kind])
    assert type(record)(**attrs.asdict(record, recurse=False)) == record
    assert attrs.evolve(record) == record


@given(st.lists(RECORDS["field_error"], max_size=4))
def test_validation_failed_keeps_every_field_error(field_errors: list[FieldError]) -> None:
    """ValidationFailed exposes the errors it was given and names each in its message."""
    failure = ValidationFailed(field_errors, "bad input")
    assert failure.errors == tuple(field_errors)
    for error in field_errors:
        assert f"{error.field}: {error.reason}" in str(failure)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (errors.ValidationFailed, ValueError),
        (errors.InvalidTimeRange, ValueError),
        (errors.NotFound, LookupError),
        (errors.Gone, LookupError),
        (errors.Conflict, ValueError),
        (errors.Unauthenticated, PermissionError),
        (errors.Forbidden, PermissionError),
        (errors.InvalidTransition, ValueError),
        (errors.StoreUnavailable, ConnectionError),
        (errors.SchemaNotMigrated, RuntimeError),
        (errors.ConfigError, ValueError),
    ],
)
def test_each_error_is_an_analytics_error_and_its_builtin(
    error: type[Exception], builtin: type[Exception]
) -> None:
    """Every product error subclasses AnalyticsError and the matching built-in."""
    assert issubclass(error, errors.AnalyticsError)
    assert issubclass(error, builtin)


def test_invalid_time_range_is_a_validation_failure() -> None:
    """Time-range errors carry field errors like any validation failure."""
    assert issubclass(errors.InvalidTimeRange, errors.ValidationFailed)
