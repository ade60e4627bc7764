"""`analytics doctor`: one line per check, the fix for each failure, exit 1 when any failed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from analytics_app.cli import main
from tests.contract.sql_backends import fresh_postgres_database


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean ANALYTICS_* environment on an empty data directory."""
    for name in list(os.environ):
        if name.startswith("ANALYTICS_") and not name.startswith("ANALYTICS_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str]]:
    capsys.readouterr()
    code = main(["doctor"])
    lines = capsys.readouterr().out.splitlines()
    return code, {line.split(":", 1)[0].split(None, 1)[1]: line for line in lines}


def test_a_migrated_embedded_setup_passes_with_the_jwt_warning(
    env: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """SQLite migrated, private files: every check ok, the missing JWT key only a warning."""
    assert main(["migrate"]) == 0
    code, found = _doctor(capsys)
    assert code == 0
    for name in ("configuration", "database", "clock", "object_store", "data directory",
                 "database file"):
        assert found[name].startswith("ok"), found[name]
    assert found["jwt"].startswith("warn")


def test_an_unmigrated_database_fails_with_the_migrate_fix(
    env: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The database line says what is wrong and what to run."""
    code, found = _doctor(capsys)
    assert code == 1
    assert found["database"].startswith("FAIL")
    assert "fix: run `analytics migrate`" in found["database"]


def test_a_configured_redis_that_is_down_fails_with_its_fix(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Redis URL nobody answers on: FAIL naming ANALYTICS_REDIS_URL."""
    assert main(["migrate"]) == 0
    monkeypatch.setenv("ANALYTICS_REDIS_URL", "redis://127.0.0.1:1/0")
    code, found = _doctor(capsys)
    assert code == 1
    assert found["redis"].startswith("FAIL")
    assert "ANALYTICS_REDIS_URL" in found["redis"]


def test_a_readable_data_directory_fails_with_the_chmod_fix(
    env: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Files the product writes are private: a group-readable data directory is a failure."""
    assert main(["migrate"]) == 0
    env.chmod(0o755)
    code, found = _doctor(capsys)
    assert code == 1
    assert found["data directory"].startswith("FAIL")
    assert f"chmod 700 {env}" in found["data directory"]


def test_an_invalid_configuration_exits_2_naming_it(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The configuration itself is checked first."""
    monkeypatch.setenv("ANALYTICS_PORT", "eighty")
    assert main(["doctor"]) == 2
    assert "ANALYTICS_PORT" in capsys.readouterr().err


@pytest.mark.postgres
def test_postgres_database_and_clock_are_checked(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL the clock line compares this host with the server's now()."""
    with fresh_postgres_database() as url:
        monkeypatch.setenv("ANALYTICS_DATABASE_URL", url.render_as_string(hide_password=False))
        code, found = _doctor(capsys)
    assert found["database"].startswith("ok"), found["database"]
    assert found["clock"].startswith("ok")
    assert "s from the database's clock" in found["clock"]
    assert code == 0
