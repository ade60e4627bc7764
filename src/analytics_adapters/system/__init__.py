"""The real wall clock and random UUIDs: the Clock and IdGenerator of every mode."""

from __future__ import annotations

from analytics_adapters.system.clock import SystemClock
from analytics_adapters.system.ids import RandomIds

__all__ = ["RandomIds", "SystemClock"]
