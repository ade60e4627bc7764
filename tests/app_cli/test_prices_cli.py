"""`analytics prices import FILE`, `prices list` and `restatements run` on a migrated SQLite
database: names resolved through the registry, all or nothing with every bad row named,
a list that imports back, restatements run to the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics_app.cli import main

GPT = "11111111-1111-4111-8111-111111111111"


def _register(migrated: Path) -> None:
    path = migrated / "models.csv"
    path.write_text("modelId,name,provider,family,aliases\n"
                    f"{GPT},gpt-4.1-mini,openai,gpt-4.1,gpt-4.1-mini-2025-04-14\n",
                    encoding="utf-8")
    assert main(["models", "import", str(path)]) == 0


def test_a_csv_by_model_alias_imports_and_lists(
    migrated: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A row naming the model by an alias resolves to its id; the list shows the prices."""
    _register(migrated)
    path = migrated / "prices.csv"
    path.write_text("model,effectiveFrom,input,output,cacheRead\n"
                    "GPT-4.1-mini-2025-04-14,2099-01-01T00:00:00Z,0.40,1.60,0.10\n",
                    encoding="utf-8")
    capsys.readouterr()
    assert main(["prices", "import", str(path)]) == 0
    assert "added 1 price versions" in capsys.readouterr().out
    assert main(["prices", "list", "--json"]) == 0
    (version,) = json.loads(capsys.readouterr().out)["versions"]
    assert (version["modelId"], version["prices"]) == (
        GPT, {"input": "0.4", "output": "1.6", "cacheRead": "0.1"})
    assert main(["prices", "list"]) == 0
    assert '"gpt-4.1-mini"  global  from 2099-01-01' in capsys.readouterr().out


def test_every_bad_row_is_named_and_nothing_is_stored(
    migrated: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """An unknown name, a negative price, a missing output and a backdated row without
    restate: exit 2, each row and field named; the good row is not stored."""
    _register(migrated)
    path = migrated / "bad.csv"
    path.write_text("model,effectiveFrom,input,output,restate\n"
                    "gpt-4.1-mini,2099-01-01T00:00:00Z,0.40,1.60,\n"
                    "no-such-model,2099-01-02T00:00:00Z,0.40,1.60,\n"
                    "gpt-4.1-mini,2099-01-03T00:00:00Z,-1,1.60,\n"
                    "gpt-4.1-mini,2099-01-04T00:00:00Z,0.40,,\n"
                    "gpt-4.1-mini,2001-01-01T00:00:00Z,0.40,1.60,false\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["prices", "import", str(path)]) == 2
    err = capsys.readouterr().err
    for expected in ("row 2: model", "row 3: prices.input", "row 4: prices.output",
                     "row 5: restate"):
        assert expected in err
    assert "row 1" not in err
    assert main(["prices", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["versions"] == []


def test_the_demo_registers_list_prices_once(
    migrated: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`analytics demo` adds one price version per demo model, and a second run adds none."""
    assert main(["demo", "--events", "200", "--days", "1", "--no-progress"]) == 0
    assert main(["demo", "--events", "200", "--days", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["prices", "list", "--json"]) == 0
    versions = json.loads(capsys.readouterr().out)["versions"]
    assert len(versions) == len({v["modelId"] for v in versions}) == 10
    assert all(v["note"] == "demo list price" for v in versions)


def test_restatements_run_says_when_nothing_is_open(
    migrated: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """With no open restatement the command says so and exits 0."""
    capsys.readouterr()
    assert main(["restatements", "run"]) == 0
    assert "no restatement is open" in capsys.readouterr().out
