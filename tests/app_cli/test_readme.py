"""The README stays true: its configuration table, quick start and library example."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from analytics_app.config import known_variables

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:] if end < 0 else README[start:end]


def test_configuration_table_lists_exactly_the_settings_read():
    """Every variable the loader reads has a row, and every row is a real variable."""
    rows = set(re.findall(r"^\| `(ANALYTICS_[A-Z0-9_]+)` \|", _section("Configuration"),
                          re.MULTILINE))
    assert rows == set(known_variables())


def test_quick_start_has_exactly_two_commands():
    """The quick start is `make run` and `make test`, nothing else."""
    block = re.search(r"```sh\n(.*?)```", _section("Quick start"), re.DOTALL)
    assert block is not None
    assert block.group(1).split("\n")[:-1] == ["make run", "make test"]


def test_library_example_runs_as_printed():
    """The library example runs and prints what its comments say."""
    block = re.search(r"```python\n(.*?)```", _section("Library use"), re.DOTALL)
    assert block is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.group(1), "README.md", "exec"), {})
    assert out.getvalue().splitlines() == ["1 1", "1 0.4210"]
