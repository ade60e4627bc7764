"""What the dashboard driver is given: the API's use cases, sessions, the clock, the
pipeline's freshness, the fleet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs

from analytics_app.http.api import HttpApi
from analytics_core.access import Actor
from analytics_core.freshness import Freshness
from analytics_core.sessions import UiSession
from analytics_core.usecases.fleet import FleetRow, FleetWindow


@attrs.frozen
class DashboardApi:
    """Every callable the pages use, with their ports already bound by the composition root."""

    http: HttpApi
    start_session: Callable[[Actor, str | None, datetime | None], tuple[str, UiSession]]
    resume_session: Callable[[str], UiSession]
    end_session: Callable[[str], bool]
    fleet: Callable[[FleetWindow], list[FleetRow]]
    now: Callable[[], datetime]
    freshness: Callable[[], Freshness]  # the pipeline's: what every org's report carries
    attribution_keys: tuple[str, ...] = ()  # ANALYTICS_ATTRIBUTION_KEYS: the tag tables
    secure_cookies: bool = False  # Secure even over plain http (behind a TLS proxy)
