"""The export worker serves its own /metrics; SQL pool use is a gauge read at scrape time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics_app.bootstrap.application import Application
from analytics_app.config import load_settings
from analytics_app.observability import metrics
from tests.ops.conftest import free_port

START_TIMEOUT_SECONDS = 60.0


def _clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ANALYTICS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env["ANALYTICS_DATA_DIR"] = str(data_dir)
    env["ANALYTICS_DATABASE_URL"] = "memory"
    return env


def _scrape(port: int, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return r.read().decode()
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def worker_port(tmp_path: Path) -> Iterator[int]:
    """A running `analytics worker --metrics-port PORT` (memory storage); stopped by SIGTERM."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "analytics_app.cli", "worker", "--metrics-port", str(port)],
        env=_clean_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""


def test_worker_serves_its_export_metrics(worker_port: int) -> None:
    """`analytics worker --metrics-port` exposes analytics_export_jobs_total and friends."""
    text = _scrape(worker_port, time.monotonic() + START_TIMEOUT_SECONDS)
    assert 'analytics_export_jobs_total{status="succeeded"}' in text
    assert "analytics_export_attempts_total" in text


def test_worker_metrics_port_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """ANALYTICS_WORKER_METRICS_PORT is read (0, no server, by default)."""
    monkeypatch.delenv("ANALYTICS_WORKER_METRICS_PORT", raising=False)
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", "memory")
    assert load_settings().worker_metrics_port == 0
    monkeypatch.setenv("ANALYTICS_WORKER_METRICS_PORT", "9109")
    assert load_settings().worker_metrics_port == 9109


def _pool_values(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line.startswith("analytics_db_pool_connections{"):
            state = line.split('state="', 1)[1].split('"', 1)[0]
            values[state] = float(line.rsplit(" ", 1)[1])
    return values


def test_sqlite_pool_use_is_exposed_in_use_while_checked_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """analytics_db_pool_connections{state} counts a checked-out connection as in_use."""
    for name in [n for n in os.environ if n.startswith("ANALYTICS_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    application = Application(load_settings())
    try:
        application.migrate()
        engine = application.container.sql_storage().engine
        before = _pool_values(metrics.render()[0].decode())
        with engine.connect():
            during = _pool_values(metrics.render()[0].decode())
        after = _pool_values(metrics.render()[0].decode())
    finally:
        application.shutdown()
    assert set(before) == {"in_use", "idle"}
    assert during["in_use"] == before["in_use"] + 1
    assert after["in_use"] == before["in_use"]
