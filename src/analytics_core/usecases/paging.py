"""Cursor pages: a store is asked for one item more than the page holds, and that extra item
says whether a next page exists."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

T = TypeVar("T")
Cursor = tuple[datetime, uuid.UUID]


def cut(found: Sequence[T], limit: int, key: Callable[[T], Cursor]
        ) -> tuple[tuple[T, ...], Cursor | None]:
    """The first `limit` items of `found` (read with `limit + 1`), and the next page's cursor:
    the last item's key when more were found, else None."""
    page = tuple(found[:limit])
    return page, (key(page[-1]) if len(found) > limit else None)
