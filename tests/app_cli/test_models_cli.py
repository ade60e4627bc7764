"""`analytics models import FILE` and `models list` on a migrated SQLite database: CSV and
JSON files, all-or-nothing, every bad row named, a list that round-trips."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from analytics_app.cli import main

GPT, LLAMA = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def _listed(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    models: list[dict[str, object]] = json.loads(capsys.readouterr().out)["models"]
    return models


def test_a_csv_imports_names_and_aliases_and_lists_them(
    migrated: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """CSV rows (aliases split on |) are registered; a second import reports them unchanged."""
    path = migrated / "models.csv"
    path.write_text("modelId,name,provider,family,aliases\n"
                    f"{GPT},gpt-4.1-mini,openai,gpt-4.1,gpt-4.1-mini-2025-04-14|4.1-mini\n"
                    f"{LLAMA},llama-3.3-70b (self-hosted),meta,llama-3.3,\n", encoding="utf-8")
    assert main(["models", "import", str(path)]) == 0
    assert "imported 2 models: 2 new, 0 renamed or changed, 0 unchanged" in capsys.readouterr().out
    assert _listed(capsys) == [
        {"modelId": GPT, "name": "gpt-4.1-mini", "provider": "openai", "family": "gpt-4.1",
         "aliases": ["gpt-4.1-mini-2025-04-14", "4.1-mini"]},
        {"modelId": LLAMA, "name": "llama-3.3-70b (self-hosted)", "provider": "meta",
         "family": "llama-3.3", "aliases": []},
    ]
    assert main(["models", "import", str(path)]) == 0
    assert "0 new, 0 renamed or changed, 2 unchanged" in capsys.readouterr().out


def test_the_json_list_round_trips_and_dry_run_stores_nothing(
    migrated: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`models list --json` output imports as is; --dry-run reports and changes nothing."""
    path = migrated / "models.json"
    path.write_text(json.dumps([{"modelId": GPT, "name": "gpt-4o"}]), encoding="utf-8")
    assert main(["models", "import", "--dry-run", str(path)]) == 0
    assert "would import 1 models: 1 new" in capsys.readouterr().out
    assert _listed(capsys) == []
    assert main(["models", "import", str(path)]) == 0
    exported = migrated / "exported.json"
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    exported.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["models", "import", str(exported)]) == 0
    assert "1 unchanged" in capsys.readouterr().out


def test_every_bad_row_is_named_and_nothing_is_stored(
    migrated: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad UUID, an empty name and a label shared by two rows: exit 2, each named."""
    path = migrated / "bad.json"
    path.write_text(json.dumps([
        {"modelId": GPT, "name": "ok-model"},
        {"modelId": "not-a-uuid", "name": "x"},
        {"modelId": str(uuid.uuid4()), "name": ""},
        {"modelId": LLAMA, "name": "other", "aliases": ["OK-MODEL"]},
    ]), encoding="utf-8")
    assert main(["models", "import", str(path)]) == 2
    err = capsys.readouterr().err
    assert "row 2: modelId" in err
    assert "row 3: name" in err
    path.write_text(json.dumps([{"modelId": GPT, "name": "ok-model"},
                                {"modelId": LLAMA, "name": "other", "aliases": ["OK-MODEL"]}]),
                    encoding="utf-8")
    assert main(["models", "import", str(path)]) == 2
    assert "row 2: OK-MODEL: also names row 1" in capsys.readouterr().err
    assert _listed(capsys) == []


def test_a_label_taken_by_a_registered_model_is_a_conflict_naming_the_row(
    migrated: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The whole file is refused when one row's alias names a model already registered."""
    first = migrated / "first.json"
    first.write_text(json.dumps([{"modelId": GPT, "name": "gpt-4o"}]), encoding="utf-8")
    assert main(["models", "import", str(first)]) == 0
    second = migrated / "second.json"
    second.write_text(json.dumps([{"modelId": str(uuid.uuid4()), "name": "fresh"},
                                  {"modelId": LLAMA, "name": "llama", "aliases": ["GPT-4o"]}]),
                      encoding="utf-8")
    capsys.readouterr()
    assert main(["models", "import", str(second)]) == 2
    assert f"row 2 ({LLAMA})" in capsys.readouterr().err
    assert [m["name"] for m in _listed(capsys)] == ["gpt-4o"]
