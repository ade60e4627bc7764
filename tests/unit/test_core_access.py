"""The access policy (SPEC §6): org scoping, admin cross-org, one action per fine-grained role."""

from __future__ import annotations

import uuid

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from analytics_core.access import (
    ADMIN,
    KNOWN_ROLES,
    ORG_ADMIN,
    ORG_ADMIN_ONLY,
    Action,
    Actor,
    Decision,
    Outcome,
    decide,
)

ORG_A = uuid.UUID(int=0xA)
ORG_B = uuid.UUID(int=0xB)

actions = st.sampled_from(list(Action))
non_admin_roles = st.frozensets(
    st.sampled_from(sorted(KNOWN_ROLES - {ADMIN}))
    | st.text(max_size=12).filter(lambda r: r != ADMIN)
)
methods = st.sampled_from(["jwt", "apikey", "gateway", "unknown"])


@given(st.uuids(), st.uuids(), non_admin_roles, actions, methods)
def test_non_admin_is_never_allowed_on_another_org(
    org_a: uuid.UUID, org_b: uuid.UUID, roles: frozenset[str], action: Action, method: str
) -> None:
    """Whatever roles it holds, a non-admin actor of org A is denied on org B."""
    assume(org_a != org_b)
    decision = decide(Actor("someone", org_a, roles, method), action, org_b)
    assert not decision.allowed
    assert decision.outcome is Outcome.DENIED
    assert not decision.cross_org


@given(non_admin_roles, actions, st.uuids())
def test_non_admin_without_org_is_never_allowed(
    roles: frozenset[str], action: Action, org: uuid.UUID
) -> None:
    """An identity bound to no org gets nothing unless it is a platform admin."""
    assert not decide(Actor("orphan", None, roles), action, org).allowed


@given(st.none() | st.uuids(), st.uuids(), non_admin_roles, actions)
def test_admin_is_always_allowed_and_flagged_cross_org_elsewhere(
    own_org: uuid.UUID | None, target: uuid.UUID, extra: frozenset[str], action: Action
) -> None:
    """admin may act on every org; cross_org is set exactly when the org is not its own."""
    decision = decide(Actor("root", own_org, extra | {ADMIN}), action, target)
    assert decision.allowed
    assert decision.cross_org is (own_org != target)


def test_admin_on_its_own_org_is_not_cross_org() -> None:
    """An admin bound to an org reading that org is a normal access."""
    assert not decide(Actor("root", ORG_A, frozenset({ADMIN})), Action.USAGE_READ, ORG_A).cross_org


@pytest.mark.parametrize("role", [a for a in Action if a not in ORG_ADMIN_ONLY], ids=str)
@pytest.mark.parametrize("action", list(Action), ids=str)
def test_fine_grained_role_grants_exactly_its_action(role: Action, action: Action) -> None:
    """Each fine-grained role allows its own action in its org and nothing else."""
    decision = decide(Actor("svc", ORG_A, frozenset({role.value})), action, ORG_A)
    assert decision.allowed is (role is action)


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_org_admin_is_allowed_every_action_in_its_org(action: Action) -> None:
    """org_admin grants everything in its own org."""
    assert decide(Actor("boss", ORG_A, frozenset({ORG_ADMIN})), action, ORG_A).allowed


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_org_admin_is_denied_on_another_org(action: Action) -> None:
    """org_admin is scoped to its own org."""
    assert not decide(Actor("boss", ORG_A, frozenset({ORG_ADMIN})), action, ORG_B).allowed


def test_unknown_roles_and_no_roles_grant_nothing() -> None:
    """Roles outside the contract (or none at all) never allow anything."""
    for roles in (frozenset(), frozenset({"analytics:*", "superuser", "Admin"})):
        for action in Action:
            assert not decide(Actor("x", ORG_A, roles), action, ORG_A).allowed


def test_denial_names_the_missing_permission() -> None:
    """A denial inside the org says which permission is missing."""
    decision = decide(Actor("x", ORG_A, frozenset()), Action.EXPORTS_CREATE, ORG_A)
    assert decision.reason == "missing permission analytics:exports:create"


def test_action_values_are_the_spec_role_names() -> None:
    """The six fine-grained roles of SPEC §6, plus admin and org_admin, are the known roles."""
    assert {a.value for a in Action if a not in ORG_ADMIN_ONLY} == {
        "analytics:usage:read",
        "analytics:reliability:read",
        "analytics:exports:create",
        "analytics:exports:read",
        "analytics:exports:download",
        "analytics:events:write",
    }
    assert {"admin", "org_admin"} | {a.value for a in Action
                                     if a not in ORG_ADMIN_ONLY} == KNOWN_ROLES


def test_org_admin_only_actions_are_granted_by_no_fine_grained_role() -> None:
    """Naming an org's clients needs org_admin (or admin): holding the action's own name as a
    role grants nothing, and it is not a role keys can be created with."""
    assert Action.CLIENTS_WRITE in ORG_ADMIN_ONLY
    assert Action.CLIENTS_WRITE.value not in KNOWN_ROLES
    holder = Actor("x", ORG_A, frozenset({Action.CLIENTS_WRITE.value}))
    assert not decide(holder, Action.CLIENTS_WRITE, ORG_A).allowed
    assert decide(Actor("y", ORG_A, frozenset({"org_admin"})), Action.CLIENTS_WRITE, ORG_A).allowed


@given(st.text(), st.none() | st.uuids(), non_admin_roles, methods, actions, st.uuids())
def test_actor_and_decision_round_trip_through_asdict_and_evolve(
    subject: str,
    org: uuid.UUID | None,
    roles: frozenset[str],
    method: str,
    action: Action,
    target: uuid.UUID,
) -> None:
    """Actor and Decision rebuild from their fields unchanged."""
    actor = Actor(subject, org, roles, method)
    decision = decide(actor, action, target)
    assert Actor(**attrs.asdict(actor, recurse=False)) == actor
    assert Decision(**attrs.asdict(decision, recurse=False)) == decision
    assert attrs.evolve(actor) == actor
