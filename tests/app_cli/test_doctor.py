"""`analytics doctor`: one line per check, the fix for each failure, exit 1 when any failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics_app.cli import main
from tests.contract.sql_backends import fresh_postgres_database
from tests.contract.store_backends import (  # noqa: F401  fixtures, requested by name below
    S3_REGION,
    MotoServer,
    moto_s3_server,
    s3_bucket,
)


@pytest.fixture
def env(data_dir: Path) -> Path:
    """A clean ANALYTICS_* environment on an empty data directory."""
    return data_dir


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


@pytest.mark.s3
def test_s3_exports_are_checked_with_an_encrypted_probe(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    moto_s3_server: MotoServer, s3_bucket: str,  # noqa: F811  the fixtures above
) -> None:
    """With a bucket configured: the object store answers and a probe upload comes back
    encrypted; a missing bucket fails both with their fixes."""
    assert main(["migrate"]) == 0
    for name, value in {"S3_BUCKET": s3_bucket, "S3_ENDPOINT_URL": moto_s3_server.endpoint_url,
                        "S3_REGION": S3_REGION, "S3_PATH_STYLE": "true",
                        "S3_ACCESS_KEY_ID": "testing", "S3_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(f"ANALYTICS_{name}", value)
    code, found = _doctor(capsys)
    assert found["object_store"].startswith("ok"), found["object_store"]
    assert found["s3 encryption"].startswith("ok"), found["s3 encryption"]
    assert "AES256" in found["s3 encryption"]
    monkeypatch.setenv("ANALYTICS_S3_BUCKET", f"missing-{s3_bucket}")
    code, found = _doctor(capsys)
    assert code == 1
    assert found["object_store"].startswith("FAIL")
    assert found["s3 encryption"].startswith("FAIL")
