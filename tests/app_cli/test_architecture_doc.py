"""docs/architecture.md stays true: every module, class and function it names exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
PREFIXES = {
    "analytics_app.": "analytics_app.", "analytics_core.": "analytics_core.",
    "analytics_adapters.": "analytics_adapters.", "core.": "analytics_core.",
    "adapters.": "analytics_adapters.", "bootstrap.": "analytics_app.bootstrap.",
    "http.": "analytics_app.http.", "stream.": "analytics_app.stream.",
    "cli.": "analytics_app.cli.", "observability.": "analytics_app.observability.",
}


def _tokens() -> set[str]:
    found = re.findall(r"`([A-Za-z_][\w.]*)(?:\([^`]*\))?`", DOC)
    return {token for token in found if not token.endswith(".py")}


def _dotted_names() -> list[str]:
    names = set()
    for token in _tokens():
        for prefix, full in PREFIXES.items():
            if token.startswith(prefix):
                names.add(full + token[len(prefix):])
    return sorted(names)


def _class_modules() -> dict[str, list[str]]:
    """Class name -> the modules defining one by that name, over the three packages."""
    modules: dict[str, list[str]] = {}
    for path in sorted((ROOT / "src").glob("analytics_*/**/*.py")):
        module = ".".join(path.relative_to(ROOT / "src").with_suffix("").parts)
        for name in re.findall(r"^class (\w+)", path.read_text(encoding="utf-8"), re.M):
            modules.setdefault(name, []).append(module.removesuffix(".__init__"))
    return modules


def _class_names() -> list[str]:
    """CamelCase names (optionally .attribute) the map mentions, as `module|module:Name.attr`
    (any of the modules defining a class of that name may hold it)."""
    classes = _class_modules()
    names = set()
    for token in _tokens():
        head = token.split(".")[0]
        if re.fullmatch(r"[A-Z][a-z]\w*", head) and head in classes:
            names.add(f"{'|'.join(classes[head])}:{token}")
    return sorted(names)


def _resolve(dotted: str) -> object:
    if ":" in dotted:  # candidate modules of a class name: one of them must hold it
        modules, name = dotted.split(":")
        found = [_resolve_any(f"{m}.{name}") for m in modules.split("|")]
        assert any(f is not None for f in found), dotted
        return next(f for f in found if f is not None)
    return _resolve_dotted(dotted)


def _resolve_any(dotted: str) -> object | None:
    try:
        return _resolve_dotted(dotted)
    except AttributeError:
        return None


def _resolve_dotted(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(dotted)


def test_the_map_names_many_parts() -> None:
    """The map is checked against real names (a parser that found none would check nothing)."""
    assert len(_dotted_names()) > 15
    assert len(_class_names()) > 30


@pytest.mark.parametrize("dotted", _dotted_names() + _class_names())
def test_every_named_part_exists(dotted: str) -> None:
    """Each dotted name in backticks imports (module) or resolves (class, function, method)."""
    assert _resolve(dotted) is not None


@pytest.mark.parametrize("folder", re.findall(r"\*\*`analytics_app/(\w+)/`\*\*", DOC))
def test_every_described_app_folder_exists(folder: str) -> None:
    """Each folder with a paragraph is a package of analytics_app."""
    assert (ROOT / "src" / "analytics_app" / folder / "__init__.py").is_file()
