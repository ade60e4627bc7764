"""Command handlers resolved on use: the parser imports nothing heavy to print --help."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable


def lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A handler that loads the settings, then calls `module.name(args, settings)`."""

    def run(args: argparse.Namespace) -> int:
        from analytics_app.config import load_settings  # noqa: PLC0415  imported on use

        handler: Callable[[argparse.Namespace, object], int] = getattr(
            importlib.import_module(module), name)
        return handler(args, load_settings())

    return run
