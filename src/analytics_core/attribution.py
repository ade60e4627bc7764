"""Attribution (SPEC §12): usage by actor and by configured metadata keys (tags).

Each accepted event is also rolled up, in the same transaction, once per attribution
dimension: `actor` (its actorId) and `tag:KEY` for every configured key (its metadata value).
The attribution rollups have the shape of the model/client rollups (every counter, catalog
cost, the latency sketch, error codes; 15-minute base with hour and day tiers), keyed by
(org, bucket, model, group) where the group is `dimension + "\\x1f" + value`.

The number of distinct values is bounded: per org, dimension and UTC day at most `value_cap`
values are admitted, first come first admitted (batch by batch; within one batch in sorted
order); an event whose value is not admitted counts in the value `(other)`. An event without
the actor or tag counts in the value "" (shown as null). So an attribution table holds at
most (cap + 2) rows per org, dimension, model and bucket however many distinct values
producers send.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Protocol

import attrs

from analytics_core.events import UsageEvent

MAX_ATTRIBUTION_KEYS = 8
MAX_KEY_LENGTH = 64
DEFAULT_VALUE_CAP = 1000
ACTOR = "actor"
TAG_PREFIX = "tag:"
SEPARATOR = "\x1f"
OTHER = "(other)"
NO_VALUE = ""


@attrs.frozen
class AttributionSettings:
    """Which metadata keys are attribution keys, and the cap on values per org, key and day."""

    keys: tuple[str, ...] = ()
    value_cap: int = DEFAULT_VALUE_CAP

    @property
    def dimensions(self) -> tuple[str, ...]:
        """`actor`, then `tag:KEY` for each key."""
        return (ACTOR, *(TAG_PREFIX + k for k in self.keys))


def group_of(dimension: str, value: str) -> str:
    """The stored group key of a dimension's value."""
    return f"{dimension}{SEPARATOR}{value}"


def value_of(group: str) -> str:
    """The value part of a stored group key."""
    return group.partition(SEPARATOR)[2]


def dimension_value(event: UsageEvent, dimension: str) -> str:
    """The event's value for a dimension ("" when it has none)."""
    if dimension == ACTOR:
        return NO_VALUE if event.actor_id is None else str(event.actor_id)
    return event.metadata.get(dimension[len(TAG_PREFIX):], NO_VALUE)


Admitted = Mapping[tuple[uuid.UUID, date, str], set[str]]


def wanted_values(events: Iterable[UsageEvent], dimensions: Sequence[str]
                  ) -> dict[tuple[uuid.UUID, date, str], set[str]]:
    """The non-empty values each (org, UTC day, dimension) of a batch needs admitted."""
    wanted: dict[tuple[uuid.UUID, date, str], set[str]] = {}
    for e in events:
        day = e.occurred_at.date()
        for dimension in dimensions:
            value = dimension_value(e, dimension)
            if value:
                wanted.setdefault((e.org_id, day, dimension), set()).add(value)
    return wanted


def groups_of(event: UsageEvent, dimensions: Sequence[str], admitted: Admitted
              ) -> list[str]:
    """The attribution groups an event counts in: its value per dimension, or `(other)` when
    that value was not admitted under the cap."""
    day = event.occurred_at.date()
    out = []
    for dimension in dimensions:
        value = dimension_value(event, dimension)
        if value and value not in admitted.get((event.org_id, day, dimension), ()):
            value = OTHER
        out.append(group_of(dimension, value))
    return out


def parse_keys(text: str) -> tuple[str, ...]:
    """ANALYTICS_ATTRIBUTION_KEYS: comma-separated metadata keys; ValueError names the rule."""
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    if len(keys) > MAX_ATTRIBUTION_KEYS:
        raise ValueError(f"must name at most {MAX_ATTRIBUTION_KEYS} keys, got {len(keys)}")
    if len(set(keys)) != len(keys):
        raise ValueError("must not repeat a key")
    for k in keys:
        if len(k) > MAX_KEY_LENGTH or SEPARATOR in k or not k.isprintable():
            raise ValueError(f"key {k!r} must be at most {MAX_KEY_LENGTH} printable characters")
    return keys


AdmitKey = tuple[uuid.UUID, date, str]


class Admitter(Protocol):
    """What `AdmittedCache` asks when it does not know (ports.AttributionStore.admit)."""

    def admit(self, wanted: Mapping[AdmitKey, set[str]], cap: int
              ) -> dict[AdmitKey, set[str]]: ...


class AdmittedCache:
    """Values known to be admitted per (org, UTC day, dimension), remembered by one process.

    A value once admitted stays admitted (purge drops only days older than the rollups), so a
    batch whose values are all known, or whose key is known to be full, reads nothing. The
    cache learns only what `remember` is given after the unit that admitted it committed.
    Bounded: forgotten whole past `limit` keys.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self._known: dict[AdmitKey, set[str]] = {}
        self._limit = limit

    def admit(self, store: Admitter, wanted: Mapping[AdmitKey, set[str]], cap: int
              ) -> dict[AdmitKey, set[str]]:
        """The admitted subset of each wanted set, asking `store` only for keys with values
        this process has not seen admitted (and that are not known to be full)."""
        out: dict[AdmitKey, set[str]] = {}
        missing: dict[AdmitKey, set[str]] = {}
        for key, values in wanted.items():
            known = self._known.get(key)
            if known is not None and (values <= known or len(known) >= cap):
                out[key] = values & known
            else:
                missing[key] = values
        if missing:
            out.update(store.admit(missing, cap))
        return out

    def remember(self, admitted: Mapping[AdmitKey, set[str]]) -> None:
        """Learn values admitted by a committed unit."""
        if len(self._known) > self._limit:
            self._known.clear()
        for key, values in admitted.items():
            self._known.setdefault(key, set()).update(values)
