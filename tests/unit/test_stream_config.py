"""ANALYTICS_RABBITMQ_* settings: off by default, validated, one message per bad value."""

from __future__ import annotations

import pytest

from analytics_app.config import load_settings
from analytics_core.errors import ConfigError


def test_stream_ingestion_is_off_without_a_host() -> None:
    """No ANALYTICS_RABBITMQ_HOST: no stream settings."""
    assert load_settings({"ANALYTICS_DATABASE_URL": "memory"}).rabbitmq is None


def test_stream_settings_are_read_with_their_defaults() -> None:
    """Host set: documented defaults for everything else; the password never in repr."""
    config = load_settings({"ANALYTICS_DATABASE_URL": "memory",
                            "ANALYTICS_RABBITMQ_HOST": "rabbit",
                            "ANALYTICS_RABBITMQ_PARTITIONS": "8",
                            "ANALYTICS_RABBITMQ_PASSWORD": "s3cret-pw"}).rabbitmq
    assert config is not None
    assert (config.host, config.port, config.stream, config.partitions, config.batch_size) == (
        "rabbit", 5552, "analytics.usage.v1", 8, 10_000)
    assert "s3cret-pw" not in repr(config)


def test_bad_stream_settings_are_each_named() -> None:
    """Every bad value is reported by its variable name."""
    with pytest.raises(ConfigError) as error:
        load_settings({"ANALYTICS_DATABASE_URL": "memory", "ANALYTICS_RABBITMQ_HOST": "r",
                       "ANALYTICS_RABBITMQ_PARTITIONS": "0",
                       "ANALYTICS_RABBITMQ_STREAM": "bad name!"})
    assert "ANALYTICS_RABBITMQ_PARTITIONS" in str(error.value)
    assert "ANALYTICS_RABBITMQ_STREAM" in str(error.value)


def test_stream_settings_without_a_host_are_an_error() -> None:
    """Setting a stream option while ingestion is off is a mistake worth naming."""
    with pytest.raises(ConfigError, match="requires ANALYTICS_RABBITMQ_HOST"):
        load_settings({"ANALYTICS_DATABASE_URL": "memory",
                       "ANALYTICS_RABBITMQ_PARTITIONS": "3"})
