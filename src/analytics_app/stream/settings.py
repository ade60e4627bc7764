"""How the stream consumer batches, retries and shuts down."""

from __future__ import annotations

import attrs

from analytics_app.stream.backoff import Backoff


@attrs.frozen
class ConsumerSettings:
    """Batching, retry and shutdown behaviour of the consumer."""

    group: str = "analytics"
    batch_size: int = 10_000
    batch_max_wait: float = 0.5
    ownership_poll: float = 2.0
    backoff_initial: float = 0.2
    backoff_max: float = 30.0
    shutdown_grace: float = 30.0
    lag_interval: float = 5.0
    stall_timeout: float = 15.0

    def backoff(self) -> Backoff:
        """A fresh backoff with these bounds."""
        return Backoff(self.backoff_initial, self.backoff_max)
