"""WSGI entry (`gunicorn analytics_app.wsgi:app`): one runtime per worker process, built lazily.

Importing this module does nothing. Reading `app` checks the configuration and the database
schema (refusing to start on an unmigrated database) and returns a WSGI callable
(`bootstrap.http_runtime.LazyApp`) that builds the container, the Falcon app and the embedded
export worker in the process that serves its first request.
"""

from __future__ import annotations

import functools
from typing import Any

from analytics_app.bootstrap.http_runtime import LazyApp, preflight
from analytics_app.config import load_settings


@functools.cache
def _module_app() -> LazyApp:
    settings = load_settings()
    preflight(settings)
    return LazyApp(settings)


def __getattr__(name: str) -> Any:
    # `app` is built on access (gunicorn's import of `analytics_app.wsgi:app`), never on import.
    if name == "app":
        return _module_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
