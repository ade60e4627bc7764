"""Metrics in gunicorn multi-process mode aggregate every worker's values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WORKER = """
from analytics_app.observability import metrics
metrics.observe_request("GET", "/analytics/v1/orgs/{orgId}/usage", 200, 0.01)
"""
READER = """
from analytics_app.observability import metrics
body, _ = metrics.render()
print(body.decode())
"""


def _run(code: str, directory: Path) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_render_sums_counters_written_by_separate_processes(tmp_path: Path) -> None:
    """Two worker processes counting one request each show up as 2 in a third process."""
    _run(WORKER, tmp_path)
    _run(WORKER, tmp_path)
    text = _run(READER, tmp_path)
    line = next(
        line for line in text.splitlines()
        if line.startswith("http_requests_total{") and 'status="200"' in line
    )
    assert line.endswith(" 2.0")
