"""Reliability rules (SPEC §13): error rate or p95 latency over a sliding window, with a minimum
volume, that fire and resolve with hysteresis.

A rule watches the org, one model or one client. Its window is the last `window_minutes`
rounded to whole 15-minute buckets, the current bucket included: [floor15(now) + 15 min - N,
floor15(now) + 15 min). With at least `min_volume` invocations in the window:

- an `ok` rule **fires** when the value reaches `threshold`;
- a `firing` rule **resolves** when the value falls below `resolve_threshold` (at most
  `threshold`: between the two the state holds, so a value hovering at the threshold does not
  flap).

With less volume the state holds (1 error in 2 calls pages nobody, and an outage that stops the
traffic does not resolve itself). Each transition is numbered per rule (1, 2, ...), and the
store keeps one transition per number: concurrent evaluators record each transition once.

Error rates are in basis points (1/100 of a percent) and compared exactly in integers; p95 uses
the latency sketch (within 1 % of the exact value).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import attrs

from analytics_core.budgets import BudgetScope, ScopeType, read_name, read_scope
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.events import as_utc
from analytics_core.rollups import RollupStats
from analytics_core.timegrid import BUCKET, floor_bucket

DEFAULT_WINDOW_MINUTES = 15
MAX_WINDOW_MINUTES = 1440
DEFAULT_MIN_VOLUME = 100
MAX_P95_MS = 86_400_000
RESOLVE_SHARE = Decimal("0.8")  # default resolve threshold: 80 % of the threshold


class RuleMetric(StrEnum):
    """What a rule watches."""

    ERROR_RATE = "errorRate"  # basis points of failed invocations
    P95_LATENCY = "p95Latency"  # milliseconds


class ErrorClass(StrEnum):
    """Which failures an error-rate rule counts."""

    ANY = "any"  # error, timeout and throttled
    ERROR = "error"
    TIMEOUT = "timeout"
    THROTTLED = "throttled"


class RuleState(StrEnum):
    """Where a rule is."""

    OK = "ok"
    FIRING = "firing"


@attrs.frozen
class ReliabilityRule:
    """One org's rule. Thresholds are in the metric's unit: basis points for error rates,
    milliseconds for p95 latency."""

    rule_id: uuid.UUID
    org_id: uuid.UUID
    name: str
    scope: BudgetScope  # org, model or client
    metric: RuleMetric
    error_class: ErrorClass
    window_minutes: int
    threshold: int
    resolve_threshold: int
    min_volume: int
    created_at: datetime = attrs.field(converter=as_utc)
    created_by: str
    updated_at: datetime = attrs.field(converter=as_utc)

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The sliding window at `now`: whole buckets, the current one included."""
        end = floor_bucket(now) + BUCKET
        return end - timedelta(minutes=self.window_minutes), end


@attrs.frozen
class RuleTransition:
    """A rule firing or resolving: the n-th transition of its rule, recorded once."""

    transition_id: uuid.UUID
    org_id: uuid.UUID
    rule_id: uuid.UUID
    rule_name: str  # as it was then
    number: int
    state: RuleState  # the state entered
    metric: RuleMetric
    value: int  # basis points or milliseconds
    threshold: int  # the threshold crossed (resolve threshold when resolving)
    volume: int
    window_start: datetime = attrs.field(converter=as_utc)
    window_end: datetime = attrs.field(converter=as_utc)
    at: datetime = attrs.field(converter=as_utc)


def measure(rule: ReliabilityRule, stats: RollupStats) -> int | None:
    """The rule's value over a window's statistics (None without invocations)."""
    if not stats.invocations:
        return None
    if rule.metric is RuleMetric.P95_LATENCY:
        p95 = stats.percentile(0.95)
        return None if p95 is None else round(p95)
    return _failures(rule, stats) * 10_000 // stats.invocations


def _failures(rule: ReliabilityRule, stats: RollupStats) -> int:
    return {ErrorClass.ANY: stats.errors + stats.timeouts + stats.throttled,
            ErrorClass.ERROR: stats.errors, ErrorClass.TIMEOUT: stats.timeouts,
            ErrorClass.THROTTLED: stats.throttled}[rule.error_class]


def next_state(rule: ReliabilityRule, state: RuleState, stats: RollupStats) -> RuleState:
    """The state after seeing a window: fire at the threshold, resolve below the resolve
    threshold, hold otherwise and whenever the volume is below the minimum."""
    value = measure(rule, stats)
    if value is None or stats.invocations < rule.min_volume:
        return state
    if state is RuleState.OK and _reaches(rule, stats, rule.threshold):
        return RuleState.FIRING
    if state is RuleState.FIRING and not _reaches(rule, stats, rule.resolve_threshold):
        return RuleState.OK
    return state


def _reaches(rule: ReliabilityRule, stats: RollupStats, threshold: int) -> bool:
    if rule.metric is RuleMetric.ERROR_RATE:  # exact: failures / invocations vs bp / 10,000
        return _failures(rule, stats) * 10_000 >= threshold * stats.invocations
    p95 = stats.percentile(0.95)
    return p95 is not None and p95 >= threshold


# -- requests -------------------------------------------------------------------------------

RULE_FIELDS = frozenset({"name", "scope", "metric", "errorClass", "windowMinutes",
                         "threshold", "resolveThreshold", "minVolume"})
UPDATABLE = frozenset({"name", "threshold", "resolveThreshold", "minVolume", "windowMinutes"})


def _limit(metric: RuleMetric) -> tuple[Decimal, str]:
    return ((Decimal(100), "a percentage from 0 to 100 with up to 2 decimals")
            if metric is RuleMetric.ERROR_RATE
            else (Decimal(MAX_P95_MS), f"whole milliseconds from 1 to {MAX_P95_MS}"))


def read_threshold(raw: object, metric: RuleMetric, field: str,
                   errors: list[FieldError]) -> int | None:
    """A threshold in the request's unit (percent for error rates, ms for p95) to the stored
    unit (basis points, ms)."""
    top, what = _limit(metric)
    try:
        if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
            raise InvalidOperation
        dec = Decimal(repr(raw) if isinstance(raw, float) else raw)
    except (InvalidOperation, ValueError):
        errors.append(FieldError(field, f"must be {what}"))
        return None
    scaled = dec * 100 if metric is RuleMetric.ERROR_RATE else dec
    if (not dec.is_finite() or dec <= 0 or dec > top
            or scaled != scaled.to_integral_value()):
        errors.append(FieldError(field, f"must be {what}"))
        return None
    return int(scaled)


def _int(raw: object, field: str, low: int, high: int, errors: list[FieldError]) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        errors.append(FieldError(field, f"must be a whole number from {low} to {high}"))
        return low
    return raw


def _window(raw: object, errors: list[FieldError]) -> int:
    value = _int(raw, "windowMinutes", 15, MAX_WINDOW_MINUTES, errors)
    if value % 15:
        errors.append(FieldError("windowMinutes", "must be a multiple of 15 (rollups are "
                                                  "15-minute buckets)"))
    return value


def read_rule(body: object) -> dict[str, Any]:
    """The fields of a new rule; ValidationFailed naming every bad field."""
    if not isinstance(body, Mapping):
        raise ValidationFailed([FieldError("body", "must be a JSON object")], "invalid rule")
    errors = [FieldError(k, f"is not a rule field; valid: {', '.join(sorted(RULE_FIELDS))}")
              for k in sorted(set(body) - RULE_FIELDS)]
    name = read_name(body.get("name"), errors)
    scope = read_scope(body.get("scope"), errors, ())
    if scope.type not in (ScopeType.ORG, ScopeType.MODEL, ScopeType.CLIENT):
        errors.append(FieldError("scope.type", "must be one of: org, model, client"))
    metric = _enum(body.get("metric"), RuleMetric, "metric", errors)
    error_class = _enum(body.get("errorClass", "any"), ErrorClass, "errorClass", errors)
    if metric is RuleMetric.P95_LATENCY and "errorClass" in body:
        errors.append(FieldError("errorClass", "applies to errorRate rules only"))
    window = _window(body.get("windowMinutes", DEFAULT_WINDOW_MINUTES), errors)
    min_volume = _int(body.get("minVolume", DEFAULT_MIN_VOLUME), "minVolume", 1, 10**9, errors)
    threshold = resolve = None
    if metric is not None:
        threshold = read_threshold(body.get("threshold"), metric, "threshold", errors)
        if "resolveThreshold" in body:
            resolve = read_threshold(body["resolveThreshold"], metric, "resolveThreshold",
                                     errors)
        elif threshold is not None:
            resolve = max(int(threshold * RESOLVE_SHARE), 1)
        if threshold is not None and resolve is not None and resolve > threshold:
            errors.append(FieldError("resolveThreshold", "must be at most threshold"))
    if errors:
        raise ValidationFailed(errors, "invalid rule")
    return {"name": name, "scope": scope, "metric": metric,
            "error_class": error_class, "window_minutes": window, "threshold": threshold,
            "resolve_threshold": resolve, "min_volume": min_volume}


def read_rule_update(body: object, rule: ReliabilityRule) -> ReliabilityRule:
    """A rule with the changes of a PATCH body (name, thresholds, minVolume, windowMinutes)."""
    if not isinstance(body, Mapping):
        raise ValidationFailed([FieldError("body", "must be a JSON object")], "invalid rule")
    errors = [FieldError(k, "cannot change (create a new rule instead)")
              for k in sorted(set(body) & (RULE_FIELDS - UPDATABLE))]
    errors += [FieldError(k, f"is not a rule field; valid: {', '.join(sorted(RULE_FIELDS))}")
               for k in sorted(set(body) - RULE_FIELDS)]
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = read_name(body["name"], errors)
    if "threshold" in body:
        changes["threshold"] = read_threshold(body["threshold"], rule.metric, "threshold",
                                              errors)
    if "resolveThreshold" in body:
        changes["resolve_threshold"] = read_threshold(body["resolveThreshold"], rule.metric,
                                                      "resolveThreshold", errors)
    elif "threshold" in body and changes["threshold"] is not None:
        changes["resolve_threshold"] = max(int(changes["threshold"] * RESOLVE_SHARE), 1)
    if "minVolume" in body:
        changes["min_volume"] = _int(body["minVolume"], "minVolume", 1, 10**9, errors)
    if "windowMinutes" in body:
        changes["window_minutes"] = _window(body["windowMinutes"], errors)
    if errors:
        raise ValidationFailed(errors, "invalid rule")
    changed = attrs.evolve(rule, **changes)
    if changed.resolve_threshold > changed.threshold:
        raise ValidationFailed([FieldError("resolveThreshold", "must be at most threshold")],
                               "invalid rule")
    return changed


def _enum(raw: object, enum: type[StrEnum], field: str, errors: list[FieldError]) -> Any:
    for member in enum:
        if raw == member.value:
            return member
    errors.append(FieldError(field, f"must be one of: {', '.join(m.value for m in enum)}"))
    return None


def threshold_text(value: int, metric: RuleMetric) -> str:
    """A stored threshold or value as shown: percent with 2 decimals, or whole ms."""
    if metric is RuleMetric.ERROR_RATE:
        return f"{Decimal(value) / 100:.2f}"
    return str(value)
