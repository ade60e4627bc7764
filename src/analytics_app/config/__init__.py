"""Configuration: every ANALYTICS_* variable read, checked and collected into `Settings`.

`settings` holds the process-wide settings, `env` the reader and its helpers (secrets, masked
URLs), `stream` the ANALYTICS_RABBITMQ_* group. Nothing here opens a connection.
"""

from __future__ import annotations

from analytics_app.config.settings import S3Config, Settings, known_variables, load_settings

__all__ = ["S3Config", "Settings", "known_variables", "load_settings"]
