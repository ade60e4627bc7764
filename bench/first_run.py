"""Seconds from `make run` in a fresh clone to the first 200 from /status/healthz.

Clones this repository into a temporary directory and times `make run` (venv, install, migrate,
demo data, gunicorn) until healthz answers, three ways: with uv and empty package caches
(`cold`, what a new machine sees), with uv and the caches of the cold run (`warm`), and with
uv unavailable so plain pip installs (`pip`, the fallback, caches as the machine has them).
Prints each figure and its ratio to the 30 s target. Loopback only; every server is stopped.

    .venv/bin/python bench/first_run.py [--skip-pip]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/analytics/v1/status/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def first_healthz(extra_env: dict[str, str], *, no_uv: bool = False) -> float:
    """Clone, `make run`, and return the seconds until healthz (the server is stopped)."""
    with tempfile.TemporaryDirectory(prefix="first-run-") as tmp:
        clone = Path(tmp) / "analytics"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        if no_uv:  # a uv that cannot be installed: the Makefile falls back to pip
            makefile = clone / "Makefile"
            makefile.write_text(makefile.read_text().replace(
                "-m pip install --quiet uv", "-m pip install --quiet uv-does-not-exist"))
        port = _free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ANALYTICS_", "VIRTUAL_ENV", "PROMETHEUS_"))}
        env.update({"ANALYTICS_PORT": str(port), "ANALYTICS_WORKERS": "1", **extra_env})
        started = time.monotonic()
        make = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            while not _healthy(port):
                if make.poll() is not None:
                    raise RuntimeError("make run exited before healthz")
                if time.monotonic() - started > 900:
                    raise RuntimeError("no healthz within 900 s")
                time.sleep(0.2)
            return time.monotonic() - started
        finally:
            os.killpg(make.pid, signal.SIGTERM)
            make.wait(timeout=60)


def main() -> None:
    """Print the three figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-pip", action="store_true", help="skip the slow pip fallback run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="first-run-cache-") as cache:
        cold_env = {"UV_CACHE_DIR": cache, "PIP_NO_CACHE_DIR": "1"}
        runs = [("cold (uv, empty caches)", first_healthz(cold_env)),
                ("warm (uv, caches of the cold run)", first_healthz({"UV_CACHE_DIR": cache}))]
    if not args.skip_pip:
        runs.append(("pip fallback (uv unavailable)", first_healthz({}, no_uv=True)))
    for name, seconds in runs:
        print(f"{name:<36} {seconds:6.1f} s  ({seconds / TARGET_SECONDS:.2f} x the 30 s target)")


if __name__ == "__main__":
    main()
