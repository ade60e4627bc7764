"""Shared test configuration: Hypothesis profiles and real-service availability rules."""

from __future__ import annotations

import os
import socket

import pytest
from hypothesis import HealthCheck, settings

# The contract backends are shared fixture modules imported as plugins and by test modules;
# registering them here, before anything imports them, keeps pytest's assertion rewriting.
pytest.register_assert_rewrite("tests.contract", "tests.integration", "tests.ops")

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    "ci" if os.environ.get("CI") == "true" else os.environ.get("HYPOTHESIS_PROFILE", "dev")
)

IN_CI = os.environ.get("CI") == "true"

POSTGRES_URL = os.environ.get(
    "ANALYTICS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("ANALYTICS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RABBITMQ_HOST = os.environ.get("ANALYTICS_TEST_RABBITMQ_HOST", "127.0.0.1")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, available: bool) -> None:
    """Skip with a clear reason when a real service is absent locally; fail when CI=true."""
    if available:
        return
    message = f"{name} is not reachable; start it (see README 'Running the tests')"
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)
