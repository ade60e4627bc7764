"""A consumer service that imports only `analytics`: ingest -> query -> export on memory and
PostgreSQL, and its code passes mypy --strict against the package's type information."""

from __future__ import annotations

import ast
import csv
import io
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from analytics import Analytics
from tests.contract.sql_backends import fresh_postgres_database
from tests.library.consumer_service.service import run

SERVICE = Path(__file__).resolve().parent / "consumer_service"


def _check(result: tuple[str, str, str, list[str]]) -> None:
    spend, spend_async, csv_text, refused = result
    assert spend == spend_async == "1.2501"
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert sum(Decimal(r["cost_estimate_cents"]) for r in rows) == Decimal("1.2501")
    assert "orgId" in refused
    assert "modelId" in refused


def test_the_consumer_service_runs_in_memory(tmp_path: Path) -> None:
    """Record, report (sync and asyncio) and export with the in-memory library."""
    with Analytics.in_memory(export_dir=tmp_path) as analytics:
        _check(run(analytics))


@pytest.mark.postgres
def test_the_consumer_service_runs_on_postgres(tmp_path: Path) -> None:
    """The same pass on a fresh PostgreSQL database the library migrates itself."""
    with fresh_postgres_database(migrate=False) as url:
        environ = {"ANALYTICS_DATABASE_URL": url.render_as_string(hide_password=False),
                   "ANALYTICS_EXPORT_DIR": str(tmp_path)}
        with Analytics.from_env(environ) as analytics:
            analytics.migrate()
            _check(run(analytics))


def test_the_consumer_service_imports_only_the_public_module() -> None:
    """No import of analytics_core, analytics_adapters or analytics_app."""
    for path in SERVICE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("analytics_"), (path, node.module)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("analytics_") for a in node.names), path


def test_the_consumer_service_passes_mypy_strict() -> None:
    """Typed end to end: the facade's signatures are enough for mypy --strict."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--config-file", "/dev/null", str(SERVICE)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
