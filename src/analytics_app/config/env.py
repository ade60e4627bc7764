"""Reading `ANALYTICS_*` variables with one message per bad value; secrets that never print."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import attrs

PREFIX = "ANALYTICS_"
# Read by the test suite only (see tests/conftest.py); never by the product.
_IGNORED_PREFIXES = ("ANALYTICS_TEST_",)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@attrs.frozen(repr=False)
class Secret:
    """A secret string that never shows itself in repr, str or logs; `reveal()` to use it."""

    _value: str

    def reveal(self) -> str:
        """The secret itself, for the one place that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


def masked_url(url: str | None) -> str | None:
    """The URL with any password replaced by `***` (safe to print)."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port is not None else ""
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


class EnvReader:
    """Reads `ANALYTICS_*` variables, collecting one message per bad value in `errors`."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.errors: list[str] = []
        self.known: set[str] = set()

    def raw(self, name: str) -> str | None:
        self.known.add(PREFIX + name)
        value = self.environ.get(PREFIX + name, "").strip()
        return value or None

    def fail(self, name: str, reason: str) -> None:
        self.errors.append(f"{PREFIX}{name}: {reason}")

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.fail(name, f"must be an integer, got {value!r}")
            return default
        if not low <= number <= high:
            self.fail(name, f"must be between {low} and {high}, got {number}")
            return default
        return number

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            self.fail(name, f"must be a number, got {value!r}")
            return default
        if not low <= number <= high:
            self.fail(name, f"must be between {low:g} and {high:g}, got {value}")
            return default
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        self.fail(name, f"must be true or false, got {value!r}")
        return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
        self.fail(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return default

    def unknown(self) -> None:
        for name in sorted(self.environ):
            if not name.startswith(PREFIX) or name.startswith(_IGNORED_PREFIXES):
                continue
            if name not in self.known:
                close = difflib.get_close_matches(name, sorted(self.known), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.errors.append(f"{name}: unknown setting{hint}")
