"""The runtime of one API worker process: the Application, its Falcon app, the embedded worker.

`LazyApp` is the WSGI callable gunicorn serves (`analytics_app.wsgi:app`, `analytics serve`):
it builds the runtime in the process that serves its first request, so pools and threads are
never shared across a fork.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import falcon

from analytics_app.bootstrap.application import Application
from analytics_app.config import Settings
from analytics_app.http.app import create_app
from analytics_app.http.tracing_middleware import install_tracing
from analytics_app.ui.mount import mount_dashboard
from analytics_app.workers.export import EmbeddedWorker

log = logging.getLogger("analytics.wsgi")  # the name operators filter on

StartResponse = Callable[..., Any]


@attrs.define
class Runtime:
    """What one serving process owns: the composition, the Falcon app, the embedded worker."""

    application: Application
    app: falcon.App[falcon.Request, falcon.Response]
    embedded: EmbeddedWorker | None = None
    alerts: EmbeddedWorker | None = None  # the embedded alerts worker (budget evaluation)
    closed: bool = False

    def close(self) -> None:
        """Stop the embedded worker (finishing its job in hand) and close every resource."""
        if self.closed:
            return
        self.closed = True
        for worker in (self.alerts, self.embedded):
            if worker is not None:
                worker.stop()
        self.application.shutdown()


def preflight(settings: Settings) -> None:
    """Fail fast before serving: the database must be reachable and migrated.

    Raises SchemaNotMigrated or StoreUnavailable; opens nothing that outlives the call.
    """
    with Application(settings) as application:
        application.preflight()


def start_runtime(settings: Settings, application: Application | None = None) -> Runtime:
    """Build the app (and start the embedded worker when enabled) in the calling process."""
    application = application if application is not None else Application(settings)
    application.preflight()
    app = create_app(application.http_api())
    mount_dashboard(app, application.dashboard_api())
    runtime = Runtime(application, app)
    install_tracing(runtime.app)  # ANALYTICS_OTEL_EXPORTER, as in every process
    if settings.embedded_worker:
        runtime.embedded = EmbeddedWorker(application.export_worker()).start()
        runtime.alerts = EmbeddedWorker(application.alert_worker(),
                                        "embedded-alerts-worker").start()
    atexit.register(runtime.close)
    log.info("runtime started in process %d (storage %s, embedded worker %s)", os.getpid(),
             settings.storage, "on" if settings.embedded_worker else "off")
    return runtime


class LazyApp:
    """A WSGI callable that starts the runtime on first use in each process (fork-safe)."""

    def __init__(
        self, settings: Settings, factory: Callable[[Settings], Runtime] = start_runtime
    ) -> None:
        self.settings = settings
        self._factory = factory
        self._lock = threading.Lock()
        self._runtime: Runtime | None = None
        self._pid: int | None = None

    def runtime(self) -> Runtime:
        """This process's runtime, started on first call (and again in a forked child)."""
        with self._lock:
            if self._runtime is None or self._pid != os.getpid():
                self._runtime = self._factory(self.settings)
                self._pid = os.getpid()
            return self._runtime

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        result: Iterable[bytes] = self.runtime().app(environ, start_response)
        return result
