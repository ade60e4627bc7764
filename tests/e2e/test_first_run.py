"""The first five minutes, as a new user lives them: clone, `make run`, the printed commands,
a second `make run`, `analytics doctor` with a service down (issue 20)."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 240.0  # a cold install is seconds with uv; pip as fallback is slower


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANALYTICS_", "VIRTUAL_ENV", "PROMETHEUS_"))}
    env.update({"ANALYTICS_PORT": str(port), "ANALYTICS_WORKERS": "1",
                "ANALYTICS_WORKER_POLL_SECONDS": "0.2", "PYTHONUNBUFFERED": "1"})
    return env


def _healthy(port: int) -> bool:
    try:
        url = f"http://127.0.0.1:{port}/analytics/v1/status/healthz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A fresh clone of this repository (what a new user starts from)."""
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("needs git and make")
    target = tmp_path / "analytics"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True, timeout=120)
    return target


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl on PATH")
def test_clone_make_run_then_everything_printed_works(clone: Path) -> None:
    """`make run` in a fresh clone says what it is doing, serves, prints commands that work;
    a second `make run` stops at once naming the port; doctor names a stopped service."""
    port = _free_port()
    env = _env(port)
    lines: queue.Queue[str] = queue.Queue()
    started = time.monotonic()
    make = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert make.stdout is not None
    stdout = make.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        while not _healthy(port):
            assert make.poll() is None, "make run exited early"
            assert time.monotonic() - started < START_TIMEOUT, "no healthz"
            time.sleep(0.5)
        output: list[str] = []
        while not output or not output[-1].startswith("Health:"):
            output.append(lines.get(timeout=120).rstrip("\n"))
        steps = [line for line in output if line.startswith("==> ")]
        assert any("installing" in s for s in steps), output[:10]
        assert any("serving" in s for s in steps)
        assert any(line.startswith("Data: database sqlite:///") for line in output)
        commands = [line.strip() for line in output if line.startswith("  ")
                    and line.strip().split(" ")[0] in ("export", "curl", "JOB=$(curl", "sleep")]
        assert len(commands) >= 7
        script = "set -euo pipefail\n" + "\n".join(commands) + "\n"
        done = subprocess.run(["bash", "-c", script], cwd=clone, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert '"series": [' in done.stdout  # pretty-printed
        assert (clone / "export.csv").read_text().startswith("bucket_start,")

        second = subprocess.run(["make", "run"], cwd=clone, env=env, capture_output=True,
                                text=True, timeout=120, check=False)
        assert second.returncode != 0
        assert f"port {port} on 127.0.0.1 is already in use" in second.stderr

        doctor_env = {**env, "ANALYTICS_REDIS_URL": f"redis://127.0.0.1:{_free_port()}/0"}
        doctor = subprocess.run([str(clone / ".venv" / "bin" / "analytics"), "doctor"],
                                cwd=clone, env=doctor_env, capture_output=True, text=True,
                                timeout=120, check=False)
        assert doctor.returncode == 1
        assert "FAIL redis:" in doctor.stdout
        assert "ok   database:" in doctor.stdout
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(timeout=60)
