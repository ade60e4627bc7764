"""Run the FinOps `focus-validator` (2.2.1, FOCUS 1.2) on a CSV, and check what it does not.

The validator needs Python >= 3.12 and pins of its own, so it lives in its own venv
(`.ci/focus-validator` creates `.venv-focus`; ANALYTICS_TEST_FOCUS_VALIDATOR may name another
executable) and runs as a subprocess, from its site-packages folder (it opens its rule files by
relative paths), with downloads blocked. It always exits 0 once it runs, so its per-rule lines
are read. One known false positive of 2.2.1 is ignored: any non-empty file fails one of the two
children of the OR rule InvoiceId-C-003-C ("must be null" / "must not be null", neither with a
condition), which is reported failed although its parent passes.

2.2.1 also never evaluates some rules (those conditioned on ChargeClass being non-null and not
`Correction`, allowed values row by row, dynamic rules): `row_problems` checks those on every
row.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from tests.conftest import require_service

REPO = Path(__file__).resolve().parent.parent
KNOWN_FALSE_POSITIVES = {"InvoiceId-C-004-C", "InvoiceId-C-005-C"}
_LOGGING = """version: 1
disable_existing_loggers: false
handlers:
  file:
    class: logging.FileHandler
    filename: {path}
root:
  level: WARNING
  handlers: [file]
"""
_SUMMARY = re.compile(r"Total: (\d+) \| Pass: (\d+) \| Fail: (\d+) \| Skipped: (\d+)")
_RULE = re.compile(r"^\S+ (\S+?): (PASS|FAIL|SKIPPED)", re.MULTILINE)


def executable() -> Path:
    """The validator, or skip (fail in CI) when it is not installed."""
    named = os.environ.get("ANALYTICS_TEST_FOCUS_VALIDATOR")
    path = Path(named) if named else REPO / ".venv-focus" / "bin" / "focus-validator"
    require_service(f"focus-validator ({path}; run .ci/focus-validator)", path.is_file())
    return path


def _site_packages(validator: Path) -> Path:
    python = validator.parent / "python"
    out = subprocess.run(
        [str(python), "-c", "import focus_validator, os; "
                            "print(os.path.dirname(os.path.dirname(focus_validator.__file__)))"],
        capture_output=True, text=True, check=True, timeout=120)
    return Path(out.stdout.strip())


def validator_failures(data: Path, criteria: Sequence[str], workdir: Path) -> list[str]:
    """The rules the file fails (known false positive excluded); AssertionError when the
    validator did not run to its summary."""
    validator = executable()
    logging_yaml = workdir / "focus-logging.yaml"
    logging_yaml.write_text(_LOGGING.format(path=workdir / "focus-validator.log"))
    env = {**os.environ, "LOGGING_CONFIG": str(logging_yaml)}
    result = subprocess.run(
        [str(validator), "--data-file", str(data.resolve()), "--validate-version", "1.2",
         "--block-download", "--applicability-criteria", ",".join(criteria)],
        cwd=_site_packages(validator), env=env, capture_output=True, text=True, timeout=600,
        check=False)
    summary = _SUMMARY.search(result.stdout)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    assert summary, (result.stdout[-3000:], result.stderr[-3000:])
    status = dict(_RULE.findall(result.stdout))
    assert int(summary.group(2)) > 100, result.stdout[-3000:]  # the rules really ran
    failed = {rule for rule, s in status.items() if s == "FAIL"}
    if status.get("InvoiceId-C-003-C") == "PASS":
        failed -= KNOWN_FALSE_POSITIVES
    return sorted(failed)


def _when(text: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text), text
    return datetime.fromisoformat(text)


def row_problems(body: bytes) -> list[str]:
    """FOCUS rules 2.2.1 leaves unchecked, on every row: unit price x pricing quantity equals
    list and contracted cost exactly, allowed values, non-null prices and SKUs on usage rows,
    the charge period inside the billing period, Tags an object of scalars, x_ prefixes."""
    problems: list[str] = []
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    for column in rows[0] if rows else ():
        if not column[0].isupper() and not column.startswith("x_"):
            problems.append(f"custom column {column} lacks the x_ prefix")
    for n, r in enumerate(rows, start=2):
        quantity = Decimal(r["PricingQuantity"])
        if Decimal(r["ListUnitPrice"]) * quantity != Decimal(r["ListCost"]):
            problems.append(f"row {n}: ListCost != ListUnitPrice x PricingQuantity")
        if Decimal(r["ContractedUnitPrice"]) * quantity != Decimal(r["ContractedCost"]):
            problems.append(f"row {n}: ContractedCost != ContractedUnitPrice x PricingQuantity")
        if Decimal(r["ConsumedQuantity"]) != quantity * 1_000_000:
            problems.append(f"row {n}: PricingQuantity is not ConsumedQuantity in millions")
        expected = {"ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
                    "ServiceCategory": "AI and Machine Learning",
                    "ServiceSubcategory": "Generative AI", "PricingCategory": "Standard",
                    "BillingCurrency": "USD", "ChargeClass": "", "ConsumedUnit": "Tokens",
                    "PricingUnit": "1000000 Tokens"}
        for column, value in expected.items():
            if r[column] != value:
                problems.append(f"row {n}: {column} is {r[column]!r}")
        for column in ("SkuId", "SkuPriceId", "SkuMeter", "ListUnitPrice",
                       "ContractedUnitPrice", "BilledCost", "EffectiveCost"):
            if not r[column]:
                problems.append(f"row {n}: {column} is null on a usage row")
        start, end = _when(r["ChargePeriodStart"]), _when(r["ChargePeriodEnd"])
        bill_start, bill_end = _when(r["BillingPeriodStart"]), _when(r["BillingPeriodEnd"])
        if not bill_start <= start < end <= bill_end:
            problems.append(f"row {n}: charge period outside its billing period")
        if r["Tags"]:
            tags = json.loads(r["Tags"])
            if not isinstance(tags, dict) or any(isinstance(v, dict | list)
                                                 for v in tags.values()):
                problems.append(f"row {n}: Tags is not an object of scalars")
        details = json.loads(r["SkuPriceDetails"])
        if any(not k.startswith("x_") for k in details):
            problems.append(f"row {n}: SkuPriceDetails key without x_")
    return problems
