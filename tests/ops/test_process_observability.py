"""Every process configures logs and tracing the same way: the export worker as the API does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ANALYTICS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(ANALYTICS_DATA_DIR=str(data_dir), ANALYTICS_WORKER_METRICS_PORT="0", **extra)
    return env


def _analytics(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analytics_app.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_export_worker_exports_spans_when_tracing_is_configured(tmp_path: Path) -> None:
    """`analytics worker --once` with ANALYTICS_OTEL_EXPORTER=console prints the spans of its
    SQL statements (tracing used to be configured on the HTTP path only)."""
    assert _analytics("migrate", env=_env(tmp_path)).returncode == 0
    run = _analytics("worker", "--once", env=_env(tmp_path, ANALYTICS_OTEL_EXPORTER="console"))
    assert run.returncode == 0, run.stderr
    assert '"trace_id"' in run.stdout
    assert '"db.statement"' in run.stdout or '"db.system"' in run.stdout

