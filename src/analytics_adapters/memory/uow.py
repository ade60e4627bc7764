"""The in-memory unit of work: serialisable, with writes undone unless committed."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from analytics_adapters.memory.attribution import InMemoryAttributionStore
from analytics_adapters.memory.budgets import (
    InMemoryAlertStore,
    InMemoryBudgetStore,
    InMemoryDeliveryStore,
    InMemoryRuleStore,
    InMemoryTransitionStore,
    InMemoryWebhookStore,
)
from analytics_adapters.memory.exports import InMemoryExportJobStore
from analytics_adapters.memory.reconciliations import (
    InMemoryOrgSettingsStore,
    InMemoryReconciliationStore,
)
from analytics_adapters.memory.repositories import (
    InMemoryApiKeyStore,
    InMemoryAuditLog,
    InMemoryClientNameStore,
    InMemoryDeadLetterStore,
    InMemoryEventStore,
    InMemoryFreshnessStore,
    InMemoryModelRegistry,
    InMemoryOffsetStore,
    InMemoryPriceCatalog,
    InMemoryRestatementStore,
    InMemoryRollupStore,
)
from analytics_adapters.memory.sessions import InMemorySessionStore
from analytics_adapters.memory.state import InMemoryStorage, Journal
from analytics_core.ports import (
    AlertStore,
    ApiKeyStore,
    AttributionStore,
    AuditLog,
    BudgetStore,
    ClientNameStore,
    DeadLetterStore,
    DeliveryStore,
    EventStore,
    ExportJobStore,
    FreshnessStore,
    ModelRegistry,
    OffsetStore,
    OrgSettingsStore,
    PriceCatalogStore,
    ReconciliationStore,
    RestatementStore,
    RollupStore,
    RuleStore,
    SessionStore,
    TransitionStore,
    WebhookStore,
)

__all__ = ["InMemoryStorage", "InMemoryUnitOfWork", "unit_of_work_factory"]


class InMemoryUnitOfWork:
    """One transaction over an `InMemoryStorage`.

    Entering takes the storage lock and holds it until exit, so units of work are serialisable
    and nothing uncommitted is ever visible to another thread. Writes apply at once and are
    journaled; exit without `commit()` replays the journal backwards. A unit nested inside
    another in the same thread shares the lock and so sees the outer unit's uncommitted writes.
    """

    def __init__(self, storage: InMemoryStorage) -> None:
        self._storage = storage
        self._journal: Journal | None = None
        self.events: EventStore = InMemoryEventStore(storage, self)
        self.rollups: RollupStore = InMemoryRollupStore(storage, self)
        self.dead_letters: DeadLetterStore = InMemoryDeadLetterStore(storage, self)
        self.freshness: FreshnessStore = InMemoryFreshnessStore(storage, self)
        self.offsets: OffsetStore = InMemoryOffsetStore(storage, self)
        self.exports: ExportJobStore = InMemoryExportJobStore(storage, self)
        self.audit: AuditLog = InMemoryAuditLog(storage, self)
        self.api_keys: ApiKeyStore = InMemoryApiKeyStore(storage, self)
        self.models: ModelRegistry = InMemoryModelRegistry(storage, self)
        self.clients: ClientNameStore = InMemoryClientNameStore(storage, self)
        self.prices: PriceCatalogStore = InMemoryPriceCatalog(storage, self)
        self.restatements: RestatementStore = InMemoryRestatementStore(storage, self)
        self.attribution: AttributionStore = InMemoryAttributionStore(storage, self)
        self.budgets: BudgetStore = InMemoryBudgetStore(storage, self)
        self.alerts: AlertStore = InMemoryAlertStore(storage, self)
        self.webhooks: WebhookStore = InMemoryWebhookStore(storage, self)
        self.deliveries: DeliveryStore = InMemoryDeliveryStore(storage, self)
        self.rules: RuleStore = InMemoryRuleStore(storage, self)
        self.transitions: TransitionStore = InMemoryTransitionStore(storage, self)
        self.reconciliations: ReconciliationStore = InMemoryReconciliationStore(storage, self)
        self.org_settings: OrgSettingsStore = InMemoryOrgSettingsStore(storage, self)
        self.sessions: SessionStore = InMemorySessionStore(storage, self)

    def journal(self) -> Journal:
        """The undo journal of the open unit; RuntimeError outside the `with` block."""
        if self._journal is None:
            raise RuntimeError("use the unit of work inside its `with` block")
        return self._journal

    def __enter__(self) -> Self:
        if self._journal is not None:
            raise RuntimeError("unit of work is already open")
        self._storage.lock.acquire()
        self._journal = Journal()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back anything not committed and release the storage."""
        journal, self._journal = self._journal, None
        try:
            if journal is not None:
                journal.rollback()
        finally:
            self._storage.lock.release()

    def commit(self) -> None:
        """Keep every write made so far; later writes need another commit."""
        self.journal().forget()


def unit_of_work_factory(storage: InMemoryStorage) -> Callable[[], InMemoryUnitOfWork]:
    """A `UnitOfWorkFactory` opening units over `storage`."""
    return lambda: InMemoryUnitOfWork(storage)
