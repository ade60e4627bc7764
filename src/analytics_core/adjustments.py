"""Adjustment files of closed periods (SPEC §15): what changed in a usage file's numbers since
it was filed, as signed deltas of the changed rows only.

A usage file's rows are keyed by (bucket_start, bucket_end, model_id); its numeric columns are
every column but those and the text columns (timezone, org_id, model_name). The period as
filed is the original file plus every adjustment so far, row by row; an adjustment holds, for
each key whose numbers differ now, current minus filed (a row that appeared counts from zero, a
row that vanished goes to zero). So original + adjustments = the current numbers, exactly.
Counts are integers; cent columns keep their four decimal places.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from analytics_core.csvrows import USAGE_COLUMNS

KEY = ("bucket_start", "bucket_end", "model_id")
TEXT = ("timezone", "org_id", "model_name")
NUMERIC = tuple(c for c in USAGE_COLUMNS if c not in KEY and c not in TEXT)
CENTS = frozenset({"cost_estimate_cents", "catalog_cost_cents"})
_QUANTUM = Decimal("0.0001")

Key = tuple[str, str, str]
Rows = dict[Key, dict[str, str]]


def rows_of(lines: Iterable[Sequence[str]]) -> Rows:
    """Rows (without the header) by key, as cell texts."""
    out: Rows = {}
    for line in lines:
        row = dict(zip(USAGE_COLUMNS, line, strict=True))
        out[(row["bucket_start"], row["bucket_end"], row["model_id"])] = row
    return out


def parse(data: bytes) -> Rows:
    """A usage file's (or an adjustment's) rows by key."""
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    header = next(reader, None)
    if header is None:
        return {}
    if tuple(header) != USAGE_COLUMNS:
        raise ValueError("not a usage file of this version's columns")
    return rows_of(reader)


def _number(text: str) -> Decimal:
    return Decimal(text) if text else Decimal(0)


def _cell(column: str, value: Decimal) -> str:
    return f"{value.quantize(_QUANTUM):f}" if column in CENTS else str(int(value))


def apply(filed: Rows, adjustment: Rows) -> Rows:
    """Filed rows with an adjustment's deltas added (a new key starts from zero)."""
    out = {k: dict(v) for k, v in filed.items()}
    for key, delta in adjustment.items():
        row = out.setdefault(key, {**delta, **{c: _cell(c, Decimal(0)) for c in NUMERIC}})
        for c in TEXT:
            row[c] = delta[c]
        for c in NUMERIC:
            row[c] = _cell(c, _number(row[c]) + _number(delta[c]))
    return out


def deltas(filed: Rows, current: Rows) -> list[list[str]]:
    """Current minus filed for every key whose numbers differ, ordered by key; text cells
    from the current row (the filed one when it vanished), neutralised like every cell."""
    out = []
    for key in sorted(set(filed) | set(current), key=lambda k: (k[0], k[2])):
        now, then = current.get(key), filed.get(key)
        values = {c: _number(now[c] if now else "") - _number(then[c] if then else "")
                  for c in NUMERIC}
        if not any(values.values()):
            continue
        source = now or then
        assert source is not None
        row = []
        for c in USAGE_COLUMNS:
            # Numbers are ours and stay numbers (a negative delta is not a formula); the text
            # cells were neutralised when they were written and are kept as they are.
            row.append(_cell(c, values[c]) if c in values else source[c])
        out.append(row)
    return out


def digest(rows: Mapping[Key, Mapping[str, str]]) -> str:
    """The numbers of a period (key and numeric cells, in key order), hashed: two states with
    the same digest file the same numbers; names and zone labels do not count."""
    h = hashlib.sha256()
    for key in sorted(rows):
        row = rows[key]
        h.update("\x1f".join([*key, *(_cell(c, _number(row[c])) for c in NUMERIC)]).encode())
        h.update(b"\n")
    return h.hexdigest()


def totals(rows: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """Column sums of numeric cells (deltas may be negative)."""
    sums = dict.fromkeys(NUMERIC, Decimal(0))
    for row in rows:
        for c in NUMERIC:
            sums[c] += _number(row[c])
    return {c: _cell(c, v) for c, v in sums.items()}

