"""The one error tree of the product; adapters translate driver errors into these."""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.frozen
class FieldError:
    """One invalid field: its name (camelCase, dotted for nesting) and a human reason."""

    field: str
    reason: str


class AnalyticsError(Exception):
    """Root of every error the product raises on purpose."""


class ValidationFailed(AnalyticsError, ValueError):
    """Input violates the contract; `errors` names every bad field."""

    def __init__(self, errors: Sequence[FieldError], message: str = "validation failed") -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        detail = "; ".join(f"{e.field}: {e.reason}" for e in self.errors)
        super().__init__(f"{message}: {detail}" if detail else message)


class InvalidTimeRange(ValidationFailed):
    """A start/end pair that is missing, inverted or too long."""


class NotFound(AnalyticsError, LookupError):
    """The requested resource does not exist (or is not visible to the caller)."""


class Gone(AnalyticsError, LookupError):
    """The resource existed but has expired."""


class Conflict(AnalyticsError, ValueError):
    """The request conflicts with the current state (e.g. reused idempotency key)."""


class Unauthenticated(AnalyticsError, PermissionError):
    """No valid identity was presented."""


class Forbidden(AnalyticsError, PermissionError):
    """The identity lacks the permission or targets another org."""


class InvalidTransition(AnalyticsError, ValueError):
    """An export job state change that the state machine forbids."""


class StoreUnavailable(AnalyticsError, ConnectionError):
    """A backing service (database, broker, cache, object store) cannot be reached; retryable."""


class OffsetGap(AnalyticsError, RuntimeError):
    """A stream batch does not continue from the offset stored for its consumer: committing it
    would mark messages as consumed that were never stored. Nothing of the batch is committed;
    the consumer re-reads from `stored + 1`."""

    def __init__(self, stream: str, stored: int, first: int) -> None:
        super().__init__(f"stream {stream!r}: batch starts at offset {first} but offset "
                         f"{stored} is the last one stored; {first - stored - 1} message(s) "
                         "would be skipped")
        self.stream, self.stored, self.first = stream, stored, first


class SchemaNotMigrated(AnalyticsError, RuntimeError):
    """The database schema is missing or behind; run `analytics migrate`."""


class ConfigError(AnalyticsError, ValueError):
    """One or more configuration values are invalid; the message names each one."""
