"""Random (version 4) UUIDs for every new id."""

from __future__ import annotations

import uuid


class RandomIds:
    """Fresh random (version 4) UUIDs."""

    def new_id(self) -> uuid.UUID:
        """A new uuid4."""
        return uuid.uuid4()
