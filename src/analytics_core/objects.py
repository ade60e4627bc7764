"""Object keys and metadata every ObjectStore accepts alike (local directory and S3)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

MetadataArg = Mapping[str, str] | Callable[[], Mapping[str, str]]

_METADATA_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def key_segments(key: str) -> tuple[str, ...]:
    """The key's path segments; ValueError for anything that could leave a store's root.

    Keys are relative, slash-separated, without empty, `.`/`..` or dot-leading segments
    (dot-leading names are reserved for a store's temporary files and metadata), backslashes
    or NUL, so every ObjectStore accepts exactly the same keys.
    """
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid object key {key!r}")
    segments = tuple(key.split("/"))
    if any(not segment or segment.startswith(".") for segment in segments):
        raise ValueError(f"invalid object key {key!r}")
    return segments


def resolve_metadata(metadata: MetadataArg) -> dict[str, str]:
    """Call a metadata callable (once) and check names and values are portable S3 metadata:
    names of lowercase letters, digits and '-', values of printable ASCII."""
    values = dict(metadata() if callable(metadata) else metadata)
    for name, value in values.items():
        if not _METADATA_KEY.match(name):
            raise ValueError(f"metadata name {name!r} must be lowercase letters, digits and '-'")
        if not value.isascii() or not value.isprintable():
            raise ValueError(f"metadata value of {name!r} must be printable ASCII")
    return values
