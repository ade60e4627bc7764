"""The Falcon WSGI driver of the analytics API (SPEC §5, §6)."""

from __future__ import annotations

from analytics_app.http.app import create_app

__all__ = ["create_app"]
