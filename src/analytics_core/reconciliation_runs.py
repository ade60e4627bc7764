"""A kept invoice reconciliation (SPEC §15): what was compared, against what, and the result.

`analytics_core.reconciliation` reads a provider's report and compares; this module is the
record the product keeps of one such comparison, so that finance can list past runs, read one
again and download it as CSV without uploading the invoice again. The metered side is read in
the run's zone, at the freshness of the moment (`complete_through`): a run made before late
events arrived says so, and a new run sees them.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

import attrs

from analytics_core.money import Cents
from analytics_core.reconciliation import ColumnMapping


class Basis(StrEnum):
    """Which metered cost the invoice is compared with."""

    CATALOG = "catalog"  # the price catalog's cost of the events (SPEC §12)
    REPORTED = "reported"  # the cost the producers reported (`costEstimateCents`)


def mapping_fields(mapping: ColumnMapping) -> dict[str, str | None]:
    """The mapping as the camelCase fields `ColumnMapping.from_fields` reads back."""
    return {"day": mapping.day, "model": mapping.model, "cost": mapping.cost,
            "inputTokens": mapping.input_tokens, "outputTokens": mapping.output_tokens,
            "costUnit": mapping.cost_unit.value, "dayFormat": mapping.day_format}


@attrs.frozen
class ReconciliationRun:
    """One reconciliation of an org, as kept; its lines are stored beside it, in order."""

    reconciliation_id: uuid.UUID
    org_id: uuid.UUID
    created_at: datetime
    created_by: str
    name: str  # the uploaded file's name or a label; may be empty
    tz: str
    basis: Basis
    tolerance_percent: Decimal
    mapping: ColumnMapping
    first_day: date  # the invoice's first and last day, both included, in `tz`
    last_day: date
    metered_total: Cents
    invoiced_total: Cents
    line_count: int
    flagged_count: int
    complete_through: datetime  # the pipeline's freshness when the metered side was read

    @property
    def variance(self) -> Cents:
        """Invoiced total - metered total."""
        return self.invoiced_total - self.metered_total
