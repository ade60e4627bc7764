"""Usage, spend and reliability analytics for AI inference platforms, as a library.

The public, stable surface is this module: `Analytics` (and `AsyncAnalytics`, its asyncio
twin), the value objects its methods take and return, and the errors they raise. Everything
else (`analytics_core`, `analytics_adapters`, `analytics_app`) is internal and may change in
any release. Changes to this surface are listed in CHANGELOG.md; a test fails when the
surface changes without it (docs/library.md, "Stability").

    >>> from analytics import Analytics
    >>> with Analytics.in_memory() as analytics:
    ...     analytics.models()
    []
"""

from __future__ import annotations

from analytics._facade import Analytics, AsyncAnalytics
from analytics_app.config import Settings
from analytics_core.access import Outcome
from analytics_core.budgets import (
    Alert,
    AlertKind,
    Budget,
    BudgetPeriod,
    BudgetScope,
    Measure,
    ScopeType,
)
from analytics_core.errors import (
    AnalyticsError,
    ConfigError,
    Conflict,
    FieldError,
    Gone,
    NotFound,
    SchemaNotMigrated,
    StoreUnavailable,
    ValidationFailed,
)
from analytics_core.events import Status, TokenDetails, UsageEvent
from analytics_core.exports import ExportJob, ExportStatus
from analytics_core.freshness import (
    Freshness,
    FreshnessReport,
    FreshnessStatus,
    ModelFreshness,
)
from analytics_core.money import Cents
from analytics_core.prices import PriceCategory, PriceVersion
from analytics_core.reconciliation import LineStatus, ReconciliationLine
from analytics_core.reconciliation_runs import Basis, ReconciliationRun
from analytics_core.records import AuditEntry, DeadLetter
from analytics_core.registry import ClientName, ModelEntry
from analytics_core.rollups import RollupStats
from analytics_core.rules import (
    ErrorClass,
    ReliabilityRule,
    RuleMetric,
    RuleState,
    RuleTransition,
)
from analytics_core.timegrid import Grain
from analytics_core.usecases.budgets import BudgetState, BudgetView, Evaluation
from analytics_core.usecases.ingest import BatchResult, EventOutcome, EventResult
from analytics_core.usecases.queries import AnalyticsQuery, AnalyticsReport, GroupBy, SeriesPoint
from analytics_core.usecases.reconciliations import KeptReconciliation
from analytics_core.usecases.rules import RuleView
from analytics_core.usecases.support import Redrive

__all__ = [
    "Alert",
    "AlertKind",
    "Analytics",
    "AnalyticsError",
    "AnalyticsQuery",
    "AnalyticsReport",
    "AsyncAnalytics",
    "AuditEntry",
    "Basis",
    "BatchResult",
    "Budget",
    "BudgetPeriod",
    "BudgetScope",
    "BudgetState",
    "BudgetView",
    "Cents",
    "ClientName",
    "ConfigError",
    "Conflict",
    "DeadLetter",
    "ErrorClass",
    "Evaluation",
    "EventOutcome",
    "EventResult",
    "ExportJob",
    "ExportStatus",
    "FieldError",
    "Freshness",
    "FreshnessReport",
    "FreshnessStatus",
    "Gone",
    "Grain",
    "GroupBy",
    "KeptReconciliation",
    "LineStatus",
    "Measure",
    "ModelEntry",
    "ModelFreshness",
    "NotFound",
    "Outcome",
    "PriceCategory",
    "PriceVersion",
    "ReconciliationLine",
    "ReconciliationRun",
    "Redrive",
    "ReliabilityRule",
    "RollupStats",
    "RuleMetric",
    "RuleState",
    "RuleTransition",
    "RuleView",
    "SchemaNotMigrated",
    "ScopeType",
    "SeriesPoint",
    "Settings",
    "Status",
    "StoreUnavailable",
    "TokenDetails",
    "UsageEvent",
    "ValidationFailed",
]
