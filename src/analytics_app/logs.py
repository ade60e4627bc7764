"""Structured JSON logging with the current request id on every line; secrets are redacted."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "analytics_request_id", default=None
)

REDACTED = "[redacted]"
_SECRET_HINTS = ("authorization", "api_key", "apikey", "api-key", "password", "secret", "token")
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "", None, None)))
_SKIP = _RECORD_FIELDS | {"message", "asctime", "request_id", "taskName"}


def is_secret_name(name: str) -> bool:
    """Whether a field name suggests a credential (its value is never logged)."""
    lowered = name.lower()
    return any(hint in lowered for hint in _SECRET_HINTS)


class RequestIdFilter(logging.Filter):
    """Stamps every record with the request id of the request being served (or None)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id`; never drops a record."""
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, pid and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record; extra fields whose names look like credentials are redacted."""
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _SKIP and not key.startswith("_"):
                body[key] = REDACTED if is_secret_name(key) else value
        if record.exc_info:
            body["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str, ensure_ascii=False)


def configure_logging(
    level: str | int = "INFO", *, json_lines: bool = True, stream: TextIO | None = None
) -> logging.Handler:
    """Route every logger through one handler on the root (JSON lines by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return handler
