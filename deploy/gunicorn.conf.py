"""Gunicorn settings for `gunicorn -c deploy/gunicorn.conf.py analytics_app.wsgi:app`.

Multi-process Prometheus: PROMETHEUS_MULTIPROC_DIR is set (and emptied) in the master before
any worker imports prometheus_client; `child_exit` drops a dead worker's live gauges. Every
log line (gunicorn's own and the app's, including the per-request access line with its
request id) is one JSON object on stderr.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _metrics_dir() -> tuple[str, bool]:
    """The operator's directory, emptied (stale files would add dead counts), or a fresh one
    (and whether we created it)."""
    configured = os.environ.get(MULTIPROC_ENV)
    created = not configured
    if not configured:
        configured = tempfile.mkdtemp(prefix="analytics-metrics-")
    directory = Path(configured)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return str(directory), created


_METRICS_DIR, _CREATED_METRICS_DIR = _metrics_dir()

# After the metrics directory is set (nothing below loads prometheus_client today; keep it so).
from analytics_app.config import load_settings  # noqa: E402  the ANALYTICS_* environment
from analytics_app.http.read_ahead import ReadAheadWorker  # noqa: E402
from analytics_app.observability.logs import Redactor  # noqa: E402

_SETTINGS = load_settings()
# The workers fork from the master and keep these class attributes.
ReadAheadWorker.header_timeout = _SETTINGS.request_header_timeout_seconds
ReadAheadWorker.body_timeout = _SETTINGS.request_body_timeout_seconds
ReadAheadWorker.max_body = _SETTINGS.max_body_bytes
_LOG_LEVEL = os.environ.get("ANALYTICS_LOG_LEVEL", "INFO").upper()

_HOST = os.environ.get("ANALYTICS_HOST", "127.0.0.1")
bind = [f"{_HOST}:{os.environ.get('ANALYTICS_PORT', '8084')}"]
workers = int(os.environ.get("ANALYTICS_WORKERS", "2"))
# gthread that reads whole requests before a thread takes them (slow clients hold no thread),
# with 414/431/400 as problem+json; deadlines from ANALYTICS_REQUEST_*_TIMEOUT_SECONDS (above)
worker_class = "analytics_app.http.read_ahead.ReadAheadWorker"
threads = 4
timeout = 120
graceful_timeout = 30
preload_app = False  # each worker builds its own pools after the fork (analytics_app.wsgi)
proc_name = "analytics"
# The app writes the access log itself (logger analytics_app.http.access): one JSON line per
# request with method, route template, status, duration_ms and request_id.
accesslog = None
errorlog = "-"
loglevel = _LOG_LEVEL.lower()
# Several services on one host must not fight over ~/.gunicorn/gunicorn.ctl (gunicorn >= 24).
control_socket_disable = True

logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "analytics_app.observability.logs.RequestIdFilter"}},
    # Every line scrubbed of the configured credentials and credential-shaped text.
    "formatters": {"json": {"()": "analytics_app.observability.logs.JsonFormatter",
                            "redactor": Redactor(_SETTINGS.secret_values())}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler", "stream": "ext://sys.stderr",
            "formatter": "json", "filters": ["request_id"],
        },
    },
    "root": {"level": _LOG_LEVEL, "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": _LOG_LEVEL, "handlers": ["stderr"], "propagate": False},
        # The app's own access line (with request_id) replaces gunicorn's.
        "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
        "alembic": {"level": "WARNING"},
    },
}


def post_worker_init(worker: Any) -> None:
    """Log that a worker loaded the app and accepts requests."""
    worker.log.info("worker %d ready", worker.pid)


def child_exit(_server: Any, worker: Any) -> None:
    """Drop the exited worker's live gauges from the aggregated /metrics."""
    from analytics_app.observability.metrics import mark_process_dead  # noqa: PLC0415  after the env is set

    mark_process_dead(worker.pid)


def on_exit(_server: Any) -> None:
    """Remove the metrics directory when we created it ourselves."""
    if _CREATED_METRICS_DIR:
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)
