"""Budgets and the alerts they fire (SPEC §13).

A budget watches one measure (catalog or reported cost, tokens, invocations) of one scope of an
org (the whole org, a model, a client, an actor or an attribution tag value) over a calendar
period (day, ISO week, month) of a time zone, against an amount. Each threshold (a percentage
of the amount) fires at most once per budget and period: an alert's identity is (budget,
period start, kind, threshold), and the store keeps one alert per identity, so concurrent
evaluators, restarts and late data can try to fire it as often as they like.

The forecast threshold fires when the projected end-of-period value reaches the amount while
the value itself is still below it. The projection is the value so far plus the run rate of the
trailing 7 days (the scope's measure over the 7 whole UTC days before today, per second) times
the seconds left in the period.

Everything here is pure: values come from rollups (analytics_core.usecases.budgets).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import attrs

from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.events import as_utc
from analytics_core.money import UNITS_PER_CENT, Cents
from analytics_core.rollups import RollupStats
from analytics_core.timegrid import BUCKET, Grain, floor_bucket, period_end, period_start, zone

DEFAULT_THRESHOLDS = (50, 80, 100)
MAX_THRESHOLDS = 10
MAX_THRESHOLD_PERCENT = 1000
MAX_NAME_LENGTH = 200
MAX_SCOPE_VALUE_LENGTH = 256
FORECAST_WINDOW = timedelta(days=7)
MAX_AMOUNT = 10**15  # in the measure's unit (units of 0.0001 cent for costs)


class Measure(StrEnum):
    """What a budget adds up."""

    CATALOG_COST = "catalogCost"
    REPORTED_COST = "reportedCost"
    TOKENS = "tokens"
    INVOCATIONS = "invocations"

    @property
    def is_cost(self) -> bool:
        """Whether amounts and values are money (held in units of 0.0001 cent)."""
        return self in (Measure.CATALOG_COST, Measure.REPORTED_COST)

    @property
    def unit(self) -> str:
        """The unit amounts are given and shown in."""
        return "cents" if self.is_cost else self.value


class BudgetPeriod(StrEnum):
    """Calendar periods of a zone; a budget's value starts from zero in each."""

    DAY = "day"
    WEEK = "week"  # ISO week: Monday 00:00 to the next Monday 00:00, local time
    MONTH = "month"


class ScopeType(StrEnum):
    """What part of an org a budget watches; more types can be added without a migration
    (a scope is stored as its type, key and value)."""

    ORG = "org"
    MODEL = "model"
    CLIENT = "client"
    ACTOR = "actor"
    TAG = "tag"


@attrs.frozen
class BudgetScope:
    """A scope: the whole org, or one model / client / actor, or one value of a tag key."""

    type: ScopeType
    value: str | None = None  # model id, client id, actor id or tag value
    key: str | None = None  # the tag key (attribution key) for TAG

    @property
    def dimension(self) -> str | None:
        """The attribution dimension (analytics_core.attribution) this scope reads, if any."""
        if self.type is ScopeType.ACTOR:
            return "actor"
        if self.type is ScopeType.TAG:
            return f"tag:{self.key}"
        return None

    def label(self) -> str:
        """A short text form: org, model:ID, client:ID, actor:ID, tag:KEY=VALUE."""
        if self.type is ScopeType.ORG:
            return "org"
        if self.type is ScopeType.TAG:
            return f"tag:{self.key}={self.value}"
        return f"{self.type.value}:{self.value}"


class AlertKind(StrEnum):
    """A percentage threshold of the amount, or the forecast threshold."""

    THRESHOLD = "threshold"
    FORECAST = "forecast"


@attrs.frozen
class Budget:
    """One org's budget. `amount` is in the measure's integer unit: units of 0.0001 cent for
    costs (analytics_core.money), tokens or invocations otherwise."""

    budget_id: uuid.UUID
    org_id: uuid.UUID
    name: str
    scope: BudgetScope
    measure: Measure
    period: BudgetPeriod
    tz: str
    amount: int
    thresholds: tuple[int, ...]
    forecast: bool
    created_at: datetime = attrs.field(converter=as_utc)
    created_by: str
    updated_at: datetime = attrs.field(converter=as_utc)


@attrs.frozen
class Alert:
    """A fired threshold: once per (budget, period start, kind, threshold)."""

    alert_id: uuid.UUID
    org_id: uuid.UUID
    budget_id: uuid.UUID
    budget_name: str  # as it was when it fired
    measure: Measure  # the unit of value and amount
    kind: AlertKind
    threshold: int  # percent; 100 for the forecast
    period_start: datetime = attrs.field(converter=as_utc)
    period_end: datetime = attrs.field(converter=as_utc)
    value: int  # in the budget's unit when it fired
    amount: int
    forecast_value: int | None  # the projection, for forecast alerts
    fired_at: datetime = attrs.field(converter=as_utc)
    late: bool  # fired after its period had ended (late events)
    complete_through: datetime = attrs.field(converter=as_utc)

    @property
    def identity(self) -> tuple[uuid.UUID, datetime, AlertKind, int]:
        """What makes two firings the same alert."""
        return (self.budget_id, self.period_start, self.kind, self.threshold)


# -- periods ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)  # an evaluation pass asks for the same few periods often
def period_bounds(at: datetime, period: BudgetPeriod, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the zone-local period holding `at` (exact across DST changes and
    :30/:45 offsets: every local midnight is a 15-minute bucket edge)."""
    bucket = floor_bucket(at)
    if period is BudgetPeriod.MONTH:
        start = period_start(bucket, Grain.MONTH, tz)
        return start, period_end(start, Grain.MONTH, tz)
    start = period_start(bucket, Grain.DAY, tz)
    if period is BudgetPeriod.DAY:
        return start, period_end(start, Grain.DAY, tz)
    while start.astimezone(tz).weekday() != 0:  # back to Monday
        start = period_start(start - BUCKET, Grain.DAY, tz)
    end = start
    for _ in range(7):
        end = period_end(end, Grain.DAY, tz)
    return start, end


@functools.lru_cache(maxsize=256)
def periods_to_check(now: datetime, period: BudgetPeriod, tz: tzinfo,
                     lookback: timedelta) -> tuple[tuple[datetime, datetime], ...]:
    """The current period and every earlier one that ended less than `lookback` ago (late
    events can still change those), oldest first."""
    current = period_bounds(now, period, tz)
    out = [current]
    while True:
        start = out[0][0]
        previous = period_bounds(start - BUCKET, period, tz)
        if previous[1] <= now - lookback:
            break
        out.insert(0, previous)
    return tuple(out)


# -- values -------------------------------------------------------------------------------


def measure_value(stats: RollupStats, measure: Measure) -> int:
    """The measure of a set of events, in the measure's integer unit."""
    if measure is Measure.CATALOG_COST:
        return sum(stats.catalog_costs)  # stats.catalog_cost.units, without building Cents
    if measure is Measure.REPORTED_COST:
        return stats.cost.units
    if measure is Measure.TOKENS:
        return stats.input_tokens + stats.output_tokens
    return stats.invocations


def crossed(value: int, amount: int, thresholds: Sequence[int]) -> list[int]:
    """The thresholds (percent) that `value` has reached, exactly (value * 100 >= amount * t)."""
    return [t for t in thresholds if value * 100 >= amount * t]


def projection(value: int, trailing: int, now: datetime, end: datetime) -> int:
    """Projected end-of-period value: the value so far plus the trailing 7 days' run rate times
    the time left (floored to whole units)."""
    left = max((end - now).total_seconds(), 0.0)
    return value + (trailing * int(left)) // int(FORECAST_WINDOW.total_seconds())


def percent(value: int, amount: int) -> Decimal:
    """value / amount in percent, to one decimal place (rounded half-even)."""
    return (Decimal(value) * 100 / Decimal(amount)).quantize(Decimal("0.1"))


def amount_text(amount: int, measure: Measure) -> str:
    """An amount as shown: cents with four decimals for costs, a whole number otherwise."""
    return Cents(amount).exact_str() if measure.is_cost else str(amount)


# -- reading a budget from a request --------------------------------------------------------


def _choice(errors: list[FieldError], field: str, raw: object, enum: type[StrEnum],
            default: StrEnum | None = None) -> Any:
    if raw is None and default is not None:
        return default
    for member in enum:
        if raw == member.value:
            return member
    errors.append(FieldError(field, f"must be one of: {', '.join(m.value for m in enum)}"))
    return None


_SCOPE_FIELDS = {ScopeType.ORG: (), ScopeType.MODEL: ("modelId",),
                 ScopeType.CLIENT: ("clientId",), ScopeType.ACTOR: ("actorId",),
                 ScopeType.TAG: ("key", "value")}


def read_scope(raw: object, errors: list[FieldError], tag_keys: Sequence[str]) -> BudgetScope:
    """A scope object: {"type": "org"}, {"type": "model", "modelId": ...}, {"type": "client",
    "clientId": ...}, {"type": "actor", "actorId": ...}, {"type": "tag", "key": K, "value": V}."""
    if not isinstance(raw, Mapping):
        if raw is not None:
            errors.append(FieldError("scope", "must be an object with a type"))
        return BudgetScope(ScopeType.ORG)
    kind = _choice(errors, "scope.type", raw.get("type"), ScopeType)
    if kind is None or kind is ScopeType.ORG:
        errors.extend(FieldError(f"scope.{k}", "is not a field of an org scope")
                      for k in sorted(set(raw) - {"type"}) if kind is not None)
        return BudgetScope(ScopeType.ORG)
    errors.extend(FieldError(f"scope.{k}", f"is not a field of a {kind.value} scope")
                  for k in sorted(set(raw) - {"type", *_SCOPE_FIELDS[kind]}))
    if kind is ScopeType.CLIENT:
        return BudgetScope(kind, _text(errors, "scope.clientId", raw.get("clientId")))
    if kind is ScopeType.TAG:
        key = _text(errors, "scope.key", raw.get("key"))
        if key and key not in tag_keys:
            configured = ", ".join(tag_keys) or "none configured"
            errors.append(FieldError("scope.key", f"{key!r} is not an attribution key "
                                                  f"(ANALYTICS_ATTRIBUTION_KEYS: {configured})"))
        return BudgetScope(kind, _text(errors, "scope.value", raw.get("value")), key)
    field = _SCOPE_FIELDS[kind][0]
    try:
        return BudgetScope(kind, str(uuid.UUID(str(raw.get(field)))))
    except ValueError:
        errors.append(FieldError(f"scope.{field}", "must be a UUID"))
        return BudgetScope(kind, "")


def _text(errors: list[FieldError], field: str, raw: object) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > MAX_SCOPE_VALUE_LENGTH:
        errors.append(FieldError(field, f"must be a non-empty string of at most "
                                        f"{MAX_SCOPE_VALUE_LENGTH} characters"))
        return ""
    if any(ord(c) < 32 for c in raw):
        errors.append(FieldError(field, "must not contain control characters"))
        return ""
    return raw


def read_amount(raw: object, measure: Measure | None, errors: list[FieldError]) -> int:
    """A positive amount: a decimal number of cents (up to 4 places) for costs, a whole number
    of tokens or invocations otherwise; JSON numbers or decimal strings."""
    dec = _positive_decimal(raw)
    if dec is None:
        errors.append(FieldError("amount", "must be a positive number"))
        return 0
    if measure is None:
        return 0
    scaled = dec * UNITS_PER_CENT if measure.is_cost else dec
    if scaled != scaled.to_integral_value():
        places = "4 decimal places of a cent" if measure.is_cost else "a whole number"
        errors.append(FieldError("amount", f"must be {places} for {measure.value}"))
        return 0
    if scaled > MAX_AMOUNT:
        errors.append(FieldError("amount", "is too large"))
        return 0
    return int(scaled)


def _positive_decimal(raw: object) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        return None
    try:
        dec = Decimal(repr(raw) if isinstance(raw, float) else raw)
    except InvalidOperation:
        return None
    return dec if dec.is_finite() and dec > 0 else None


def read_thresholds(raw: object, errors: list[FieldError]) -> tuple[int, ...]:
    """Distinct whole percentages 1..1000, at most 10, sorted; default 50, 80, 100."""
    if raw is None:
        return DEFAULT_THRESHOLDS
    if (not isinstance(raw, list) or len(raw) > MAX_THRESHOLDS
            or not all(isinstance(t, int) and not isinstance(t, bool) for t in raw)):
        errors.append(FieldError("thresholds", f"must be an array of at most {MAX_THRESHOLDS} "
                                               "whole percentages"))
        return ()
    if any(not 1 <= t <= MAX_THRESHOLD_PERCENT for t in raw) or len(set(raw)) != len(raw):
        errors.append(FieldError("thresholds", f"must be distinct percentages from 1 to "
                                               f"{MAX_THRESHOLD_PERCENT}"))
        return ()
    return tuple(sorted(raw))


BUDGET_FIELDS = frozenset({"name", "scope", "measure", "period", "tz", "amount", "thresholds",
                           "forecast"})
UPDATABLE_FIELDS = frozenset({"name", "amount", "thresholds", "forecast"})


def read_budget(body: object, tag_keys: Sequence[str]) -> dict[str, Any]:
    """The fields of a new budget (Budget keyword arguments) from a JSON object;
    ValidationFailed naming every bad field."""
    if not isinstance(body, Mapping):
        raise ValidationFailed([FieldError("body", "must be a JSON object")], "invalid budget")
    errors = [FieldError(k, f"is not a budget field; valid: {', '.join(sorted(BUDGET_FIELDS))}")
              for k in sorted(set(body) - BUDGET_FIELDS)]
    name = read_name(body.get("name"), errors)
    scope = read_scope(body.get("scope"), errors, tag_keys)
    measure = _choice(errors, "measure", body.get("measure"), Measure, Measure.CATALOG_COST)
    period = _choice(errors, "period", body.get("period"), BudgetPeriod, BudgetPeriod.MONTH)
    tz = body.get("tz", "UTC")
    try:
        zone(tz if isinstance(tz, str) else "")
    except ValueError:
        errors.append(FieldError("tz", "must be an IANA time zone name, e.g. Europe/Berlin"))
    amount = read_amount(body.get("amount"), measure, errors) if "amount" in body else 0
    if "amount" not in body:
        errors.append(FieldError("amount", "is required"))
    thresholds = read_thresholds(body.get("thresholds"), errors)
    forecast = _flag(body.get("forecast", True), "forecast", errors)
    if errors:
        raise ValidationFailed(errors, "invalid budget")
    return {"name": name, "scope": scope, "measure": measure, "period": period,
            "tz": str(tz), "amount": amount, "thresholds": thresholds, "forecast": forecast}


def read_update(body: object, budget: Budget) -> Budget:
    """A budget with the changes of a PATCH body (name, amount, thresholds, forecast); scope,
    measure, period and zone are what the budget's alerts are about, so they cannot change."""
    if not isinstance(body, Mapping):
        raise ValidationFailed([FieldError("body", "must be a JSON object")], "invalid budget")
    errors = [FieldError(k, "cannot change (create a new budget instead)")
              for k in sorted(set(body) & (BUDGET_FIELDS - UPDATABLE_FIELDS))]
    errors += [FieldError(k, f"is not a budget field; valid: {', '.join(sorted(BUDGET_FIELDS))}")
               for k in sorted(set(body) - BUDGET_FIELDS)]
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = read_name(body["name"], errors)
    if "amount" in body:
        changes["amount"] = read_amount(body["amount"], budget.measure, errors)
    if "thresholds" in body:
        changes["thresholds"] = read_thresholds(body["thresholds"], errors) or DEFAULT_THRESHOLDS
    if "forecast" in body:
        changes["forecast"] = _flag(body["forecast"], "forecast", errors)
    if errors:
        raise ValidationFailed(errors, "invalid budget")
    return attrs.evolve(budget, **changes)


def read_name(raw: object, errors: list[FieldError]) -> str:
    """A budget's or rule's name: 1 to 200 printable characters, trimmed."""
    if (not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_NAME_LENGTH
            or any(ord(c) < 32 for c in raw)):
        errors.append(FieldError("name", f"must be 1 to {MAX_NAME_LENGTH} printable "
                                         "characters"))
        return ""
    return raw.strip()


def _flag(raw: object, field: str, errors: list[FieldError]) -> bool:
    if not isinstance(raw, bool):
        errors.append(FieldError(field, "must be true or false"))
        return False
    return raw
