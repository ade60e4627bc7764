"""Logs, library log levels and tracing, configured the same way in every process.

`configure_process(settings)` is the first thing the export worker, the stream consumer and
replay do; each API worker calls `configure_logs` after gunicorn forks it (or leaves logging to
`deploy/gunicorn.conf.py`'s logconfig) and `configure_tracing` when its runtime starts.
"""

from __future__ import annotations

import logging

from analytics_app.config import Settings
from analytics_app.observability import tracing
from analytics_app.observability.logs import configure_logging

# Third-party chatter kept out of the service log: Alembic's per-check context lines, and
# rstream's reconnect noise (the stream driver logs its own, with the partition named).
_QUIET = {"alembic": logging.WARNING, "rstream": logging.CRITICAL}


def quiet_libraries() -> None:
    """Raise the level of the libraries that log routine detail at INFO."""
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)


def configure_logs(settings: Settings) -> None:
    """JSON lines on stderr at ANALYTICS_LOG_LEVEL, every configured secret scrubbed."""
    configure_logging(settings.log_level, secrets=settings.secret_values())
    quiet_libraries()


def configure_tracing() -> bool:
    """Install the tracer provider ANALYTICS_OTEL_EXPORTER asks for; whether tracing is on."""
    return tracing.configure_tracing() is not None


def configure_process(settings: Settings) -> bool:
    """Logs and tracing for a process without an API; returns whether tracing is on."""
    configure_logs(settings)
    return configure_tracing()
