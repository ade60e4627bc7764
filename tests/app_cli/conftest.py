"""Fixtures shared by the CLI tests: a clean ANALYTICS_* environment on a temp data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from analytics_app.cli import main


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean ANALYTICS_* environment whose data dir is a temp directory."""
    for name in list(os.environ):
        if name.startswith("ANALYTICS_") and not name.startswith("ANALYTICS_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def migrated(data_dir: Path) -> Path:
    """The temp data dir with a migrated SQLite database."""
    assert main(["migrate"]) == 0
    return data_dir
