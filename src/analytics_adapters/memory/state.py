"""Shared in-memory state, the lock that serialises units of work, and their undo journal."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, MutableMapping
from datetime import date, datetime
from typing import TypeVar

from analytics_core.budgets import Alert, AlertKind, Budget
from analytics_core.events import UsageEvent
from analytics_core.exports import ExportJob
from analytics_core.freshness import FreshnessMarker
from analytics_core.org_settings import OrgSettings
from analytics_core.prices import PriceVersion
from analytics_core.reconciliation import ReconciliationLine
from analytics_core.reconciliation_runs import ReconciliationRun
from analytics_core.records import ApiKeyRecord, AuditEntry, DeadLetter, DedupeConflict
from analytics_core.registry import ClientName, ModelEntry
from analytics_core.restatements import Restatement, RestatementDelta
from analytics_core.rollups import RollupKey, RollupStats
from analytics_core.rules import ReliabilityRule, RuleTransition
from analytics_core.sessions import UiSession
from analytics_core.webhooks import Delivery, DeliveryAttempt, WebhookEndpoint

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


class UnitLock:
    """A mutual-exclusion lock owned by a thread, re-entrant, and releasable from any thread.

    Releasing from another thread matters when a generator holding a unit of work open is
    finalised elsewhere; re-entrancy lets a unit of work nest inside another in one thread.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        """Block until no other thread holds the lock."""
        me = threading.get_ident()
        with self._cond:
            while self._depth and self._owner != me:
                self._cond.wait()
            self._owner = me
            self._depth += 1

    def release(self) -> None:
        """Undo one `acquire`."""
        with self._cond:
            if not self._depth:
                raise RuntimeError("release of an unlocked UnitLock")
            self._depth -= 1
            if not self._depth:
                self._owner = None
                self._cond.notify()


class Journal:
    """Undo log of one unit of work: each write registers how to revert itself."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def put(self, mapping: MutableMapping[K, V], key: K, value: V) -> None:
        """Set `mapping[key]`, remembering the previous state."""
        if key in mapping:
            previous = mapping[key]
            self._undo.append(lambda: mapping.__setitem__(key, previous))
        else:
            self._undo.append(lambda: mapping.pop(key, None))  # type: ignore[arg-type]
        mapping[key] = value

    def delete(self, mapping: MutableMapping[K, V], key: K) -> None:
        """Remove `mapping[key]` if present, remembering it."""
        if key in mapping:
            previous = mapping.pop(key)
            self._undo.append(lambda: mapping.__setitem__(key, previous))

    def append(self, items: list[T], item: T) -> None:
        """Append `item`, remembering to remove that very object."""
        items.append(item)
        self._undo.append(lambda: _remove_identical(items, item))

    def rollback(self) -> None:
        """Revert every remembered write, newest first."""
        while self._undo:
            self._undo.pop()()

    def forget(self) -> None:
        """Keep every write made so far (commit)."""
        self._undo.clear()


def _remove_identical(items: list[T], item: T) -> None:
    for i in range(len(items) - 1, -1, -1):
        if items[i] is item:
            del items[i]
            return


class InMemoryStorage:
    """Every table of the product as plain containers, guarded by one `UnitLock`.

    One instance is one database: share it between unit-of-work factories to share data.
    """

    def __init__(self) -> None:
        self.lock = UnitLock()
        self.events: dict[uuid.UUID, dict[uuid.UUID, UsageEvent]] = {}
        self.rollups: dict[uuid.UUID, dict[RollupKey, RollupStats]] = {}
        self.dead_letters: dict[uuid.UUID, DeadLetter] = {}
        self.conflicts: list[DedupeConflict] = []
        self.freshness: dict[tuple[uuid.UUID, uuid.UUID], FreshnessMarker] = {}
        self.history: dict[uuid.UUID, int] = {}
        self.offsets: dict[tuple[str, str], int] = {}
        self.jobs: dict[uuid.UUID, ExportJob] = {}
        self.idempotency: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
        self.audit: list[AuditEntry] = []
        self.api_keys: dict[str, ApiKeyRecord] = {}
        self.models: dict[uuid.UUID, ModelEntry] = {}
        self.client_names: dict[tuple[uuid.UUID, str], ClientName] = {}
        self.event_prices: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID] = {}
        self.attribution: dict[uuid.UUID, dict[RollupKey, RollupStats]] = {}
        self.attribution_values: dict[tuple[uuid.UUID, date, str], frozenset[str]] = {}
        self.prices: list[PriceVersion] = []
        self.restatements: dict[uuid.UUID, Restatement] = {}
        self.restatement_deltas: dict[
            tuple[uuid.UUID, uuid.UUID, uuid.UUID, date], RestatementDelta] = {}
        self.budgets: dict[uuid.UUID, Budget] = {}
        self.alerts: dict[tuple[uuid.UUID, datetime, AlertKind, int], Alert] = {}
        self.webhooks: dict[uuid.UUID, WebhookEndpoint] = {}
        self.deliveries: dict[uuid.UUID, Delivery] = {}
        self.attempts: dict[uuid.UUID, tuple[DeliveryAttempt, ...]] = {}
        self.rules: dict[uuid.UUID, ReliabilityRule] = {}
        self.transitions: dict[tuple[uuid.UUID, int], RuleTransition] = {}
        self.org_settings: dict[uuid.UUID, OrgSettings] = {}
        self.ui_sessions: dict[str, UiSession] = {}
        self.reconciliations: dict[uuid.UUID, tuple[ReconciliationRun,
                                                     tuple[ReconciliationLine, ...]]] = {}

    def org_events(self, org_id: uuid.UUID) -> dict[uuid.UUID, UsageEvent]:
        """The event table of one org (created empty on first use)."""
        return self.events.setdefault(org_id, {})

    def org_rollups(self, org_id: uuid.UUID) -> dict[RollupKey, RollupStats]:
        """The rollup table of one org (created empty on first use)."""
        return self.rollups.setdefault(org_id, {})
