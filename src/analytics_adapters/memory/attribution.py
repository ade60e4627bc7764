"""In-memory attribution rollups and admitted values (analytics_core.attribution)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime

import attrs

from analytics_adapters.memory.repositories import Repository
from analytics_core.attribution import SEPARATOR, group_of, value_of
from analytics_core.rollups import AggregateCell, Rollup, aggregate_rollups

AdmitKey = tuple[uuid.UUID, date, str]


class InMemoryAttributionStore(Repository):
    """Attribution rollups merged additively under the storage lock; values admitted per
    (org, UTC day, dimension) up to the cap."""

    def admit(self, wanted: Mapping[AdmitKey, set[str]], cap: int) -> dict[AdmitKey, set[str]]:
        """The admitted subset of each wanted set (new values admitted while under `cap`)."""
        journal = self._unit.journal()
        out: dict[AdmitKey, set[str]] = {}
        for key in sorted(wanted, key=str):
            known = self._db.attribution_values.get(key, frozenset())
            room = cap - len(known)
            fresh = sorted(wanted[key] - known)[:max(room, 0)]
            if fresh:
                journal.put(self._db.attribution_values, key, frozenset(known | set(fresh)))
            out[key] = (wanted[key] & known) | set(fresh)
        return out

    def add(self, rollups: Sequence[Rollup]) -> None:
        """Merge deltas into stored attribution rollups, creating missing ones."""
        journal = self._unit.journal()
        for rollup in rollups:
            table = self._db.attribution.setdefault(rollup.key.org_id, {})
            stored = table.get(rollup.key)
            journal.put(table, rollup.key,
                        rollup.stats if stored is None else stored.merge(rollup.stats))

    def aggregate(
        self, org_id: uuid.UUID, boundaries: Sequence[datetime], *, dimension: str,
        model_ids: Sequence[uuid.UUID] = (), latency: bool = True,
    ) -> list[AggregateCell]:
        """Stats merged per (period, value of `dimension`), ordered by (period, value)."""
        self._unit.journal()
        if len(boundaries) < 2:
            return []
        prefix = group_of(dimension, "")
        models = frozenset(model_ids)
        rows = [Rollup(k, s) for k, s in self._db.attribution.get(org_id, {}).items()
                if boundaries[0] <= k.bucket_start < boundaries[-1]
                and k.client_id.startswith(prefix) and (not models or k.model_id in models)]
        cells = aggregate_rollups(rows, boundaries, "client", latency)
        return [(start, value_of(group or SEPARATOR), stats) for start, group, stats in cells]

    def adjust_catalog(self, deltas: Sequence[Rollup]) -> None:
        """Add catalog costs and priced counts to the existing rows only."""
        journal = self._unit.journal()
        for d in deltas:
            table = self._db.attribution.get(d.key.org_id, {})
            stored = table.get(d.key)
            if stored is None:
                continue
            costs = tuple(a + b for a, b in zip(stored.catalog_costs, d.stats.catalog_costs,
                                                strict=True))
            journal.put(table, d.key, attrs.evolve(stored, catalog_costs=costs,
                                                   priced=stored.priced + d.stats.priced))
