"""Stream topology: partition stream names, org-hash routing and the declared retention."""

from __future__ import annotations

import uuid
from datetime import timedelta

import attrs
import mmh3

# The seed the RabbitMQ Java client uses for super-stream hash routing (murmur3 32-bit over the
# UTF-8 routing key, taken unsigned, modulo the partition count). Using the same function means a
# producer using super streams on a newer broker routes an org to the same partition index.
_MURMUR_SEED = 104729
MAX_PARTITIONS = 200  # the stream protocol allows at most 256 subscriptions per connection


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value}")


@attrs.frozen
class Retention:
    """What the broker keeps of each partition stream; the oldest segments go first.

    A segment is deleted once it is older than `max_age` or the stream exceeds
    `max_length_bytes`, whichever comes first; retention works per whole segment.
    """

    max_age: timedelta = timedelta(days=7)
    max_length_bytes: int = attrs.field(default=20 * 1024**3, validator=_positive)
    max_segment_size_bytes: int = attrs.field(default=500 * 1024**2, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.max_age.total_seconds() < 1:
            raise ValueError("max_age must be at least one second")

    def arguments(self) -> dict[str, str]:
        """The x-arguments of the stream Create command."""
        return {
            "max-age": f"{int(self.max_age.total_seconds())}s",
            "max-length-bytes": str(self.max_length_bytes),
            "stream-max-segment-size-bytes": str(self.max_segment_size_bytes),
        }


@attrs.frozen
class StreamTopology:
    """N partition streams named `{base}-0` .. `{base}-{N-1}` (the super-stream naming)."""

    base: str = "analytics.usage.v1"
    partitions: int = attrs.field(default=4)
    retention: Retention = Retention()

    @partitions.validator
    def _check_partitions(self, _: attrs.Attribute[int], value: int) -> None:
        if not 1 <= value <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be between 1 and {MAX_PARTITIONS}, got {value}")

    @property
    def streams(self) -> tuple[str, ...]:
        """Every partition stream, in partition order."""
        return tuple(self.stream(i) for i in range(self.partitions))

    def stream(self, index: int) -> str:
        """The name of partition `index`."""
        if not 0 <= index < self.partitions:
            raise IndexError(f"partition {index} out of range 0..{self.partitions - 1}")
        return f"{self.base}-{index}"

    def partition_of(self, org_id: uuid.UUID | str | None) -> int:
        """The partition of an org: a stable hash of its canonical id (no orgId: partition 0)."""
        if org_id is None:
            return 0
        key = str(org_id).lower() if isinstance(org_id, uuid.UUID) else _canonical(org_id)
        return int(mmh3.hash(key.encode("utf-8"), _MURMUR_SEED, signed=False)) % self.partitions


def _canonical(org_id: str) -> str:
    try:
        return str(uuid.UUID(org_id))
    except ValueError:
        return org_id
