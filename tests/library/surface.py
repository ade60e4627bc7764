"""The public surface of `analytics` as text: every public name, signature and attrs field.

`python -m tests.library.surface` prints it and its fingerprint (what CHANGELOG.md records).
"""

from __future__ import annotations

import enum
import hashlib
import inspect
from collections.abc import Iterator

import attrs

import analytics


def _members(name: str, cls: type) -> Iterator[str]:
    if attrs.has(cls):
        for field in attrs.fields(cls):
            if not field.name.startswith("_"):
                yield f"{name}.{field.name}: {field.type}"
    for member, raw in sorted(vars(cls).items()):
        if member.startswith("_") and member not in ("__init__", "__enter__", "__exit__"):
            continue
        value = raw.__func__ if isinstance(raw, classmethod | staticmethod) else raw
        if isinstance(value, property):
            yield f"{name}.{member}: property -> {inspect.signature(value.fget).return_annotation}"
        elif inspect.isfunction(value):
            yield f"{name}.{member}{inspect.signature(value)}"


def surface() -> list[str]:
    """One line per public name and member, sorted."""
    lines: list[str] = []
    for name in sorted(analytics.__all__):
        value = getattr(analytics, name)
        if inspect.isclass(value):
            kind = "enum" if issubclass(value, enum.Enum) else "class"
            lines.append(f"{kind} {name}")
            if kind == "enum":
                lines.extend(f"{name}.{m.name} = {m.value!r}" for m in value)
            else:
                lines.extend(_members(name, value))
        else:
            lines.append(f"{name}: {value!r}")
    return lines


def fingerprint(lines: list[str]) -> str:
    """sha256 of the surface text, first 16 hex digits."""
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


if __name__ == "__main__":
    text = surface()
    print("\n".join(text))
    print(f"\nfingerprint {fingerprint(text)}")
