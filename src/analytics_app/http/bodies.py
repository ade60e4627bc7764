"""Request bodies: size limit, content type, JSON with Decimal numbers, export requests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import falcon

from analytics_app.http.params import parse_instant
from analytics_app.http.problems import problem
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.exports import MAX_MODELS, ExportGranularity, ExportKind, ExportRequest
from analytics_core.timegrid import zone_error

GRANULARITIES: Mapping[str, ExportGranularity] = {
    "hourly": ExportGranularity.HOURLY, "daily": ExportGranularity.DAILY,
    "monthly": ExportGranularity.MONTHLY, "hour": ExportGranularity.HOURLY,
    "day": ExportGranularity.DAILY, "month": ExportGranularity.MONTHLY,
}


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _body_error(reason: str) -> ValidationFailed:
    return ValidationFailed([FieldError("body", reason)], "invalid request body")


def _require_json(req: falcon.Request) -> None:
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise problem(
            415, "unsupported-media-type", "Unsupported media type",
            "the body must be JSON with Content-Type: application/json",
            [FieldError("Content-Type", "must be application/json")],
        )


def _too_large(max_bytes: int) -> Exception:
    return problem(
        413, "payload-too-large", "Payload too large",
        f"the body must be at most {max_bytes} bytes", [FieldError("body", "is too large")],
    )


def _read_body(req: falcon.Request, limit: int) -> bytes:
    """At most `limit` bytes of the body. A chunked body has no Content-Length, so Falcon's
    bounded stream reads it as empty: the server decodes the chunks and ends its input stream
    at the body's end (`wsgi.input_terminated`), so that stream is read instead."""
    if req.content_length is None and req.env.get("wsgi.input_terminated"):
        data: bytes = req.stream.read(limit)
        return data
    return req.bounded_stream.read(limit)


def read_json(req: falcon.Request, max_bytes: int) -> object:
    """The decoded JSON body; numbers with a fraction become Decimal, never float."""
    return parse_json(read_json_bytes(req, max_bytes))


def read_json_bytes(req: falcon.Request, max_bytes: int) -> bytes:
    """The raw bytes of a JSON body (415 for another type, 413 over `max_bytes`, 400 when
    empty), not decoded yet."""
    length = req.content_length
    if length is not None and length > max_bytes:
        raise _too_large(max_bytes)
    _require_json(req)
    data = _read_body(req, max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data.strip():
        raise _body_error("is required")
    return data


def parse_json(data: bytes) -> object:
    """JSON bytes decoded as the API reads every body (fractions as Decimal, no NaN), or a
    field error on `body` that says what is wrong and where."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _body_error("must be UTF-8") from e
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise _body_error(f"is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from e
    except (ValueError, RecursionError) as e:
        raise _body_error("is not valid JSON (out-of-range number or nesting too deep)") from e


def read_csv(req: falcon.Request, max_bytes: int) -> bytes:
    """The raw bytes of a `text/csv` body (415 for another type, 413 over `max_bytes`)."""
    length = req.content_length
    if length is not None and length > max_bytes:
        raise _too_large(max_bytes)
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "text/csv":
        raise problem(
            415, "unsupported-media-type", "Unsupported media type",
            "the body must be the report itself with Content-Type: text/csv",
            [FieldError("Content-Type", "must be text/csv")],
        )
    data = _read_body(req, max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def json_object(body: object) -> Mapping[str, Any]:
    """The body as an object, or 400."""
    if not isinstance(body, Mapping):
        raise _body_error("must be a JSON object")
    return body


class _Fields:
    """Reads an export request object, collecting field errors."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.errors: list[FieldError] = []

    def get(self, camel: str, snake: str) -> Any:
        return self.raw.get(camel, self.raw.get(snake))

    def instant(self, raw: Mapping[str, Any], key: str) -> Any:
        try:
            return parse_instant(raw.get(key))
        except ValueError as e:
            self.errors.append(FieldError(f"timeRange.{key}", str(e)))
            return None

    def enum(self, camel: str, snake: str, choices: Mapping[str, Any], default: Any) -> Any:
        value = self.get(camel, snake)
        if value is None:
            return default
        if not isinstance(value, str) or value not in choices:
            self.errors.append(FieldError(camel, "must be one of " + ", ".join(choices)))
            return default
        return choices[value]

    def models(self) -> tuple[uuid.UUID, ...]:
        value = self.get("models", "model_ids")
        if value is None:
            return ()
        if not isinstance(value, list) or len(value) > MAX_MODELS:
            self.errors.append(FieldError("models", f"must be a list of at most {MAX_MODELS}"))
            return ()
        found: list[uuid.UUID] = []
        for i, item in enumerate(value):
            try:
                found.append(uuid.UUID(item))
            except (ValueError, TypeError, AttributeError):
                self.errors.append(FieldError(f"models[{i}]", "must be a UUID string"))
        return tuple(dict.fromkeys(found))


def export_request(body: object, org_id: uuid.UUID) -> ExportRequest:
    """Validate `{timeRange{start,end}, granularity, tz, models[], kind}` into a request."""
    f = _Fields(json_object(body))
    time_range = f.get("timeRange", "time_range")
    start = end = None
    if not isinstance(time_range, Mapping):
        f.errors.append(FieldError("timeRange", "is required: {start, end}"))
    else:
        start, end = f.instant(time_range, "start"), f.instant(time_range, "end")
    granularity = f.enum("granularity", "granularity", GRANULARITIES, ExportGranularity.DAILY)
    kinds = {k.value: k for k in ExportKind}
    kind = f.enum("kind", "kind", kinds, ExportKind.USAGE)
    tz = f.get("tz", "timezone")
    tz = "UTC" if tz is None else tz
    reason = zone_error(tz)
    if reason is not None:
        f.errors.append(FieldError("tz", reason))
    models = f.models()
    close = f.get("close", "close")
    if close is not None and not isinstance(close, bool):
        f.errors.append(FieldError("close", "must be true or false"))
    if close and kind is not ExportKind.USAGE:
        f.errors.append(FieldError("close", "only usage exports can be closes"))
    if f.errors:
        raise ValidationFailed(f.errors, "invalid export request")
    assert start is not None
    assert end is not None
    return ExportRequest(org_id, start, end, granularity, tz, models, kind, close is True)
