"""Invoice reconciliation (SPEC §15): a provider's cost report matched by day and model.

Reading a report (`parse_invoice`, `ColumnMapping`):

- The file is UTF-8 (a leading BOM is dropped), RFC 4180 CSV, and its first non-blank row is
  the header. `ColumnMapping` names the header of each field; headers match case-insensitively
  and ignoring surrounding spaces. A mapped header missing from the file, or present twice, is
  one `header` error naming those columns and the headers found.
- Rows are numbered as a spreadsheet shows them: one number per CSV record, counting from 1
  at the first record of the file, so the header of a file without leading blank lines is row 1
  and its first data row is row 2. (A quoted cell holding a line break keeps its record one
  row.) Blank rows (no cell holding anything but spaces) are skipped wherever they are, but
  keep their numbers.
- Every row is read, and one `ValidationFailed` lists each problem as a `FieldError` named
  `row <n>: <header as written in the file>` (or `row <n>` for the row as a whole), up to
  `max_errors` of them plus a final `file` entry counting the rest. Problems with the file as
  a whole (not UTF-8, empty, no data rows, more than `max_rows` data rows) are `file` errors;
  malformed CSV (a stray quote) is a `row <n>` error after which reading stops.
- day: with `day_format="iso"` (the default) `YYYY-MM-DD`, or an ISO 8601 timestamp
  beginning with one (`2025-06-01T00:00:00Z`, `2025-06-01 13:45:00+02:00`), of which the date
  part *as written* is used: nothing is converted between zones, so reconcile in the zone the
  provider bills in (usually UTC). Any other `day_format` is a `strptime` pattern of a date
  (e.g. `%m/%d/%Y`) that must match the whole cell.
- model: the text of the cell with surrounding spaces removed; required, at most 200
  characters, no control characters.
- cost: a plain decimal number (`12.5`, `-3`, `.25`, `1.2E-5`), in USD or in cents as
  `cost_unit` says, read exactly (never through a float) and rounded half-even to the
  product's money unit, 0.0001 cent (0.000001 USD), per row. Negative costs are accepted:
  they are credits and refunds, and are summed with the other rows of their day and model.
  Thousands separators (`1,234.50`), decimal commas and currency signs are refused with a
  message saying so, because `1,234` is one thousand in one locale and one unit in another.
  At most 24 significant digits and USD 1,000,000,000,000 in absolute value.
- input/output tokens (only when mapped): a whole number >= 0 (`1200`, or `1200.0` as
  pandas writes integer columns with gaps); a blank cell is None.

Reconciling (`reconcile`): invoice rows with the same day and resolved model are summed
first (their token counts are the sum of the rows that give one, None when none does), and
unresolved model texts are summed per day and exact text. Every metered entry is reconciled
except those with zero cost and zero invocations, so the caller passes metered usage for
exactly the days the report covers, bucketed in the reconciliation zone. The variance is
invoiced - metered (a missing side counts as 0) and its percentage is variance / |metered| x
100, exact, rounded half-even to 0.01; a line is over tolerance when that rounded percentage
exceeds the tolerance in absolute value, or when metered is zero and invoiced is not.

The report CSV (`report_csv`) is UTF-8 without a BOM, CRLF line ends, one header row and one
row per reconciliation line, and no totals row, so every row is a line that can be filtered,
sorted and summed (the totals are on `Reconciliation`). Amounts are USD with exactly six
decimal places (`usd_text`), percentages have two, tokens are integers, `flagged` is
`true`/`false`, `invoice_rows` lists the source row numbers separated by spaces; a cell with
no value is empty. Text cells pass through `csvrows.neutralise`; the numeric cells are written
from exact numbers (`-?digits[.digits]`), which spreadsheets read as numbers, not formulas, and
are left as they are so that credits stay negative numbers.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

import attrs

from analytics_core.csvrows import neutralise
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.events import is_valid_unicode
from analytics_core.money import Cents

ISO = "iso"
MAX_ROWS = 100_000
MAX_ERRORS = 1_000
MAX_HEADER = 200
MAX_MODEL = 200
MAX_TOKENS = 10**15
MAX_COST_DIGITS = 24
MAX_COST_USD = Decimal(10**12)
REPORT_COLUMNS: tuple[str, ...] = (
    "day", "timezone", "model_id", "model", "status", "metered_cost_usd", "invoiced_cost_usd",
    "variance_usd", "variance_percent", "flagged", "metered_input_tokens",
    "invoiced_input_tokens", "metered_output_tokens", "invoiced_output_tokens", "invoice_rows",
)

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?")
_WHOLE = re.compile(r"\d+(?:\.0*)?")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_CURRENCY = frozenset("$€£¥")
# Two dates whose day, month and year all differ: a pattern that reads both back is a date's.
_PROBES = (date(2024, 12, 31), date(2031, 2, 3))
_FIELDS = ("day", "model", "cost", "input_tokens", "output_tokens")
_KEYS = {  # accepted key -> attribute: JSON bodies spell camelCase, the CLI snake_case
    "day": "day", "model": "model", "cost": "cost",
    "input_tokens": "input_tokens", "inputTokens": "input_tokens",
    "output_tokens": "output_tokens", "outputTokens": "output_tokens",
    "cost_unit": "cost_unit", "costUnit": "cost_unit",
    "day_format": "day_format", "dayFormat": "day_format",
}


class CostUnit(StrEnum):
    """The unit of the cost column."""

    USD = "usd"
    CENTS = "cents"


def header_key(name: str) -> str:
    """The form headers are compared in: trimmed and case-folded."""
    return name.strip().casefold()


def usd_text(amount: Cents) -> str:
    """An amount as an exact decimal string of USD with six places, e.g. '-1.234500'."""
    return f"{Decimal(amount.units).scaleb(-6):f}"


def _header_problem(value: str) -> str | None:
    text = value.strip()
    if not text:
        return "must be a non-empty column header"
    if len(text) > MAX_HEADER:
        return f"must be at most {MAX_HEADER} characters"
    if not is_valid_unicode(text) or any(unicodedata.category(c) == "Cc" for c in text):
        return "must not contain control characters"
    return None


def _day_format_problem(fmt: str) -> str | None:
    if fmt == ISO:
        return None
    try:
        ok = "%" in fmt and all(
            datetime.strptime(p.strftime(fmt), fmt).date() == p for p in _PROBES  # noqa: DTZ007 (a date)
        )
    except ValueError:
        ok = False
    return None if ok else "must be 'iso' or a strptime pattern of a whole date, e.g. %m/%d/%Y"


def _mapping_problems(headers: Mapping[str, str | None], day_format: str,
                      names: Mapping[str, str]) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: dict[str, str] = {}
    for attr, header in headers.items():
        if header is None:
            continue
        problem = _header_problem(header)
        if problem is None and header_key(header) in seen:
            problem = f"names the same column as `{names.get(seen[header_key(header)])}`"
        if problem is not None:
            errors.append(FieldError(names.get(attr, attr), problem))
        seen.setdefault(header_key(header), attr)
    problem = _day_format_problem(day_format)
    if problem is not None:
        errors.append(FieldError(names.get("day_format", "day_format"), problem))
    return errors


@attrs.frozen
class ColumnMapping:
    """Which header holds each field of a provider's cost report (None: no such column)."""

    day: str = "day"
    model: str = "model"
    cost: str = "cost"
    input_tokens: str | None = None
    output_tokens: str | None = None
    cost_unit: CostUnit = attrs.field(default=CostUnit.USD,
                                      validator=attrs.validators.instance_of(CostUnit))
    day_format: str = ISO

    def __attrs_post_init__(self) -> None:
        errors = _mapping_problems(self.columns, self.day_format, {})
        if errors:
            raise ValidationFailed(errors, "invalid column mapping")

    @property
    def columns(self) -> dict[str, str]:
        """Field -> header, for the columns this mapping reads."""
        pairs = (("day", self.day), ("model", self.model), ("cost", self.cost),
                 ("input_tokens", self.input_tokens), ("output_tokens", self.output_tokens))
        return {field: header for field, header in pairs if header is not None}

    @classmethod
    def from_fields(cls, fields: Mapping[str, object]) -> ColumnMapping:
        """A mapping from JSON or CLI input; ValidationFailed names every bad field.

        Keys (snake_case or camelCase): day, model, cost, input_tokens, output_tokens (header
        names; None or absent keeps the default, and "" also means no column for the token
        fields), cost_unit ("usd" or "cents", any case), day_format ("iso" or a strptime
        pattern).
        """
        errors: list[FieldError] = []
        values: dict[str, object] = {}
        names: dict[str, str] = {}
        for key, value in fields.items():
            attr = _KEYS.get(key) if isinstance(key, str) else None
            if attr is None:
                errors.append(FieldError(str(key), "is not a column mapping field; valid: "
                                         + ", ".join(sorted(_KEYS))))
            elif attr in names:
                errors.append(FieldError(key, f"repeats `{names[attr]}`"))
            else:
                names[attr], values[attr] = key, value
        headers = {attr: _header_field(values, attr, names, errors) for attr in _FIELDS}
        unit = values.get("cost_unit")
        if unit is None:
            unit = CostUnit.USD
        elif not isinstance(unit, str) or unit.strip().lower() not in set(CostUnit):
            errors.append(FieldError(names["cost_unit"], "must be one of: usd, cents"))
        day_format = values.get("day_format")
        if day_format is None:
            day_format = ISO
        elif not isinstance(day_format, str):
            errors.append(FieldError(names["day_format"], "must be a string"))
        if errors:
            raise ValidationFailed(errors, "invalid column mapping")
        assert isinstance(unit, str)
        assert isinstance(day_format, str)
        errors = _mapping_problems(headers, day_format, names)
        if errors:
            raise ValidationFailed(errors, "invalid column mapping")
        return cls(headers["day"] or "day", headers["model"] or "model",
                   headers["cost"] or "cost", headers["input_tokens"],
                   headers["output_tokens"], CostUnit(unit.strip().lower()), day_format)


def _header_field(values: Mapping[str, object], attr: str, names: Mapping[str, str],
                  errors: list[FieldError]) -> str | None:
    default = attr if attr in ("day", "model", "cost") else None
    value = values.get(attr)
    if value is None or (default is None and value == ""):
        return default
    if not isinstance(value, str):
        errors.append(FieldError(names[attr], "must be a string (a column header)"))
        return default
    return value.strip()


@attrs.frozen
class InvoiceLine:
    """One data row of a provider's cost report."""

    row: int = attrs.field(validator=attrs.validators.ge(1))  # see the module docstring
    day: date
    model: str  # as written, without surrounding spaces
    cost: Cents
    input_tokens: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(0)))
    output_tokens: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(0)))


def _parse_day(text: str, day_format: str) -> date:
    if day_format != ISO:
        try:
            return datetime.strptime(text, day_format).date()  # noqa: DTZ007 (a date)
        except ValueError:
            raise ValueError(f"must be a date in the format {day_format}") from None
    try:
        if len(text) == 10 and _ISO_DAY.fullmatch(text):
            return date.fromisoformat(text)
        if _ISO_DAY.match(text) and text[10:11] in ("T", " "):
            return datetime.fromisoformat(text).date()
    except ValueError:
        pass
    raise ValueError("must be a date YYYY-MM-DD, or an ISO 8601 timestamp (its date is used)")


def _parse_cost(text: str, unit: CostUnit) -> Cents:
    if not text:
        raise ValueError("is required")
    if not _DECIMAL.fullmatch(text):
        if "," in text:
            raise ValueError("must be a plain decimal number: remove thousands separators "
                             "and write decimals with '.', e.g. 1234.50")
        if any(c in _CURRENCY for c in text):
            raise ValueError("must be a plain decimal number without a currency sign")
        raise ValueError("must be a decimal number, e.g. 12.50")
    amount = Decimal(text)
    if len(amount.as_tuple().digits) > MAX_COST_DIGITS:
        raise ValueError(f"must have at most {MAX_COST_DIGITS} significant digits")
    usd = amount if unit is CostUnit.USD else amount.scaleb(-2)
    if abs(usd) > MAX_COST_USD:
        raise ValueError("is too large (more than USD 1,000,000,000,000)")
    return Cents.parse(amount.scaleb(2) if unit is CostUnit.USD else amount)


def _parse_tokens(text: str) -> int | None:
    if not text:
        return None
    if not _WHOLE.fullmatch(text):
        if "," in text:
            raise ValueError("must be a whole number without thousands separators")
        raise ValueError("must be a whole number >= 0")
    value = int(Decimal(text))
    if value > MAX_TOKENS:
        raise ValueError(f"must be at most {MAX_TOKENS}")
    return value


def _parse_model(text: str) -> str:
    if not text:
        raise ValueError("is required")
    if len(text) > MAX_MODEL:
        raise ValueError(f"must be at most {MAX_MODEL} characters")
    if not is_valid_unicode(text) or any(unicodedata.category(c) == "Cc" for c in text):
        raise ValueError("must not contain control characters")
    return text


@attrs.define
class _Reading:
    """The state of one pass over a file: problems found, and how many were left out."""

    max_errors: int
    errors: list[FieldError] = attrs.Factory(list)
    left_out: int = 0

    def add(self, field: str, reason: str) -> None:
        if len(self.errors) < self.max_errors:
            self.errors.append(FieldError(field, reason))
        else:
            self.left_out += 1

    def fail(self) -> ValidationFailed:
        errors = list(self.errors)
        if self.left_out:
            errors.append(FieldError("file", f"{self.left_out} more problem(s) not listed"))
        return ValidationFailed(errors, "invalid invoice")


def _records(data: bytes) -> Iterator[tuple[int, list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ValidationFailed([FieldError("file", f"is not UTF-8 text (byte {e.start}, line "
                                           f"{line})")], "invalid invoice") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    row = 0
    try:
        for row, cells in enumerate(reader, start=1):
            if any(c.strip() for c in cells):
                yield row, cells
    except csv.Error as e:
        raise _Malformed(f"row {row + 1}", f"is not valid CSV: {e}") from None


class _Malformed(Exception):
    """The CSV cannot be read past this row."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def _positions(header: list[str], mapping: ColumnMapping) -> dict[str, int]:
    found: dict[str, int] = {}
    twice: set[str] = set()
    for i, name in enumerate(header):
        key = header_key(name)
        if key in found:
            twice.add(key)
        found.setdefault(key, i)
    columns = mapping.columns
    missing = [h for h in columns.values() if header_key(h) not in found]
    doubled = [h for h in columns.values() if header_key(h) in twice]
    errors = []
    if missing:
        shown = ", ".join(repr(h.strip()) for h in header[:50]) + (", ..." if len(header) > 50
                                                                     else "")
        errors.append(FieldError("header", f"is missing column(s) {', '.join(map(repr, missing))}"
                                 f"; the header row has: {shown}"))
    if doubled:
        errors.append(FieldError("header", "has column(s) more than once: "
                                 + ", ".join(map(repr, doubled))))
    if errors:
        raise ValidationFailed(errors, "invalid invoice")
    return {field: found[header_key(h)] for field, h in columns.items()}


def _line(row: int, cells: list[str], header: list[str], at: Mapping[str, int],
          *, mapping: ColumnMapping, reading: _Reading) -> InvoiceLine | None:
    if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
        reading.add(f"row {row}", f"has {len(cells)} cells but the header has {len(header)} "
                    "(is a number with a ',' not quoted?)")
        return None
    values: dict[str, object] = {}
    parsers: dict[str, Callable[[str], object]] = {
        "day": lambda t: _parse_day(t, mapping.day_format), "model": _parse_model,
        "cost": lambda t: _parse_cost(t, mapping.cost_unit),
        "input_tokens": _parse_tokens, "output_tokens": _parse_tokens,
    }
    for field, i in at.items():
        text = cells[i].strip() if i < len(cells) else ""
        try:
            values[field] = parsers[field](text)
        except ValueError as e:
            reading.add(f"row {row}: {header[i].strip()}", str(e))
    if len(values) < len(at):
        return None
    day, model, cost = values["day"], values["model"], values["cost"]
    assert isinstance(day, date)
    assert isinstance(model, str)
    assert isinstance(cost, Cents)
    tokens_in, tokens_out = values.get("input_tokens"), values.get("output_tokens")
    assert tokens_in is None or isinstance(tokens_in, int)
    assert tokens_out is None or isinstance(tokens_out, int)
    return InvoiceLine(row, day, model, cost, tokens_in, tokens_out)


def parse_invoice(data: bytes, mapping: ColumnMapping, *, max_rows: int = MAX_ROWS,
                  max_errors: int = MAX_ERRORS) -> list[InvoiceLine]:
    """Every data row of a cost report, in file order; ValidationFailed lists every problem
    (see the module docstring for formats, row numbers and limits)."""
    records = _records(data)
    try:
        first = next(records, None)
    except _Malformed as e:
        raise ValidationFailed([FieldError(e.field, e.reason)], "invalid invoice") from None
    if first is None:
        raise ValidationFailed([FieldError("file", "is empty (expected a header row and data "
                                           "rows)")], "invalid invoice")
    header = first[1]
    at = _positions(header, mapping)
    reading = _Reading(max_errors)
    lines: list[InvoiceLine] = []
    count = 0
    try:
        for row, cells in records:
            count += 1
            if count > max_rows:
                raise ValidationFailed([FieldError("file", f"has more than {max_rows} data "
                                                   "rows; split it into smaller files")],
                                       "invalid invoice")
            line = _line(row, cells, header, at, mapping=mapping, reading=reading)
            if line is not None:
                lines.append(line)
    except _Malformed as e:  # reading stops there: what follows cannot be split into rows
        count += 1
        reading.add(e.field, e.reason)
    if not count:
        raise ValidationFailed([FieldError("file", "has a header row but no data rows")],
                               "invalid invoice")
    if reading.errors:
        raise reading.fail()
    return lines


@attrs.frozen
class Metered:
    """What was metered for one model on one day of the reconciliation zone."""

    cost: Cents
    input_tokens: int = attrs.field(validator=attrs.validators.ge(0))
    output_tokens: int = attrs.field(validator=attrs.validators.ge(0))
    invocations: int = attrs.field(validator=attrs.validators.ge(0))


class LineStatus(StrEnum):
    """How a reconciliation line came out."""

    MATCHED = "matched"
    OVER_TOLERANCE = "over_tolerance"
    INVOICED_ONLY = "invoiced_only"  # unresolved model name, or no metered usage that day
    METERED_ONLY = "metered_only"  # metered usage with no invoice row


@attrs.frozen
class ReconciliationLine:
    """One day and model: both sides, the variance and whether it needs a look."""

    day: date
    model_id: uuid.UUID | None  # None: the invoice's model text resolved to no model
    model: str  # the model's label, or the invoice text when unresolved
    status: LineStatus
    metered: Cents | None
    invoiced: Cents | None
    variance: Cents  # invoiced - metered, a missing side counting as 0
    variance_percent: Decimal | None  # None when metered is missing or zero
    flagged: bool
    metered_input_tokens: int | None = None
    metered_output_tokens: int | None = None
    metered_invocations: int | None = None
    invoiced_input_tokens: int | None = None
    invoiced_output_tokens: int | None = None
    rows: tuple[int, ...] = ()  # the invoice rows summed into this line


def percent(variance: Cents, metered: Cents) -> Decimal | None:
    """variance / |metered| x 100, exactly rounded half-even to 0.01; None for zero metered."""
    if metered.units == 0:
        return None
    den = abs(metered.units)
    q, r = divmod(variance.units * 10_000, den)
    if 2 * r > den or (2 * r == den and q % 2):
        q += 1
    return Decimal(q).scaleb(-2)


@attrs.frozen
class Reconciliation:
    """A reconciled report: lines by day then model label, and the totals."""

    lines: tuple[ReconciliationLine, ...]
    metered_total: Cents
    invoiced_total: Cents
    tolerance_percent: Decimal

    @property
    def variance(self) -> Cents:
        """Invoiced total - metered total (the sum of the lines' variances)."""
        return self.invoiced_total - self.metered_total

    @property
    def variance_percent(self) -> Decimal | None:
        """The total variance as a percentage of the metered total."""
        return percent(self.variance, self.metered_total)

    @property
    def flagged(self) -> tuple[ReconciliationLine, ...]:
        """The lines that need a look."""
        return tuple(line for line in self.lines if line.flagged)


@attrs.define
class _Billed:
    text: str
    cost: Cents = attrs.Factory(Cents.zero)
    input_tokens: int | None = None
    output_tokens: int | None = None
    rows: list[int] = attrs.Factory(list)

    def add(self, line: InvoiceLine) -> None:
        self.cost += line.cost
        self.input_tokens = _plus(self.input_tokens, line.input_tokens)
        self.output_tokens = _plus(self.output_tokens, line.output_tokens)
        self.rows.append(line.row)


def _plus(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else a + b


def _status(metered: Cents | None, invoiced: Cents | None, pct: Decimal | None,
            tolerance: Decimal) -> tuple[LineStatus, bool]:
    if metered is None:
        return LineStatus.INVOICED_ONLY, invoiced is not None and invoiced.units != 0
    if invoiced is None:
        return LineStatus.METERED_ONLY, metered.units != 0
    over = abs(pct) > tolerance if pct is not None else invoiced.units != 0
    return (LineStatus.OVER_TOLERANCE, True) if over else (LineStatus.MATCHED, False)


def _reconciled(day: date, model_id: uuid.UUID | None, model: str, used: Metered | None,
                billed: _Billed | None, *, tolerance: Decimal) -> ReconciliationLine:
    metered = used.cost if used is not None else None
    invoiced = billed.cost if billed is not None else None
    variance = (invoiced or Cents.zero()) - (metered or Cents.zero())
    pct = percent(variance, metered) if metered is not None else None
    status, flagged = _status(metered, invoiced, pct, tolerance)
    return ReconciliationLine(
        day=day, model_id=model_id, model=model, status=status, metered=metered,
        invoiced=invoiced, variance=variance, variance_percent=pct, flagged=flagged,
        metered_input_tokens=used.input_tokens if used else None,
        metered_output_tokens=used.output_tokens if used else None,
        metered_invocations=used.invocations if used else None,
        invoiced_input_tokens=billed.input_tokens if billed else None,
        invoiced_output_tokens=billed.output_tokens if billed else None,
        rows=tuple(sorted(billed.rows)) if billed else (),
    )


def reconcile(lines: Sequence[InvoiceLine], metered: Mapping[tuple[date, uuid.UUID], Metered],
              *, resolve: Callable[[str], uuid.UUID | None], label: Callable[[uuid.UUID], str],
              tolerance_percent: Decimal) -> Reconciliation:
    """Match invoice rows to metered usage by (day, model); see the module docstring.

    `resolve` maps an invoice's model text to a model id (None: unknown) and `label` a model
    id to its display name; each is called once per distinct argument. ValidationFailed
    (`tolerancePercent`) unless the tolerance is a finite Decimal >= 0.
    """
    if not (isinstance(tolerance_percent, Decimal) and tolerance_percent.is_finite()
            and tolerance_percent >= 0):
        raise ValidationFailed([FieldError("tolerancePercent", "must be a decimal number >= 0")],
                               "invalid reconciliation")
    resolved: dict[str, uuid.UUID | None] = {}
    billed: dict[tuple[date, uuid.UUID], _Billed] = {}
    unknown: dict[tuple[date, str], _Billed] = {}
    for line in lines:
        if line.model not in resolved:
            resolved[line.model] = resolve(line.model)
        model_id = resolved[line.model]
        if model_id is None:
            unknown.setdefault((line.day, line.model), _Billed(line.model)).add(line)
        else:
            billed.setdefault((line.day, model_id), _Billed(line.model)).add(line)
    used = {k: m for k, m in metered.items() if m.cost.units != 0 or m.invocations != 0}
    labels: dict[uuid.UUID, str] = {}
    out = []
    for day, model_id in billed.keys() | used.keys():
        if model_id not in labels:
            labels[model_id] = label(model_id)
        out.append(_reconciled(day, model_id, labels[model_id], used.get((day, model_id)),
                               billed.get((day, model_id)), tolerance=tolerance_percent))
    out += [_reconciled(day, None, text, None, b, tolerance=tolerance_percent)
            for (day, text), b in unknown.items()]
    out.sort(key=lambda r: (r.day, r.model, str(r.model_id or ""), r.rows))
    return Reconciliation(
        lines=tuple(out),
        metered_total=sum((m.cost for m in used.values()), Cents.zero()),
        invoiced_total=sum((line.cost for line in lines), Cents.zero()),
        tolerance_percent=tolerance_percent,
    )


def _number(value: int | None) -> str:
    return "" if value is None else str(value)


def _amount(value: Cents | None) -> str:
    return "" if value is None else usd_text(value)


def report_row(line: ReconciliationLine, timezone: str) -> list[str]:
    """One line as `REPORT_COLUMNS` cells (text cells neutralised)."""
    text = [line.day.isoformat(), timezone, str(line.model_id or ""), line.model,
            line.status.value]
    pct = "" if line.variance_percent is None else f"{line.variance_percent:.2f}"
    return [
        *map(neutralise, text), _amount(line.metered), _amount(line.invoiced),
        usd_text(line.variance), pct, "true" if line.flagged else "false",
        _number(line.metered_input_tokens), _number(line.invoiced_input_tokens),
        _number(line.metered_output_tokens), _number(line.invoiced_output_tokens),
        " ".join(map(str, line.rows)),
    ]


def report_csv(report: Reconciliation, *, timezone: str) -> bytes:
    """The report as RFC 4180 UTF-8 CSV: a header row, then one row per line, no totals row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(REPORT_COLUMNS)
    writer.writerows(report_row(line, timezone) for line in report.lines)
    return buffer.getvalue().encode("utf-8")
