"""Budgets (SPEC §13): managing them, reading their status, and evaluating them.

Evaluation (`evaluate_budgets`, run by the alerts worker at least once a minute) reads each
budget's value from the rollups, for the current period and the periods that ended within the
late lookback, and fires every threshold reached; the same pass evaluates the reliability rules
(analytics_core.usecases.rules). Per org, one read transaction computes what is due, then (only
when something is) one write transaction fires it: firing is an insert that the store keeps
only once per identity (budget, period start, kind, threshold), so any number of evaluators can
run at once, crash and restart, and late events that push a closed period over a threshold fire
it once, marked late. While the pipeline's freshness is not `fresh`, nothing is evaluated: a
value that lags could fire too late or a forecast too early. Each fired alert gets one webhook
delivery per enabled endpoint of its org, in the write transaction that fired it
(analytics_core.webhooks).
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

import attrs

from analytics_core.access import Actor
from analytics_core.attribution import AttributionSettings
from analytics_core.budgets import (
    FORECAST_WINDOW,
    Alert,
    AlertKind,
    Budget,
    Measure,
    ScopeType,
    crossed,
    measure_value,
    period_bounds,
    periods_to_check,
    projection,
    read_budget,
    read_update,
)
from analytics_core.errors import NotFound
from analytics_core.freshness import Freshness, FreshnessStatus
from analytics_core.ports import Clock, IdGenerator, PipelineProgress, UnitOfWork, UnitOfWorkFactory
from analytics_core.rules import ReliabilityRule, RuleTransition
from analytics_core.timegrid import utc_day_start, zone
from analytics_core.usecases import rules
from analytics_core.usecases.access import record_change
from analytics_core.usecases.paging import cut
from analytics_core.usecases.queries import current_freshness
from analytics_core.webhooks import deliveries_for

LATE_LOOKBACK = timedelta(days=7)
"""How long after a period ends late events can still fire its thresholds (marked late).
Periods that ended before the budget was created are never evaluated."""
MAX_ALERTS_PAGE = 500


class BudgetState(StrEnum):
    """A budget's status in its current period."""

    OK = "ok"  # below every threshold and not forecast to reach the amount
    WARNING = "warning"  # a threshold reached, or forecast to reach the amount
    EXCEEDED = "exceeded"  # at or above the amount
    DEFERRED = "deferred"  # evaluation waits for fresh data (see `reason`)


@attrs.frozen
class BudgetView:
    """A budget with its current period's value, projection and status."""

    budget: Budget
    period_start: datetime
    period_end: datetime
    value: int
    forecast_value: int
    state: BudgetState
    reason: str | None
    freshness: Freshness
    fired: tuple[Alert, ...]  # this period's alerts


@attrs.frozen
class Evaluation:
    """What one evaluation pass did."""

    budgets: int
    fired: tuple[Alert, ...]
    deferred: Freshness | None  # the freshness that deferred the pass, if it was
    rules: int = 0
    transitions: tuple[RuleTransition, ...] = ()  # reliability rules that fired or resolved


@attrs.frozen
class AlertPage:
    """One page of alerts, newest first, and the cursor of the next page."""

    alerts: tuple[Alert | RuleTransition, ...]  # budget alerts and rule transitions
    next_cursor: tuple[datetime, uuid.UUID] | None


# -- management ---------------------------------------------------------------------------


def create_budget(actor: Actor, org_id: uuid.UUID, body: object, *,
                  uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator,
                  attribution: AttributionSettings) -> Budget:
    """A new budget from a request body (access checked by the driver); audited."""
    fields = read_budget(body, attribution.keys)
    now = clock.now()
    budget = Budget(ids.new_id(), org_id, created_at=now, created_by=actor.subject,
                    updated_at=now, **fields)
    with uow_factory() as uow:
        uow.budgets.add(budget)
        record_change(uow, ids, now, actor=actor, org_id=org_id,
                      resource=f"budget:{budget.budget_id}",
                      action="budgets.create",
                      reason=f"{budget.measure.value} of {budget.scope.label()} per "
                             f"{budget.period.value}")
        uow.commit()
    return budget


def update_budget(actor: Actor, org_id: uuid.UUID, budget_id: uuid.UUID, body: object, *,
                  uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator) -> Budget:
    """Change a budget's name, amount, thresholds or forecast; audited."""
    now = clock.now()
    with uow_factory() as uow:
        record_change(uow, ids, now, actor=actor, org_id=org_id,
                      resource=f"budget:{budget_id}",
                      action="budgets.update", reason="changed " + ", ".join(sorted(body))
                      if isinstance(body, Mapping) else "")
        budget = uow.budgets.get(org_id, budget_id)
        if budget is None:
            raise NotFound(f"budget {budget_id} not found")
        changed = attrs.evolve(read_update(body, budget), updated_at=now)
        uow.budgets.save(changed)
        uow.commit()
    return changed


def delete_budget(actor: Actor, org_id: uuid.UUID, budget_id: uuid.UUID, *,
                  uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator) -> None:
    """Remove a budget (its alerts stay); audited; NotFound when unknown."""
    now = clock.now()
    with uow_factory() as uow:
        record_change(uow, ids, now, actor=actor, org_id=org_id,
                      resource=f"budget:{budget_id}",
                      action="budgets.delete", reason="deleted")
        if not uow.budgets.delete(org_id, budget_id):
            raise NotFound(f"budget {budget_id} not found")
        uow.commit()


def list_budgets(org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory, clock: Clock,
                 progress: PipelineProgress) -> list[BudgetView]:
    """The org's budgets with their current status, oldest first."""
    freshness = current_freshness(progress, clock)
    with uow_factory() as uow:
        return _views(uow.budgets.for_org(org_id), uow, freshness, clock.now())


def get_budget(org_id: uuid.UUID, budget_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory,
               clock: Clock, progress: PipelineProgress) -> BudgetView:
    """One budget with its current status; NotFound for unknown ids and other orgs'."""
    freshness = current_freshness(progress, clock)
    with uow_factory() as uow:
        budget = uow.budgets.get(org_id, budget_id)
        if budget is None:
            raise NotFound(f"budget {budget_id} not found")
        (view,) = _views([budget], uow, freshness, clock.now())
        return view


def _when(item: Alert | RuleTransition) -> tuple[datetime, uuid.UUID]:
    if isinstance(item, Alert):
        return item.fired_at, item.alert_id
    return item.at, item.transition_id


def list_alerts(org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory, limit: int = 50,
                before: tuple[datetime, uuid.UUID] | None = None,
                budget_id: uuid.UUID | None = None,
                rule_id: uuid.UUID | None = None) -> AlertPage:
    """A page of the org's budget alerts and rule transitions, newest first by (time, id);
    `budget_id` keeps one budget's alerts, `rule_id` one rule's transitions."""
    limit = max(1, min(limit, MAX_ALERTS_PAGE))
    items: list[Alert | RuleTransition] = []
    with uow_factory() as uow:
        if rule_id is None:
            items.extend(uow.alerts.page(org_id, limit=limit + 1, before=before,
                                         budget_id=budget_id))
        if budget_id is None:
            items.extend(uow.transitions.page(org_id, limit=limit + 1, before=before,
                                              rule_id=rule_id))
    items.sort(key=_when, reverse=True)
    return AlertPage(*cut(items, limit, _when))


def _views(budgets: Sequence[Budget], uow: UnitOfWork, freshness: Freshness,
           now: datetime) -> list[BudgetView]:
    """Budgets of one org with their current period, read together."""
    if not budgets:
        return []
    reader = _Reader(uow)
    periods = {b.budget_id: period_bounds(now, b.period, zone(b.tz)) for b in budgets}
    for b in budgets:
        reader.want(b, periods[b.budget_id], now)
    since = min(start for start, _ in periods.values())
    fired = uow.alerts.fired(budgets[0].org_id, since)
    return [_view(b, periods[b.budget_id], reader, freshness, now,
                  tuple(a for a in fired if a.budget_id == b.budget_id
                        and a.period_start == periods[b.budget_id][0]))
            for b in budgets]


def _view(budget: Budget, period: tuple[datetime, datetime], reader: _Reader,  # noqa: PLR0917
          freshness: Freshness, now: datetime, fired: tuple[Alert, ...]) -> BudgetView:
    start, end = period
    value = reader.value(budget, start, end)
    forecast = projection(value, reader.trailing(budget, now), now, end)
    reason = None
    if freshness.status is not FreshnessStatus.FRESH:
        state = BudgetState.DEFERRED
        reason = (f"freshness is {freshness.status.value}: data is complete through "
                  f"{freshness.complete_through.isoformat()}; alerts are evaluated again once "
                  "it is fresh")
    elif value >= budget.amount:
        state = BudgetState.EXCEEDED
    elif crossed(value, budget.amount, budget.thresholds) or (
            budget.forecast and forecast >= budget.amount):
        state = BudgetState.WARNING
    else:
        state = BudgetState.OK
    return BudgetView(budget, start, end, value, forecast, state, reason, freshness, fired)


# -- evaluation ---------------------------------------------------------------------------


def evaluate_budgets(*, uow_factory: UnitOfWorkFactory, clock: Clock,
                     progress: PipelineProgress, ids: IdGenerator,
                     lookback: timedelta = LATE_LOOKBACK, closed: Closed = True,
                     cache: ValueCache | None = None) -> Evaluation:
    """One pass over every budget and reliability rule: fire the budget thresholds reached
    (each at most once per budget and period) and the rules' transitions (each once), or
    nothing while freshness is not `fresh`. `closed` says whose closed periods of the late
    lookback (which only late events change) are read too: every org's (True), none (False),
    or, for `(slot, slots)`, the orgs whose id is `slot` modulo `slots` (the alerts worker
    spreads them over its passes). With a `cache` (one per process, kept between passes),
    values of settled days are read again only when late data changed them (ValueCache)."""
    freshness = current_freshness(progress, clock)
    now = clock.now()
    with uow_factory() as uow:
        budgets = uow.budgets.all()
        all_rules = uow.rules.all()
        # Before any value is read: a revision counted later makes the next pass read again.
        keeping = None if cache is None else _Keeping(
            cache, uow.freshness.history_revisions(), settled_before(now))
    if freshness.status is not FreshnessStatus.FRESH:
        return Evaluation(len(budgets), (), freshness, len(all_rules))
    fired: list[Alert] = []
    moved: list[RuleTransition] = []
    by_org: dict[uuid.UUID, tuple[list[Budget], list[ReliabilityRule]]] = {}
    for b in budgets:
        by_org.setdefault(b.org_id, ([], []))[0].append(b)
    for r in all_rules:
        by_org.setdefault(r.org_id, ([], []))[1].append(r)
    for org_id, (org_budgets, org_rules) in by_org.items():
        with uow_factory() as uow:  # one read per org and grouping, shared by its budgets
            due = _due_in_org(org_budgets, uow, now, freshness, ids,
                              lookback if _reads_closed(closed, org_id) else timedelta(0),
                              keeping)
            turning = rules.due_transitions(org_rules, uow, now, ids)
        if due or turning:  # then a write unit that begins with its first write (SQLite)
            with uow_factory() as uow:
                org_fired = [(a, b) for a, b in due if uow.alerts.fire(a)]
                endpoints = uow.webhooks.for_org(org_id)
                # the webhook outbox, in the transaction that fired them
                uow.deliveries.add([d for alert, budget in org_fired for d in
                                    deliveries_for(alert, budget, endpoints, ids, now)])
                moved.extend(rules.record_transitions(turning, uow, endpoints, ids, now))
                uow.commit()
            fired.extend(a for a, _ in org_fired)
    if cache is not None:
        cache.retain(by_org)
    return Evaluation(len(budgets), tuple(fired), None, len(all_rules), tuple(moved))


Closed = bool | tuple[int, int]
"""Whose closed periods a pass reads: every org's, none, or (slot, slots) a share of orgs."""


def _reads_closed(closed: Closed, org_id: uuid.UUID) -> bool:
    if isinstance(closed, bool):
        return closed
    slot, slots = closed
    return org_id.int % slots == slot


def _due_in_org(budgets: Sequence[Budget], uow: UnitOfWork, now: datetime,  # noqa: PLR0917
                freshness: Freshness, ids: IdGenerator, lookback: timedelta,
                keeping: _Keeping | None) -> list[tuple[Alert, Budget]]:
    """The alerts the values of one org's budgets reach that are not stored yet (firing them
    is the store's decision: another evaluator may get there first)."""
    reader = _Reader(uow, keeping)
    plans = {}
    for b in budgets:
        periods = [p for p in periods_to_check(now, b.period, zone(b.tz), lookback)
                   if p[1] > b.created_at]  # never for periods over before it existed
        if periods:
            plans[b.budget_id] = periods
            for period in periods:
                reader.want(b, period, now)
    if not plans:
        return []
    since = min(periods[0][0] for periods in plans.values())
    done = uow.alerts.fired_keys(budgets[0].org_id, since)
    return [(alert, b) for b in budgets if b.budget_id in plans
            for alert in _due(b, plans[b.budget_id], reader, done, now, freshness, ids)]


def _due(budget: Budget, periods: Sequence[tuple[datetime, datetime]],  # noqa: PLR0917
         reader: _Reader, done: set[tuple[uuid.UUID, datetime, AlertKind, int]],
         now: datetime, freshness: Freshness, ids: IdGenerator) -> list[Alert]:
    out = []

    def due(kind: AlertKind, threshold: int, period: tuple[datetime, datetime], value: int,
            forecast: int | None) -> None:
        start, end = period
        if (budget.budget_id, start, kind, threshold) in done:
            return
        out.append(Alert(ids.new_id(), budget.org_id, budget.budget_id, budget.name,
                         budget.measure, kind, threshold, start, end, value, budget.amount,
                         forecast, now, end <= now, freshness.complete_through))

    for start, end in periods:
        value = reader.value(budget, start, end)
        for t in crossed(value, budget.amount, budget.thresholds):
            due(AlertKind.THRESHOLD, t, (start, end), value, None)
        if (budget.forecast and end > now and value < budget.amount
                and (budget.budget_id, start, AlertKind.FORECAST, 100) not in done):
            forecast = projection(value, reader.trailing(budget, now), now, end)
            if forecast >= budget.amount:
                due(AlertKind.FORECAST, 100, (start, end), value, forecast)
    return out


def _grouping(budget: Budget) -> str:
    """What a budget's value is read by: an attribution dimension, the client, or the model
    (the org scope sums every model)."""
    scope = budget.scope
    return scope.dimension or ("client" if scope.type is ScopeType.CLIENT else "model")


def _trailing_window(now: datetime) -> tuple[datetime, datetime]:
    """The forecast's trailing window: the 7 whole UTC days before today (read from the day
    tier)."""
    end = utc_day_start(now)
    return end - FORECAST_WINDOW, end


Measures = tuple[int, ...]
"""A set of events' value in every measure, in `MEASURES` order."""
Cells = dict[datetime, dict[str | None, Measures]]
"""Per interval start, per group: the measures of the events in that interval and group."""
MEASURES = tuple(Measure)
_INDEX = {m: i for i, m in enumerate(MEASURES)}
_NO_GROUPS: Mapping[str | None, Measures] = {}
_KEEP = timedelta(days=48)
"""How far back kept values reach: the late lookback (7 days), the longest period (31) and
the forecast window, with days to spare; a read that wants an older edge reads everything."""


@attrs.frozen
class _Kept:
    """Settled values of one (org, grouping): cells of the intervals between `edges`, read
    when the org's history revision was `revision`."""

    revision: int
    edges: tuple[datetime, ...]
    cells: Cells
    known: frozenset[datetime] = attrs.field(init=False)
    """`edges` as a set, for `covers`."""

    @known.default
    def _known(self) -> frozenset[datetime]:
        return frozenset(self.edges)

    def covers(self, wanted: Sequence[datetime], settled: datetime) -> bool:
        """Whether every wanted edge up to the kept end is a kept edge (then each wanted
        window before it is an exact run of kept intervals), the first wanted edge is kept
        too, and the kept end is still settled (a clock set back makes it not)."""
        through = self.edges[-1]
        return (through <= settled and wanted[0] in self.known
                and all(e in self.known for e in wanted if e <= through))


class ValueCache:
    """Budget values of settled days, kept between evaluation passes (one per process).

    A pass reads from the rollups only what may still change: the intervals after the start
    of yesterday (UTC), the settled boundary. Intervals before it are kept per (org, grouping)
    with the org's history revision (FreshnessStore.history_revisions), read at the start of
    the pass: the ingest counts a revision whenever it stores an event of a UTC day before
    its own, and a restatement whenever it changes catalog costs, so a kept value is used only
    while nothing changed it, and a late event or a repricing makes the next pass read that
    org again. Exact as long as an ingest transaction commits within a day of reading its
    clock, clocks included (docs/budgets.md, Evaluation). Entries are replaced whole, never
    changed, so passes in several threads share it safely (`hits` and `misses` are counts
    for metrics, approximate when passes overlap)."""

    def __init__(self) -> None:
        self._kept: dict[tuple[uuid.UUID, str], _Kept] = {}
        self.hits = 0
        """(org, grouping) reads answered partly from kept values."""
        self.misses = 0
        """(org, grouping) reads of every interval (nothing kept, or a revision moved)."""

    def get(self, key: tuple[uuid.UUID, str], revision: int) -> _Kept | None:
        """What is kept for `key` at `revision`, if anything."""
        kept = self._kept.get(key)
        return kept if kept is not None and kept.revision == revision else None

    def put(self, key: tuple[uuid.UUID, str], kept: _Kept) -> None:
        """Keep `kept` for `key`."""
        self._kept[key] = kept

    def retain(self, orgs: Iterable[uuid.UUID]) -> None:
        """Forget the orgs not in `orgs` (those left without budgets)."""
        wanted = set(orgs)
        for key in [k for k in list(self._kept) if k[0] not in wanted]:  # a copy: threads
            self._kept.pop(key, None)


def settled_before(now: datetime) -> datetime:
    """The settled boundary at `now`: the start of yesterday, UTC. Only late events (counted
    as history revisions) change data before it."""
    return utc_day_start(now) - timedelta(days=1)


def _midnights(start: datetime, end: datetime) -> list[datetime]:
    """The UTC midnights in (start, end]."""
    day = utc_day_start(start)
    out = []
    while (day := day + timedelta(days=1)) <= end:
        out.append(day)
    return out


@attrs.frozen
class _Keeping:
    """What a reader needs to keep values: the cache, the revisions read at the start of the
    pass, and the pass's settled boundary."""

    cache: ValueCache
    revisions: Mapping[uuid.UUID, int]
    settled: datetime


class _Reader:
    """Values of one org's budgets from one unit's rollups. Every window a budget needs is
    registered with `want`, then read once per (org, grouping): the grouping is the model,
    the client or an attribution dimension. Each read covers the union of the edges of every
    period and forecast window of the budgets with that grouping, in every zone (all
    15-minute boundaries, so each window is an exact run of the intervals read), and the
    store answers it from the coarsest tier those edges allow: day and hour tiers for UTC and
    whole-hour zones, the 15-minute base only around edges in zones such as Asia/Kolkata.
    With `keeping`, intervals before the settled boundary come from the ValueCache when the
    org's history has not changed since they were read."""

    Key = tuple[uuid.UUID, str]

    def __init__(self, uow: UnitOfWork, keeping: _Keeping | None = None) -> None:
        self._uow = uow
        self._keeping = keeping
        self._edges: dict[_Reader.Key, set[datetime]] = {}
        self._read: dict[_Reader.Key, tuple[list[datetime], Cells]] = {}
        # Running totals over a key's periods, per (key, group or None for all, measure).
        self._sums: dict[tuple[_Reader.Key, str | None, Measure], list[int]] = {}

    def want(self, budget: Budget, period: tuple[datetime, datetime], now: datetime) -> None:
        """Register a period of the budget (and its forecast window) before reading."""
        edges = self._edges.setdefault((budget.org_id, _grouping(budget)), set())
        edges.update(period)
        edges.update(_trailing_window(now))

    def _cells(self, key: _Reader.Key) -> tuple[list[datetime], Cells]:
        if key not in self._read:
            wanted = sorted(self._edges[key])
            self._read[key] = ((wanted, self._fetch(key, wanted)) if self._keeping is None
                               else self._kept(key, wanted, self._keeping))
        return self._read[key]

    def _fetch(self, key: _Reader.Key, edges: Sequence[datetime]) -> Cells:
        """The measures of each interval between `edges`, per group, from the store."""
        if len(edges) < 2:
            return {}
        org_id, grouping = key
        if grouping in ("model", "client"):
            found = self._uow.rollups.aggregate(org_id, edges, group_by=grouping,
                                                latency=False)
        else:
            found = self._uow.attribution.aggregate(org_id, edges, dimension=grouping,
                                                    latency=False)
        cells: Cells = {}
        for start, group, stats in found:
            cells.setdefault(start, {})[group] = tuple(measure_value(stats, m)
                                                       for m in MEASURES)
        return cells

    def _kept(self, key: _Reader.Key, wanted: list[datetime], keeping: _Keeping
              ) -> tuple[list[datetime], Cells]:
        """Read `wanted` using and refreshing the kept values of `key`."""
        cache, settled = keeping.cache, keeping.settled
        revision = keeping.revisions.get(key[0], 0)
        kept = cache.get(key, revision)
        if kept is not None and kept.covers(wanted, settled):
            cache.hits += 1
            through = kept.edges[-1]
            fresh = {through, *(e for e in wanted if e > through)}
            if through < settled < wanted[-1]:
                fresh.add(settled)
            cells = {**kept.cells, **self._fetch(key, sorted(fresh))}
            edges = sorted(kept.known | fresh)
        else:
            cache.misses += 1
            # Every settled UTC midnight too, so that the forecast window, which moves by a
            # day at midnight, still starts on a kept edge tomorrow (day-tier reads: cheap).
            edges = sorted({*wanted, *_midnights(wanted[0], min(settled, wanted[-1]))})
            cells = self._fetch(key, edges)
        keep = [e for e in edges if settled - _KEEP <= e <= settled]
        if len(keep) >= 2 and (kept is None or keep != list(kept.edges)):
            cache.put(key, _Kept(revision, tuple(keep),
                                 {e: cells[e] for e in keep[:-1] if e in cells}))
        return edges, cells

    def value(self, budget: Budget, start: datetime, end: datetime) -> int:
        """The budget's value over [start, end), a window registered with `want`."""
        key = (budget.org_id, _grouping(budget))
        edges, _ = self._cells(key)
        group = None if budget.scope.type is ScopeType.ORG else budget.scope.value
        sums = self._running(key, group, budget.measure)
        return sums[bisect.bisect_left(edges, end)] - sums[bisect.bisect_left(edges, start)]

    def _running(self, key: _Reader.Key, group: str | None, measure: Measure) -> list[int]:
        """sums[i]: the measure of `group` (every group for None) over the key's periods
        before edges[i]; a window [edges[i], edges[j]) is sums[j] - sums[i], exactly. Built
        once per (key, group, measure), however many budgets and periods share it."""
        found = self._sums.get((key, group, measure))
        if found is None:
            edges, cells = self._cells(key)
            index = _INDEX[measure]
            found, total = [0], 0
            for edge in edges:
                groups = cells.get(edge, _NO_GROUPS)
                if group is None:
                    total += sum(values[index] for values in groups.values())
                elif group in groups:
                    total += groups[group][index]
                found.append(total)
            self._sums[(key, group, measure)] = found
        return found

    def trailing(self, budget: Budget, now: datetime) -> int:
        """The budget's value over the forecast window (the 7 whole UTC days before today)."""
        start, end = _trailing_window(now)
        return self.value(budget, start, end)
