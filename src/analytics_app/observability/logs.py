"""Structured JSON logging with the current request id on every line; secrets are redacted."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "analytics_request_id", default=None
)

REDACTED = "[redacted]"
_SECRET_HINTS = ("authorization", "api_key", "apikey", "api-key", "password", "secret", "token")
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "", None, None)))
_SKIP = _RECORD_FIELDS | {"message", "asctime", "request_id", "taskName"}


# Credentials that third-party loggers (botocore at DEBUG, urllib3, psycopg) may print, found by
# their shape: our API keys, JWTs, AWS access key ids, SigV4 credentials and signatures,
# Authorization header values, and passwords in URLs.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"ak_[0-9A-Za-z]{8,}_[0-9A-Za-z_-]+"), REDACTED),
    (re.compile(r"eyJ[0-9A-Za-z_-]+\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]*"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[0-9A-Z]{12,}\b"), REDACTED),
    (re.compile(r"(?i)(credential=)[^\s,'\"&]+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)(signature=)[0-9a-f]+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^\s,'\"&]+"),
     rf"\1{REDACTED}"),
    (re.compile(r"(?i)((?:authorization|x-api-key)['\"]?\s*[:=]\s*b?['\"]?)[^'\"\n]+"),
     rf"\1{REDACTED}"),
    (re.compile(r"(://[^/\s:@'\"]*:)[^@/\s'\"]+@"), rf"\1{REDACTED}@"),
)


class Redactor:
    """Scrubs credentials from rendered log lines: the configured secret values (S3 keys, the
    JWT key, passwords) wherever they appear, and credential-shaped text by pattern."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        known = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, known))) if known else None

    def scrub(self, text: str) -> str:
        """`text` with every credential replaced by `[redacted]`."""
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        for pattern, replacement in _SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
        return text


class RedactingFormatter(logging.Formatter):
    """A plain-text formatter whose lines go through a Redactor."""

    def __init__(self, fmt: str, redactor: Redactor) -> None:
        super().__init__(fmt)
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """The formatted line, scrubbed."""
        return self._redactor.scrub(super().format(record))


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
    """One JSON object per line: ts, level, logger, message, request_id, pid and any extras;
    credentials are scrubbed from the whole line (message, extras, traceback)."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor or Redactor()

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
        return self._redactor.scrub(json.dumps(body, default=str, ensure_ascii=False))


def configure_logging(
    level: str | int = "INFO", *, json_lines: bool = True, stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> logging.Handler:
    """Route every logger through one handler on the root (JSON lines by default); `secrets`
    (the deployment's credentials) are scrubbed from every line at every level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    redactor = Redactor(secrets)
    if json_lines:
        handler.setFormatter(JsonFormatter(redactor))
    else:
        handler.setFormatter(RedactingFormatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s", redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return handler
