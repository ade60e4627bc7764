"""The `analytics` CLI run in-process through main([...]) against a temp SQLite data dir."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest

from analytics_app.bootstrap.application import Application
from analytics_app.cli import build_parser, main
from analytics_app.config import load_settings
from analytics_core.errors import Unauthenticated
from analytics_core.usecases.access import authenticate_api_key

KEY = re.compile(r"ak_[0-9a-f]{16}_[0-9a-f]{64}")
ORG = "61cfb301-976e-513e-a7b8-f4d8bf8ec460"


def _authenticates(key: str) -> bool:
    application = Application(load_settings())
    try:
        return authenticate_api_key(key, uow_factory=application.ports.uow_factory) is not None
    finally:
        application.shutdown()


def test_only_existing_commands_are_listed():
    """The help lists exactly the commands that are implemented."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted([  # type: ignore[arg-type]
        "serve", "demo", "apikey", "validate", "worker", "export", "migrate", "purge", "doctor",
        "consume", "publish", "replay", "models", "usage", "reliability", "prices",
        "restatements", "alerts", "dead-letters", "audit", "reconcile", "rollups",
    ])


def test_config_error_exits_2_with_the_message(data_dir: Path, monkeypatch, capsys):
    """A bad setting prints one line naming it and exits 2, without a traceback."""
    monkeypatch.setenv("ANALYTICS_PORT", "eighty")
    assert main(["apikey", "create", "--org", ORG, "--role", "org_admin"]) == 2
    err = capsys.readouterr().err
    assert "ANALYTICS_PORT: must be an integer, got 'eighty'" in err
    assert "Traceback" not in err


def test_migrate_reports_the_revision_and_is_idempotent(data_dir: Path, capsys):
    """migrate creates the SQLite file's schema; running it again changes nothing."""
    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == out[1]
    assert "is at revision" in out[0]
    assert (data_dir / "analytics.db").exists()


def test_unmigrated_database_is_refused_with_a_hint(data_dir: Path, capsys):
    """Commands on an unmigrated database exit 2 and say to run `analytics migrate`."""
    assert main(["apikey", "create", "--org", ORG, "--role", "org_admin"]) == 2
    assert "analytics migrate" in capsys.readouterr().err


def test_apikey_create_prints_only_the_key_on_stdout(migrated: Path, capsys):
    """The key alone goes to stdout (scriptable) and authenticates afterwards."""
    assert main(["apikey", "create", "--org", ORG, "--role", "analytics:usage:read",
                 "--role", "analytics:exports:read", "--name", "ci"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert KEY.fullmatch(key)
    assert "shown once" in err
    assert _authenticates(key)


def test_apikey_create_names_an_unknown_role(migrated: Path, capsys):
    """An unknown role exits 2 naming the role."""
    assert main(["apikey", "create", "--org", ORG, "--role", "superuser"]) == 2
    err = capsys.readouterr().err
    assert "role: unknown role 'superuser'" in err
    for role in ("admin", "org_admin", "analytics:usage:read", "analytics:events:write"):
        assert role in err  # the valid choices are named


def test_apikey_create_requires_an_org_unless_admin(migrated: Path, capsys):
    """Without --org only the admin role is allowed."""
    assert main(["apikey", "create", "--role", "org_admin"]) == 2
    assert "org: is required unless the role is admin" in capsys.readouterr().err
    assert main(["apikey", "create", "--role", "admin"]) == 0


def _event(**changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "eventId": "8f14e45f-ceea-4e7a-9b1c-2d3e4f5a6b7c", "orgId": ORG,
        "modelId": "19810fbd-d156-528f-abef-e372444a2422",
        "occurredAt": "2026-01-01T00:00:00Z", "status": "success", "latencyMs": 120,
        "inputTokens": 10, "outputTokens": 20, "costEstimateCents": 0.5,
    }
    event.update(changes)
    return event


@pytest.fixture
def recent() -> str:
    """An occurredAt a few minutes ago (inside the accepted window)."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    return (datetime.now(UTC) - timedelta(minutes=5)).isoformat()


def test_validate_accepts_a_valid_json_array(data_dir: Path, tmp_path: Path, recent: str, capsys):
    """A JSON array of valid events exits 0."""
    path = tmp_path / "events.json"
    path.write_text(json.dumps([_event(occurredAt=recent), _event(occurredAt=recent)]))
    assert main(["validate", str(path)]) == 0
    assert "2 valid, 0 invalid of 2 events" in capsys.readouterr().err


def test_validate_reports_each_bad_field_per_line(
    data_dir: Path, tmp_path: Path, recent: str, capsys,
):
    """JSON Lines: each invalid event is printed with its line and field; exit 1."""
    lines = [
        json.dumps(_event(occurredAt=recent)),
        json.dumps(_event(occurredAt=recent, status="maybe", latencyMs=-1)),
        "{not json",
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "line 2 (8f14e45f-ceea-4e7a-9b1c-2d3e4f5a6b7c): status: must be one of" in out
    assert "line 2 (8f14e45f-ceea-4e7a-9b1c-2d3e4f5a6b7c): latencyMs:" in out
    assert "line 3: $: message is not valid JSON" in out


def test_validate_reads_an_events_envelope(data_dir: Path, tmp_path: Path, recent: str, capsys):
    """{"events": [...]} (the POST /events body) is accepted as input."""
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"events": [_event(occurredAt=recent, orgId="nope")]}))
    assert main(["validate", str(path)]) == 1
    assert "event 0 (8f14e45f-ceea-4e7a-9b1c-2d3e4f5a6b7c): orgId:" in capsys.readouterr().out


def test_validate_missing_file_exits_2(data_dir: Path, tmp_path: Path, capsys):
    """An unreadable file is a usage error naming the file."""
    assert main(["validate", str(tmp_path / "absent.json")]) == 2
    assert "absent.json" in capsys.readouterr().err


def test_demo_loads_data_and_prints_a_working_key(migrated: Path, capsys):
    """demo ingests events, then prints an org_admin key and curl commands; rerun keeps data."""
    assert main(["demo", "--events", "800", "--days", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Demo data: 4 orgs, 10 models" in out
    assert "/exports/$JOB/download" in out
    assert "/usage?start=" in out
    key = KEY.search(out)
    assert key is not None
    assert _authenticates(key.group(0))
    assert main(["demo", "--events", "800", "--days", "2", "--no-progress"]) == 0
    assert "Existing data kept" in capsys.readouterr().out


def test_export_wait_writes_the_csv(migrated: Path, capsys):
    """export --wait runs the job in-process and prints where the CSV is."""
    assert main(["demo", "--events", "600", "--days", "2", "--no-progress"]) == 0
    capsys.readouterr()
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    now = datetime.now(UTC)
    assert main(["export", "--org", ORG, "--start", (now - timedelta(days=2)).isoformat(),
                 "--end", now.isoformat(), "--granularity", "hourly", "--wait"]) == 0
    out = capsys.readouterr().out
    assert ": succeeded" in out
    path = Path(re.search(r"^file (.+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert path.is_relative_to(migrated / "exports")
    assert path.read_text().startswith("bucket_start,bucket_end,timezone,org_id,model_id")


def test_export_names_bad_arguments(migrated: Path, capsys):
    """Bad times and ids exit 2 naming each field."""
    assert main(["export", "--org", ORG, "--start", "yesterday", "--end", "today"]) == 2
    err = capsys.readouterr().err
    assert "start: must be an RFC 3339 date-time" in err
    assert "end: must be an RFC 3339 date-time" in err


def test_worker_once_runs_and_exits(migrated: Path):
    """worker --once runs due jobs and housekeeping, then exits 0."""
    assert main(["worker", "--once"]) == 0


def test_purge_keeps_recent_data(migrated: Path, capsys):
    """purge applies retention; data inside the retention stays."""
    assert main(["demo", "--events", "300", "--days", "2", "--no-progress"]) == 0
    assert main(["purge"]) == 0
    out = capsys.readouterr().out
    assert "0 rows deleted" in out
    assert "rollups before" in out
    assert main(["demo", "--events", "300", "--days", "2", "--no-progress"]) == 0
    assert "Existing data kept" in capsys.readouterr().out


def test_purge_in_memory_mode_is_a_usage_error(data_dir: Path, monkeypatch, capsys):
    """There is nothing to purge in memory mode: exit 2 with a message."""
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", "memory")
    assert main(["purge"]) == 2
    assert "nothing to purge" in capsys.readouterr().err


def test_export_refuses_an_unknown_zone_naming_tz(migrated: Path, capsys):
    """--tz is validated like the API's tz: exit 2 naming --tz, and no job is stored."""
    assert main(["export", "--org", ORG, "--start", "2026-11-01T00:00:00Z",
                 "--end", "2026-11-02T00:00:00Z", "--tz", "Mars/Base"]) == 2
    err = capsys.readouterr().err
    assert "--tz: unknown IANA time zone 'Mars/Base'" in err
    assert "zoneinfo" in err


def test_files_the_product_writes_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys):
    """The data directory, the SQLite database and its journals, and local exports are
    0700/0600 whatever umask the shell had (SPEC §11)."""
    for name in list(os.environ):
        if name.startswith("ANALYTICS_") and not name.startswith("ANALYTICS_TEST_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    previous = os.umask(0o022)
    try:
        assert main(["migrate"]) == 0
        assert main(["demo", "--events", "300", "--days", "1", "--no-progress"]) == 0
        from datetime import UTC, datetime, timedelta  # noqa: PLC0415

        now = datetime.now(UTC)
        assert main(["export", "--org", ORG, "--start", (now - timedelta(days=1)).isoformat(),
                     "--end", now.isoformat(), "--wait"]) == 0
    finally:
        os.umask(previous)
    capsys.readouterr()
    paths = [data, *data.rglob("*")]
    assert any(p.suffix == ".csv" for p in paths)
    assert any(p.name == "analytics.db" for p in paths)
    for path in paths:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_consume_help_names_the_ownership_schemes_and_the_auto_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The help matches the behaviour: ANALYTICS_RABBITMQ_OWNERSHIP defaults to auto, which is
    not always advisory locks."""
    with pytest.raises(SystemExit):
        main(["consume", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "ANALYTICS_RABBITMQ_OWNERSHIP: auto (default" in text
    for scheme in ("single-active-consumer", "advisory-locks"):
        assert scheme in text


def test_demo_registers_model_and_client_names(migrated: Path, capsys):
    """After `analytics demo` every demo model has a display name (its slug an alias) and the
    demo clients have names; the usage export of the demo org carries them."""
    assert main(["demo", "--events", "600", "--days", "2", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)["models"]
    assert len(models) == 10
    by_alias = {a: m["name"] for m in models for a in m["aliases"]}
    assert by_alias["llama-3.1-70b-instruct"] == "Llama 3.1 70B Instruct"
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    now = datetime.now(UTC)
    assert main(["export", "--org", ORG, "--start", (now - timedelta(days=2)).isoformat(),
                 "--end", now.isoformat(), "--granularity", "daily", "--wait"]) == 0
    out = capsys.readouterr().out
    path = Path(re.search(r"^file (.+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows
    assert all(r["model_name"] for r in rows)


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`analytics --version` prints the package version and exits 0."""
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out.strip()
    assert re.fullmatch(r"analytics \d+\.\d+\.\d+\S*", out), out


def test_each_demo_run_rotates_the_demo_key(migrated: Path, capsys):
    """A second demo start revokes the first demo key: one live org_admin demo key at a time,
    and `apikey list` names it `demo`."""
    assert main(["demo", "--events", "300", "--days", "1", "--no-progress"]) == 0
    first = KEY.search(capsys.readouterr().out)
    assert main(["demo", "--events", "300", "--days", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    second = KEY.search(out)
    assert first is not None
    assert second is not None
    assert "Revoked the previous demo key" in out
    with pytest.raises(Unauthenticated):
        _authenticates(first.group(0))
    assert _authenticates(second.group(0))
    assert main(["apikey", "list", "--org", ORG, "--json"]) == 0
    keys = json.loads(capsys.readouterr().out)
    assert [(k["name"], k["revoked"]) for k in keys] == [("demo", True), ("demo", False)]


def test_serve_on_an_empty_sqlite_database_says_where_it_looked(
    migrated: Path, capsys, monkeypatch: pytest.MonkeyPatch,
):
    """A start on an empty embedded database names it and where its location comes from (a
    different working directory means a different ./data); with data there is no note."""
    from analytics_app.cli import commands  # noqa: PLC0415

    monkeypatch.setattr(commands, "run_server", lambda settings, **_: 0)  # not gunicorn here
    assert main(["serve"]) == 0
    err = capsys.readouterr().err
    assert "has no usage data yet" in err
    assert str(migrated / "analytics.db") in err
    assert "ANALYTICS_DATA_DIR" in err
    assert main(["demo", "--events", "300", "--days", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["serve"]) == 0
    assert "no usage data" not in capsys.readouterr().err
