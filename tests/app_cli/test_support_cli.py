"""`analytics dead-letters list|show|raw|redrive` and `analytics audit` on a migrated SQLite
database: the letters listed and filtered, the bytes written unchanged, a re-drive that stays
invalid until the fix (here: a raw retention set too short, then raised) and then stores the
event once; the audit log filtered."""

from __future__ import annotations

import io
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics_app.bootstrap.application import Application
from analytics_app.cli import main
from analytics_app.config import load_settings
from analytics_core.access import Action, Actor
from analytics_core.errors import Forbidden
from analytics_core.usecases.ingest import RawMessage

ORG = uuid.UUID("22222222-2222-4222-8222-222222222222")


def _event(days_ago: int) -> bytes:
    return json.dumps({
        "eventId": str(uuid.uuid4()), "orgId": str(ORG), "modelId": str(uuid.uuid4()),
        "occurredAt": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(),
        "status": "success", "latencyMs": 5, "inputTokens": 1, "outputTokens": 2,
        "costEstimateCents": "0.5", "metadata": {"team": "ünïcode"},
    }, ensure_ascii=False).encode()


def _ingest(*raw: bytes) -> None:
    with Application(load_settings()) as app:
        result = app.use_cases.ingest_trusted([RawMessage(r) for r in raw], source="http")
    assert result.rejected == len(raw)


def _ids(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    capsys.readouterr()
    assert main(["dead-letters", "list", "--json", *args]) == 0
    return [json.loads(line)["deadLetterId"] for line in capsys.readouterr().out.splitlines()]


def test_list_filter_show_raw_and_redrive_after_the_fix(
    migrated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Events 3 days old under a 2-day retention are dead letters; raising the retention to
    30 days is the fix: re-drive stores the event once and a second re-drive stores nothing."""
    monkeypatch.setenv("ANALYTICS_RAW_RETENTION_DAYS", "2")
    old, bad = _event(3), b'{"eventId": "x"}\x00\xff'
    _ingest(old, bad)
    every = _ids(capsys)
    assert len(every) == 2
    [retention] = _ids(capsys, "--reason", "RAW RETENTION", "--org", str(ORG))
    assert _ids(capsys, "--status", "redriven") == []

    assert main(["dead-letters", "show", retention]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["raw"] == {"encoding": "utf-8", "data": old.decode()}
    [binary] = [i for i in every if i != retention]
    out = io.BytesIO()
    text = io.TextIOWrapper(out, encoding="utf-8")
    with monkeypatch.context() as m:
        m.setattr(sys, "stdout", text)
        assert main(["dead-letters", "raw", binary]) == 0
    assert out.getvalue() == bad
    text.detach()

    capsys.readouterr()
    assert main(["dead-letters", "redrive", retention]) == 1
    assert "still invalid, nothing stored (occurredAt:" in capsys.readouterr().out
    assert len(_ids(capsys)) == 2  # no second letter

    monkeypatch.setenv("ANALYTICS_RAW_RETENTION_DAYS", "30")
    assert main(["dead-letters", "redrive", retention]) == 0
    assert capsys.readouterr().out == f"{retention}: accepted\n"
    assert main(["dead-letters", "redrive", retention]) == 0
    assert capsys.readouterr().out == f"{retention}: accepted (already re-driven)\n"
    assert _ids(capsys, "--status", "redriven") == [retention]
    with Application(load_settings()) as app:
        start = datetime.now(UTC) - timedelta(days=4)
        with app.ports.uow_factory() as uow:
            stored = list(uow.events.scan(ORG, start, datetime.now(UTC)))
    assert [e.metadata for e in stored] == [{"team": "ünïcode"}]


def test_bad_arguments_name_the_field(
    migrated: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad org, window or id: exit 2 naming each; an unknown id is reported, not a crash."""
    assert main(["dead-letters", "list", "--org", "nope", "--since", "2024-01-02T00:00:00Z",
                 "--until", "2024-01-01T00:00:00Z", "--limit", "0"]) == 2
    err = capsys.readouterr().err
    assert "--org: must be a UUID" in err
    assert "--until: must be after --since" in err
    assert "--limit: must be from 1 to" in err
    assert main(["dead-letters", "redrive", "x"]) == 2
    assert "DEAD_LETTER_ID x: must be a UUID" in capsys.readouterr().err
    assert main(["dead-letters", "show", str(uuid.uuid4())]) == 2
    assert "not found" in capsys.readouterr().err


def test_audit_lists_the_orgs_decisions_with_filters(
    migrated: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Allowed and denied decisions about the org, newest first; --outcome filters."""
    reader = Actor("user:ann", ORG, frozenset({"analytics:usage:read"}))
    stranger = Actor("user:eve", uuid.uuid4(), frozenset({"org_admin"}))
    with Application(load_settings()) as app:
        app.use_cases.authorize(reader, Action.USAGE_READ, ORG, resource="usage",
                                request_id="req-1")
        with pytest.raises(Forbidden):
            app.use_cases.authorize(stranger, Action.USAGE_READ, ORG, resource="usage")
    capsys.readouterr()
    assert main(["audit", "--org", str(ORG), "--json"]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["actor"], e["outcome"]) for e in entries] == [("user:eve", "denied"),
                                                             ("user:ann", "allowed")]
    assert main(["audit", "--org", str(ORG), "--outcome", "allowed"]) == 0
    out = capsys.readouterr().out
    assert "user:ann" in out
    assert "request req-1" in out
    assert "user:eve" not in out
    with pytest.raises(SystemExit) as exited:
        main(["audit", "--org", str(ORG), "--outcome", "maybe"])
    assert exited.value.code == 2
    assert "invalid choice: 'maybe' (choose from 'allowed', 'denied')" in capsys.readouterr().err
