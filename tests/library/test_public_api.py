"""The library's public surface changes only on purpose: docs/public-api.txt lists it and
CHANGELOG.md records its fingerprint (run `python -m tests.library.surface` to print both)."""

from __future__ import annotations

from pathlib import Path

import analytics
from tests.library.surface import fingerprint, surface

ROOT = Path(__file__).resolve().parents[2]


def test_the_public_surface_is_the_documented_snapshot() -> None:
    """docs/public-api.txt is exactly the current surface (diff it to review a change)."""
    documented = (ROOT / "docs" / "public-api.txt").read_text(encoding="utf-8").splitlines()
    assert surface() == documented, (
        "the public API changed: update docs/public-api.txt (python -m tests.library.surface) "
        "and record the change and the new fingerprint in CHANGELOG.md")


def test_the_changelog_records_the_current_fingerprint() -> None:
    """A surface change without a CHANGELOG entry fails here."""
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"Public API fingerprint: `{fingerprint(surface())}`" in changelog


def test_every_public_name_is_documented_and_exported_once() -> None:
    """__all__ is sorted, without duplicates, and each name has a docstring."""
    names = list(analytics.__all__)
    assert names == sorted(set(names))
    for name in names:
        value = getattr(analytics, name)
        assert (getattr(value, "__doc__", None) or "").strip(), f"{name} has no docstring"


def test_the_package_ships_its_type_information() -> None:
    """py.typed marks the package as typed for mypy in consumer services."""
    assert (Path(analytics.__file__).parent / "py.typed").is_file()
