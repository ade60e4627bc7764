"""`analytics apikey list` and `revoke` run in-process through main([...]) on SQLite and
PostgreSQL: listing never shows a secret, revoking stops a key at once and is audited."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics_app.bootstrap.application import Application
from analytics_app.cli import main
from analytics_app.config import load_settings
from analytics_core.errors import Unauthenticated
from analytics_core.records import AuditEntry
from analytics_core.usecases.access import authenticate_api_key
from tests.contract.sql_backends import fresh_postgres_database

ORG_A = "61cfb301-976e-513e-a7b8-f4d8bf8ec460"
ORG_B = "0b4f1c7e-2f41-4b7e-9a51-6f3f3c1d2e8a"
LINE = re.compile(
    r"(?P<id>[0-9a-f]{16})  org=(?P<org>\S+)  roles=(?P<roles>\S+)  name=(?P<name>\".*\")  "
    r"created=(?P<created>\S+Z)  revoked=(?P<revoked>yes|no)"
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """A clean ANALYTICS_* environment on a new migrated database of each engine."""
    for name in list(os.environ):
        if name.startswith("ANALYTICS_") and not name.startswith("ANALYTICS_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    if request.param == "sqlite":
        assert main(["migrate"]) == 0
        yield request.param
        return
    with fresh_postgres_database() as url:
        monkeypatch.setenv("ANALYTICS_DATABASE_URL", url.render_as_string(hide_password=False))
        yield request.param


def _create(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run `apikey create ARGS` and return the plaintext key."""
    assert main(["apikey", "create", *args]) == 0
    return capsys.readouterr().out.strip()


def _key_id(key: str) -> str:
    return key.split("_")[1]


def _secrets(key: str) -> tuple[str, str]:
    """The secret part of a key and the hash stored for it."""
    secret = key.split("_")[2]
    return secret, hashlib.sha256(secret.encode()).hexdigest()


def _authenticates(key: str) -> bool:
    application = Application(load_settings())
    try:
        authenticate_api_key(key, uow_factory=application.ports.uow_factory)
    except Unauthenticated:
        return False
    finally:
        application.shutdown()
    return True


def _audit(org: str) -> list[AuditEntry]:
    application = Application(load_settings())
    try:
        with application.ports.uow_factory() as uow:
            return uow.audit.recent(uuid.UUID(org))
    finally:
        application.shutdown()


@pytest.fixture
def keys(database: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Three keys created in this order: org A reader, org B admin, platform admin."""
    return {
        "a": _create(capsys, "--org", ORG_A, "--role", "analytics:usage:read",
                     "--role", "analytics:exports:read", "--name", "ci runner"),
        "b": _create(capsys, "--org", ORG_B, "--role", "org_admin", "--name", "dash\tboard\n"),
        "admin": _create(capsys, "--role", "admin"),
    }


def test_list_prints_one_line_per_key_oldest_first(
    keys: dict[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --org every key is listed, one line each with id, org, roles, name, created and
    revoked, in creation order."""
    assert main(["apikey", "list"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3
    fields = [LINE.fullmatch(line) for line in lines]
    assert all(fields), lines
    a, b, admin = (m.groupdict() for m in fields if m is not None)
    assert [a["id"], b["id"], admin["id"]] == [_key_id(keys[k]) for k in ("a", "b", "admin")]
    assert a == a | {"org": ORG_A, "roles": "analytics:exports:read,analytics:usage:read",
                     "name": '"ci runner"', "revoked": "no"}
    assert b == b | {"org": ORG_B, "roles": "org_admin", "name": '"dash\\tboard\\n"'}
    assert admin == admin | {"org": "all", "roles": "admin", "name": '""'}
    assert "3 API keys (0 revoked)" in err


def test_list_with_org_shows_only_that_orgs_keys(
    keys: dict[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    """--org lists that org's keys only (not other orgs', not platform admin keys)."""
    assert main(["apikey", "list", "--org", ORG_B]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [_key_id(keys["b"])]
    assert main(["apikey", "list", "--org", str(uuid.uuid4())]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "0 API keys" in err


def test_list_json_is_an_array_of_key_objects(
    keys: dict[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    """--json prints a JSON array with keyId, orgId, roles, name, createdAt and revoked."""
    assert main(["apikey", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["keyId"] for k in listed] == [_key_id(keys[k]) for k in ("a", "b", "admin")]
    assert all(set(k) == {"keyId", "orgId", "roles", "name", "createdAt", "revoked"}
               for k in listed)
    assert listed[0] | {"createdAt": None} == {
        "keyId": _key_id(keys["a"]), "orgId": ORG_A, "createdAt": None, "revoked": False,
        "roles": ["analytics:exports:read", "analytics:usage:read"], "name": "ci runner",
    }
    assert listed[2]["orgId"] is None
    assert all(k["createdAt"].endswith("Z") for k in listed)
    assert main(["apikey", "list", "--json", "--org", str(uuid.uuid4())]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("args", [[], ["--json"], ["--org", ORG_A], ["--org", ORG_A, "--json"]])
def test_list_never_shows_a_secret_or_its_hash(
    keys: dict[str, str], capsys: pytest.CaptureFixture[str], args: list[str],
) -> None:
    """Neither the secret part of any key nor its stored hash appears in any output."""
    assert main(["apikey", "list", *args]) == 0
    out, err = capsys.readouterr()
    for key in keys.values():
        for secret in (key, *_secrets(key)):
            assert secret not in out
            assert secret not in err


def test_list_rejects_an_org_that_is_not_a_uuid(
    database: str, capsys: pytest.CaptureFixture[str],
) -> None:
    """A malformed --org exits 2 naming the field."""
    assert main(["apikey", "list", "--org", "acme"]) == 2
    assert "org: must be a UUID, got 'acme'" in capsys.readouterr().err


def test_revoke_stops_the_key_and_audits_it(
    keys: dict[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    """revoke exits 0 saying what it did; the key no longer authenticates, others still do,
    list shows it revoked, and the org's audit log has an `analytics:apikeys:revoke` entry by
    `cli:<user>`."""
    key_id = _key_id(keys["a"])
    assert _authenticates(keys["a"])
    assert main(["apikey", "revoke", key_id]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Revoked API key {key_id} (org {ORG_A}")
    assert "no longer authenticates" in out
    assert not _authenticates(keys["a"])
    assert _authenticates(keys["b"])
    assert main(["apikey", "list", "--org", ORG_A]) == 0
    assert capsys.readouterr().out.rstrip().endswith("revoked=yes")
    [entry] = [e for e in _audit(ORG_A) if e.action == "analytics:apikeys:revoke"]
    assert (entry.actor, entry.actor_org, entry.resource, entry.outcome, entry.request_id) == (
        f"cli:{getpass.getuser()}", None, f"apikey:{key_id}", "allowed", None)


def test_revoking_a_revoked_key_changes_nothing(
    keys: dict[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    """A second revoke exits 0, says the key was already revoked and adds no audit entry."""
    key_id = _key_id(keys["b"])
    assert main(["apikey", "revoke", key_id]) == 0
    assert main(["apikey", "revoke", key_id]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"API key {key_id} was already revoked; nothing changed")
    assert len([e for e in _audit(ORG_B) if e.action == "analytics:apikeys:revoke"]) == 1
    assert not _authenticates(keys["b"])


def test_revoking_a_platform_admin_key_says_it_is_not_audited(
    keys: dict[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    """An org-less admin key is revoked too; stderr says the per-org audit log has no place
    for it."""
    assert main(["apikey", "revoke", _key_id(keys["admin"])]) == 0
    out, err = capsys.readouterr()
    assert "org all (admin)" in out
    assert "not audited" in err
    assert not _authenticates(keys["admin"])


def test_revoke_of_an_unknown_key_id_exits_2(
    keys: dict[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    """An unknown key id exits 2 naming it and pointing at `apikey list`; nothing changes."""
    assert main(["apikey", "revoke", "0123456789abcdef"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("analytics: no API key with id '0123456789abcdef'; "
                   "`analytics apikey list` shows the key ids\n")
    assert all(_authenticates(key) for key in keys.values())


def test_revoke_given_a_whole_key_exits_2_without_echoing_it(
    keys: dict[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    """A whole key instead of its id is a usage error that never prints the secret."""
    assert main(["apikey", "revoke", keys["a"]]) == 2
    out, err = capsys.readouterr()
    assert "pass only its key id" in err
    assert _secrets(keys["a"])[0] not in out + err
    assert _authenticates(keys["a"])
