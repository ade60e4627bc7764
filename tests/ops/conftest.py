"""A real gunicorn (deploy/gunicorn.conf.py, 2 workers, in-memory storage) for the ops tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
HEALTH = "/analytics/v1/status/healthz"
START_TIMEOUT_SECONDS = 90.0
WORKERS = 2


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@attrs.define
class Gunicorn:
    """A running gunicorn master with its port, metrics directory and log file."""

    port: int
    metrics_dir: Path
    log_file: Path
    process: subprocess.Popen[bytes]

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One request on a fresh connection; returns status and body."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def log_text(self) -> str:
        """Everything the master and workers logged so far."""
        return self.log_file.read_text(encoding="utf-8", errors="replace")


def _wait_until_serving(server: Gunicorn) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"gunicorn exited early:\n{server.log_text()[-3000:]}")
        ready = len(re.findall(r'"message": "worker \d+ ready"', server.log_text()))
        try:
            if ready >= WORKERS and server.get(HEALTH)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer within the start timeout:\n{server.log_text()[-3000:]}")


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """gunicorn -c deploy/gunicorn.conf.py analytics_app.wsgi:app with 2 workers."""
    base = tmp_path_factory.mktemp("gunicorn")
    metrics_dir = base / "prometheus"
    log_file = base / "server.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env.update({
        "ANALYTICS_DATABASE_URL": "memory", "ANALYTICS_DATA_DIR": str(base / "data"),
        "ANALYTICS_EMBEDDED_WORKER": "false", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    })
    command = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF),
               "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS), "analytics_app.wsgi:app"]
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    server = Gunicorn(port, metrics_dir, log_file, process)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
