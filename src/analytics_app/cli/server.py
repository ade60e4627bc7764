"""`analytics serve`: gunicorn run programmatically, one runtime per worker process."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from analytics_app.config import Settings
from analytics_app.http.read_ahead import ReadAheadWorker
from analytics_core.errors import ConfigError

if TYPE_CHECKING:  # importing the container loads prometheus_client: only after the env is set
    from analytics_app.bootstrap.application import Application

THREADS_PER_WORKER = 4
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def metrics_dir() -> Iterator[None]:
    """Point prometheus_client at a fresh multi-process directory while serving.

    Must be entered before prometheus_client is imported. An operator-provided directory is
    emptied of a previous run's files and left in place; ours is removed at the end.
    """
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        for stale in Path(configured).glob("*.db"):  # a previous run's counts would add up
            stale.unlink()
        yield
        return
    directory = tempfile.mkdtemp(prefix="analytics-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(directory, ignore_errors=True)


class GunicornServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
    """Gunicorn with our settings; `load()` runs in each worker after the fork.

    `inherited` (memory mode only) is an Application built in the master before forking, so
    data seeded there (the demo) is what the single worker serves.
    """

    def __init__(
        self, settings: Settings, *, banner: str = "", inherited: Application | None = None,
    ) -> None:
        self.settings = settings
        self.banner = banner
        self.inherited = inherited
        super().__init__()

    def load_config(self) -> None:
        """Map Settings to gunicorn options (no command-line parsing)."""
        options: dict[str, Any] = {
            "bind": [f"{self.settings.host}:{self.settings.port}"],
            "workers": self.settings.workers,
            # gthread that reads whole requests in its event loop before a thread takes them,
            # and answers 414/431/400 itself as problem+json (http/read_ahead.py)
            "worker_class": "analytics_app.http.read_ahead.ReadAheadWorker",
            "threads": THREADS_PER_WORKER,
            "timeout": 120,
            "graceful_timeout": 30,
            "preload_app": False,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": self.settings.log_level.lower(),
            "proc_name": "analytics",
            "when_ready": self._when_ready,
            "child_exit": _child_exit,
        }
        if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 24
            # Several services on one host must not fight over ~/.gunicorn/gunicorn.ctl.
            options["control_socket_disable"] = True
        for key, value in options.items():
            self.cfg.set(key, value)
        # The worker processes fork from this one and keep these class attributes.
        ReadAheadWorker.header_timeout = self.settings.request_header_timeout_seconds
        ReadAheadWorker.body_timeout = self.settings.request_body_timeout_seconds
        ReadAheadWorker.max_body = self.settings.max_body_bytes

    def _when_ready(self, _arbiter: object) -> None:
        url = f"http://{self.settings.host}:{self.settings.port}"
        print(f"\nServing {url} (storage: {self.settings.storage}, workers: "
              f"{self.settings.workers}, embedded export worker: "
              f"{'on' if self.settings.embedded_worker else 'off'}). Ctrl-C stops.", flush=True)
        print(f"Data: {self.settings.data_location}", flush=True)
        if self.banner:
            print(self.banner, flush=True)

    def load(self) -> Callable[..., Any]:
        """Build this worker's runtime (container, Falcon app, embedded export worker)."""
        from analytics_app.bootstrap.http_runtime import start_runtime  # noqa: PLC0415  after the metrics env is set
        from analytics_app.observability.setup import configure_logs  # noqa: PLC0415  in the worker

        configure_logs(self.settings)
        runtime = start_runtime(self.settings, self.inherited)
        return runtime.app


def _child_exit(_server: object, worker: Any) -> None:
    from analytics_app.observability.metrics import mark_process_dead  # noqa: PLC0415  worker-exit hook

    mark_process_dead(worker.pid)


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on (host, port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


def require_free_port(settings: Settings) -> None:
    """ConfigError naming the port and how to pick another when it is taken, instead of
    gunicorn's five retries of "Connection in use"."""
    if port_in_use(settings.host, settings.port):
        raise ConfigError(
            f"port {settings.port} on {settings.host} is already in use (another `analytics "
            "serve`?); stop it, or pick another port with --port or ANALYTICS_PORT")


def run_server(
    settings: Settings, *, banner: str = "", inherited: Application | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code (inside `metrics_dir()`).

    ConfigError when the port is taken (`require_free_port`)."""
    require_free_port(settings)
    try:
        GunicornServer(settings, banner=banner, inherited=inherited).run()
    except SystemExit as e:  # gunicorn exits the master through sys.exit
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.stdout.flush()
    return 0
