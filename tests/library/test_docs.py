"""docs/library.md runs as written: every example is a doctest, against memory, a SQLite file
and a fresh PostgreSQL database."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from tests.contract.sql_backends import fresh_postgres_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_the_library_guide_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each `>>>` example of docs/library.md gives the output printed under it."""
    with fresh_postgres_database(migrate=False) as url:
        monkeypatch.setenv("ANALYTICS_EXAMPLE_POSTGRES_URL",
                           url.render_as_string(hide_password=False))
        result = doctest.testfile(
            str(ROOT / "docs" / "library.md"), module_relative=False, report=True,
            globs={"export_dir": tmp_path / "exports", "data_dir": tmp_path / "data"},
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        )
    assert result.attempted > 20
    assert result.failed == 0
