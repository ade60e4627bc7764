"""The SQL unit of work (one database transaction) and `SqlStorage`, its factory and lifecycle."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import URL

from analytics_adapters.sql import partitions
from analytics_adapters.sql.attribution import SqlAttributionStore
from analytics_adapters.sql.budgets import (
    SqlAlertStore,
    SqlBudgetStore,
    SqlDeliveryStore,
    SqlRuleStore,
    SqlTransitionStore,
    SqlWebhookStore,
)
from analytics_adapters.sql.engine import BEGIN_MODE_KEY, create_sql_engine
from analytics_adapters.sql.errors import translate_errors
from analytics_adapters.sql.events import SqlEventStore
from analytics_adapters.sql.exports import SqlExportJobStore
from analytics_adapters.sql.migrate import check_schema_current
from analytics_adapters.sql.prices import SqlPriceCatalog, SqlRestatementStore
from analytics_adapters.sql.reconciliations import SqlOrgSettingsStore, SqlReconciliationStore
from analytics_adapters.sql.records import (
    SqlApiKeyStore,
    SqlAuditLog,
    SqlDeadLetterStore,
    SqlFreshnessStore,
    SqlOffsetStore,
)
from analytics_adapters.sql.registry import SqlClientNameStore, SqlModelRegistry
from analytics_adapters.sql.rollups import SqlRollupStore
from analytics_adapters.sql.sessions import SqlSessionStore
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


class SqlUnitOfWork:
    """One database transaction across every repository.

    The connection is taken from the pool on first use and the transaction begun then; on
    SQLite a unit whose first statement writes begins with BEGIN IMMEDIATE (the write lock),
    one that starts by reading begins a deferred (snapshot) transaction. `commit()` makes the
    writes visible; leaving the block without it rolls them back; later writes need another
    `commit()`.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._conn: sa.Connection | None = None
        self._open = False
        self._scratch: set[str] = set()
        self.events: EventStore = SqlEventStore(self)
        self.rollups: RollupStore = SqlRollupStore(self)
        self.dead_letters: DeadLetterStore = SqlDeadLetterStore(self)
        self.freshness: FreshnessStore = SqlFreshnessStore(self)
        self.offsets: OffsetStore = SqlOffsetStore(self)
        self.exports: ExportJobStore = SqlExportJobStore(self)
        self.audit: AuditLog = SqlAuditLog(self)
        self.api_keys: ApiKeyStore = SqlApiKeyStore(self)
        self.models: ModelRegistry = SqlModelRegistry(self)
        self.clients: ClientNameStore = SqlClientNameStore(self)
        self.prices: PriceCatalogStore = SqlPriceCatalog(self)
        self.restatements: RestatementStore = SqlRestatementStore(self)
        self.attribution: AttributionStore = SqlAttributionStore(self)
        self.budgets: BudgetStore = SqlBudgetStore(self)
        self.alerts: AlertStore = SqlAlertStore(self)
        self.webhooks: WebhookStore = SqlWebhookStore(self)
        self.deliveries: DeliveryStore = SqlDeliveryStore(self)
        self.rules: RuleStore = SqlRuleStore(self)
        self.transitions: TransitionStore = SqlTransitionStore(self)
        self.reconciliations: ReconciliationStore = SqlReconciliationStore(self)
        self.org_settings: OrgSettingsStore = SqlOrgSettingsStore(self)
        self.sessions: SessionStore = SqlSessionStore(self)

    @property
    def dialect(self) -> str:
        """`postgresql` or `sqlite`."""
        return self._dialect

    def connection(self, *, write: bool) -> sa.Connection:
        """The transaction's connection, connecting and beginning on first use."""
        if not self._open:
            raise RuntimeError("use the unit of work inside its `with` block")
        with translate_errors():
            if self._conn is None:
                self._conn = self._engine.connect()
            if not self._conn.in_transaction():
                if self._dialect == "sqlite":
                    self._conn.info[BEGIN_MODE_KEY] = "BEGIN IMMEDIATE" if write else "BEGIN"
                self._conn.begin()
                self._scratch.clear()
        return self._conn

    def scratch(self, name: str) -> bool:
        """Mark a per-transaction scratch table as used; True when it already was."""
        used = name in self._scratch
        self._scratch.add(name)
        return used

    def __enter__(self) -> Self:
        if self._open:
            raise RuntimeError("unit of work is already open")
        self._open = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back anything not committed and return the connection to the pool."""
        conn, self._conn, self._open = self._conn, None, False
        if conn is None:
            return
        try:
            if conn.in_transaction():
                conn.rollback()
        except Exception:
            # The connection is broken; nothing was committed. Drop it rather than mask
            # the error that got us here.
            conn.invalidate()
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def commit(self) -> None:
        """Make every write of this unit visible atomically."""
        if not self._open:
            raise RuntimeError("use the unit of work inside its `with` block")
        if self._conn is not None and self._conn.in_transaction():
            with translate_errors():
                self._conn.commit()


class SqlStorage:
    """An engine plus what the application needs from it: units of work, readiness, upkeep."""

    name = "database"

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str | URL, **engine_options: Any) -> SqlStorage:
        """Storage over a `postgresql://` or `sqlite:///` URL (see `create_sql_engine`)."""
        return cls(create_sql_engine(url, **engine_options))

    @property
    def dialect(self) -> str:
        """`postgresql` or `sqlite`."""
        return self.engine.dialect.name

    def unit_of_work(self) -> SqlUnitOfWork:
        """A new unit of work (a `UnitOfWorkFactory` is `storage.unit_of_work`)."""
        return SqlUnitOfWork(self.engine)

    def check(self) -> None:
        """Readiness: the database answers and its schema is at the code's revision."""
        check_schema_current(self.engine)

    def server_now(self) -> datetime:
        """The database server's clock (PostgreSQL `now()`; SQLite: this host's clock)."""
        if self.dialect != "postgresql":
            return datetime.now(UTC)
        with translate_errors(), self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.now())).scalar_one()
        assert isinstance(value, datetime)
        return value

    def ensure_partitions(self, today: date, days_ahead: int = partitions.DEFAULT_DAYS_AHEAD,
                          days_behind: int = 1) -> int:
        """PostgreSQL: create the raw-event partitions around `today`; SQLite: nothing to do."""
        if self.dialect != "postgresql":
            return 0
        with translate_errors(), self.engine.begin() as conn:
            return partitions.ensure_days_ahead(conn, today, days_ahead, days_behind)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
