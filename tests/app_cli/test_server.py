"""`analytics serve` plumbing: gunicorn options from Settings and the metrics directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from analytics_app.cli import main
from analytics_app.cli.server import MULTIPROC_ENV, GunicornServer, metrics_dir
from analytics_app.config import Settings


def test_gunicorn_options_come_from_settings():
    """Bind address, workers and log level follow Settings; threads serve each worker."""
    server = GunicornServer(Settings(host="0.0.0.0", port=9001, workers=3, log_level="DEBUG"))
    assert server.cfg.bind == ["0.0.0.0:9001"]
    assert server.cfg.workers == 3
    assert server.cfg.worker_class_str == "analytics_app.http.read_ahead.ReadAheadWorker"
    assert server.cfg.preload_app is False
    assert server.cfg.loglevel == "debug"


def test_own_metrics_directory_lives_only_while_serving(monkeypatch: pytest.MonkeyPatch):
    """Without PROMETHEUS_MULTIPROC_DIR a fresh directory is used and removed afterwards."""
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with metrics_dir():
        directory = Path(os.environ[MULTIPROC_ENV])
        assert directory.is_dir()
    assert MULTIPROC_ENV not in os.environ
    assert not directory.exists()


def test_operator_metrics_directory_is_emptied_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
):
    """An operator's directory loses a previous run's files but stays in place."""
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    (tmp_path / "counter_123.db").write_bytes(b"old")
    with metrics_dir():
        assert list(tmp_path.glob("*.db")) == []
    assert tmp_path.is_dir()
    assert os.environ[MULTIPROC_ENV] == str(tmp_path)


def test_importing_the_cli_loads_no_metrics_library():
    """`serve` can still point prometheus_client at its directory: the CLI imports it late."""
    code = ("import sys, analytics_app.cli; m = sys.modules; "
            "sys.exit('prometheus_client' in m or 'analytics_app.bootstrap.container' in m)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_cli_loads_prometheus_client_only_inside_the_metrics_directory():
    """prometheus_client picks its multi-process mode when first imported: importing the CLI
    and the server module must not import it (or `serve` would count per worker, unsummed)."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = ("import sys, analytics_app.cli, analytics_app.cli.server; "
            "print('prometheus_client' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_serve_on_a_taken_port_exits_2_naming_it_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A second `analytics serve` on the same port stops at once with one clear message."""
    for name in list(os.environ):
        if name.startswith("ANALYTICS_") and not name.startswith("ANALYTICS_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", "memory")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--demo"]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in err
    assert "--port or ANALYTICS_PORT" in err
