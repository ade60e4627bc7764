"""Invoice reconciliation (SPEC §15): reading cost reports, matching them, the report CSV."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.money import Cents
from analytics_core.reconciliation import (
    REPORT_COLUMNS,
    ColumnMapping,
    CostUnit,
    InvoiceLine,
    LineStatus,
    Metered,
    Reconciliation,
    parse_invoice,
    percent,
    reconcile,
    report_csv,
    usd_text,
)

D0 = date(2025, 6, 1)
DAYS = [D0 + timedelta(days=i) for i in range(5)]
GPT, CLAUDE, LLAMA = uuid.UUID(int=101), uuid.UUID(int=102), uuid.UUID(int=103)
NAMES = {GPT: "gpt-4o", CLAUDE: "claude-3-5-sonnet", LLAMA: "llama-3-70b"}
ALIASES = {"gpt-4o-2024-08-06": GPT, "anthropic.claude-3-5-sonnet": CLAUDE}
ONE_PERCENT = Decimal(1)


def resolve(text: str) -> uuid.UUID | None:
    """The registry's lookup: display names and aliases, case-insensitively."""
    known = {**{n: i for i, n in NAMES.items()}, **ALIASES}
    return {k.casefold(): v for k, v in known.items()}.get(text.strip().casefold())


def label(model_id: uuid.UUID) -> str:
    """The registry's display name."""
    return NAMES[model_id]


def csv_bytes(rows: Sequence[Sequence[object]]) -> bytes:
    """Rows written as RFC 4180 CSV."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def fields(error: ValidationFailed) -> list[str]:
    """The field names of a validation error, in order."""
    return [e.field for e in error.errors]


def metered_usage() -> dict[tuple[date, uuid.UUID], Metered]:
    """Five days of three models with distinct costs and tokens."""
    return {
        (day, model): Metered(Cents(1_000_000 * (d + 1) + 37_123 * m), 1000 * (d + m + 1),
                              400 * (d + 1), 10 + d + m)
        for d, day in enumerate(DAYS) for m, model in enumerate(NAMES)
    }


def invoice_from(metered: dict[tuple[date, uuid.UUID], Metered]) -> list[list[object]]:
    """An invoice equal to the metered usage: one row per day and model, costs in USD."""
    return [[day.isoformat(), NAMES[model], usd_text(m.cost), m.input_tokens, m.output_tokens]
            for (day, model), m in sorted(metered.items())]


HEADER = ["day", "model", "cost", "input_tokens", "output_tokens"]
WITH_TOKENS = ColumnMapping(input_tokens="input_tokens", output_tokens="output_tokens")


def run(lines: Sequence[InvoiceLine], metered: dict[tuple[date, uuid.UUID], Metered],
        tolerance: Decimal = ONE_PERCENT) -> Reconciliation:
    """Reconcile with the test registry."""
    return reconcile(lines, metered, resolve=resolve, label=label, tolerance_percent=tolerance)


# --- the scenario ---------------------------------------------------------------------


def test_injected_differences_are_exactly_the_flagged_lines() -> None:
    """A missing day, a renamed model and a 3 % overcharge are flagged, and nothing else is."""
    metered = metered_usage()
    rows = invoice_from(metered)
    missing = (DAYS[2], LLAMA)
    renamed = (DAYS[1], CLAUDE)
    overcharged = (DAYS[3], GPT)
    injected: list[list[object]] = []
    for day, model, *rest in rows:
        key = (date.fromisoformat(str(day)), resolve(str(model)))
        if key == missing:
            continue
        if key == overcharged:
            rest[0] = usd_text(Cents(metered[overcharged].cost.units * 103 // 100))
        injected.append([day, "claude-sonnet-legacy-sku" if key == renamed else model, *rest])
    lines = parse_invoice(csv_bytes([HEADER, *injected]), WITH_TOKENS)

    report = run(lines, metered)

    flagged = {(x.day, x.model, x.status) for x in report.lines if x.flagged}
    assert flagged == {
        (DAYS[2], "llama-3-70b", LineStatus.METERED_ONLY),
        (DAYS[1], "claude-sonnet-legacy-sku", LineStatus.INVOICED_ONLY),
        (DAYS[1], "claude-3-5-sonnet", LineStatus.METERED_ONLY),
        (DAYS[3], "gpt-4o", LineStatus.OVER_TOLERANCE),
    }
    over = next(x for x in report.lines if x.status is LineStatus.OVER_TOLERANCE)
    assert over.variance_percent == Decimal("3.00")
    assert over.variance == Cents(metered[overcharged].cost.units * 3 // 100)
    unresolved = next(x for x in report.lines if x.status is LineStatus.INVOICED_ONLY)
    assert unresolved.model_id is None
    assert unresolved.invoiced == metered[renamed].cost
    others = [x for x in report.lines if not x.flagged]
    assert len(others) == len(metered) - 3
    assert all(x.status is LineStatus.MATCHED and x.variance == Cents.zero() for x in others)


# --- reading a cost report ----------------------------------------------------------------------


def test_every_bad_row_is_reported_with_its_row_and_column() -> None:
    """One error lists every bad cell of every row, named by row number and file header."""
    data = csv_bytes([
        ["Day", "Model", "Cost", "In"],
        ["2025-06-01", "gpt-4o", "1.50", "10"],
        ["2025-13-01", "gpt-4o", "1.50", "10"],
        ["2025-06-01", "", "abc", "-5"],
        ["2025-06-02", "gpt-4o", "2", "12.5"],
        ["2025-06-03", "gpt-4o", "2", "1", "surplus"],
    ])
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice(data, ColumnMapping(day="day", input_tokens="in"))
    assert fields(caught.value) == [
        "row 3: Day", "row 4: Model", "row 4: Cost", "row 4: In", "row 5: In", "row 6",
    ]
    assert "row 3: Day" in str(caught.value)


def test_missing_header_columns_name_the_missing_and_the_found() -> None:
    """A header without the mapped columns is one error naming both sides."""
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice(b"Date,Amount,model\n2025-06-01,1,m\n",
                      ColumnMapping(input_tokens="tokens"))
    assert fields(caught.value) == ["header"]
    reason = caught.value.errors[0].reason
    assert "'day'" in reason
    assert "'cost'" in reason
    assert "'tokens'" in reason
    assert "'Date', 'Amount', 'model'" in reason
    assert "'model'" not in reason.split(";")[0]


def test_a_mapped_column_present_twice_is_refused() -> None:
    """Two columns answering to one mapped header are ambiguous."""
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice(b"day,model,cost,COST \n2025-06-01,m,1,2\n", ColumnMapping())
    assert caught.value.errors == (FieldError("header", "has column(s) more than once: 'cost'"),)


def test_a_provider_export_is_read_through_its_column_mapping() -> None:
    """Differently named, cased and padded headers, timestamps and cents map onto the fields."""
    data = csv_bytes([
        [" UsageStartDate ", "ModelId", "Region", "Cost (cents)", "InputTokenCount",
         "OutputTokenCount"],
        ["2025-06-01T00:00:00Z", "anthropic.claude-3-5-sonnet", "us-east-1", "1234.5", "1200",
         ""],
        ["2025-06-01T00:00:00Z", "anthropic.claude-3-5-sonnet", "us-west-2", "0.00015", "",
         "800.0"],
    ])
    mapping = ColumnMapping.from_fields({
        "day": "usagestartdate", "model": "modelid", "cost": "COST (CENTS)",
        "inputTokens": "InputTokenCount", "outputTokens": "outputtokencount",
        "costUnit": "cents",
    })
    assert parse_invoice(data, mapping) == [
        InvoiceLine(2, D0, "anthropic.claude-3-5-sonnet", Cents(12_345_000), 1200, None),
        InvoiceLine(3, D0, "anthropic.claude-3-5-sonnet", Cents(2), None, 800),
    ]


def test_usd_costs_are_multiplied_by_100_exactly_and_rounded_half_even() -> None:
    """USD amounts become exact cents; digits past 0.000001 USD round half to even."""
    data = b"day,model,cost\n" + b"".join(
        b"2025-06-01,m,%s\n" % v for v in (b"12.34", b"0.0000025", b"0.0000035", b"1E-2", b".5"))
    costs = [x.cost for x in parse_invoice(data, ColumnMapping())]
    assert costs == [Cents(12_340_000), Cents(2), Cents(4), Cents(10_000), Cents(500_000)]


def test_a_bom_before_the_header_is_ignored() -> None:
    """A UTF-8 BOM, as spreadsheets write it, does not become part of the first header."""
    plain = b"day,model,cost\n2025-06-01,gpt-4o,1\n"
    assert parse_invoice(b"\xef\xbb\xbf" + plain, ColumnMapping()) == parse_invoice(
        plain, ColumnMapping())
    assert parse_invoice(b"\xef\xbb\xbf" + plain, ColumnMapping())[0].model == "gpt-4o"


def test_negative_costs_are_read_as_credits() -> None:
    """A negative cost is a credit and is kept negative."""
    lines = parse_invoice(b"day,model,cost\n2025-06-01,gpt-4o,-2.50\n", ColumnMapping())
    assert lines[0].cost == Cents(-2_500_000)


@pytest.mark.parametrize(("cell", "says"), [
    ("1,234.50", "thousands separators"), ("12,5", "thousands separators"),
    ("$12.50", "currency sign"), ("NaN", "decimal number"), ("Infinity", "decimal number"),
    ("", "is required"), ("1" * 25, "significant digits"), ("2E12", "too large"),
])
def test_costs_that_are_not_plain_decimals_are_refused(cell: str, says: str) -> None:
    """Separators, currency signs, non-numbers, blanks and absurd sizes are refused."""
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice(csv_bytes([["day", "model", "cost"], ["2025-06-01", "m", cell]]),
                      ColumnMapping())
    assert fields(caught.value) == ["row 2: cost"]
    assert says in caught.value.errors[0].reason


def test_token_cells_read_whole_numbers_and_blanks_as_none() -> None:
    """Token counts are integers >= 0 (a zero fraction allowed); a blank cell is None."""
    data = csv_bytes([HEADER, ["2025-06-01", "m", "1", "1200.0", ""], ["2025-06-01", "m", "1",
                                                                       " 0 ", "7"]])
    lines = parse_invoice(data, WITH_TOKENS)
    assert [(x.input_tokens, x.output_tokens) for x in lines] == [(1200, None), (0, 7)]


def test_rows_are_numbered_as_records_counting_the_header_and_blank_rows() -> None:
    """Row numbers are CSV records from 1 at the header; blank rows are skipped but counted."""
    data = (b'day,model,cost,note\r\n\r\n2025-06-01,m,1,"multi\nline"\r\n,,\r\n'
            b"2025-06-02,m,x,\r\n")
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice(data, ColumnMapping())
    assert fields(caught.value) == ["row 5: cost"]
    good = parse_invoice(data.replace(b",x", b",2"), ColumnMapping())
    assert [x.row for x in good] == [3, 5]


@pytest.mark.parametrize(("data", "says"), [
    (b"", "is empty"), (b"\r\n \r\n", "is empty"), (b"day,model,cost\r\n", "no data rows"),
    (b"day,model,cost\n\xff,m,1\n", "is not UTF-8 text (byte 15, line 2)"),
])
def test_files_without_rows_or_text_are_one_file_error(data: bytes, says: str) -> None:
    """Empty files, header-only files and non-UTF-8 bytes each give one clear file error."""
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice(data, ColumnMapping())
    assert fields(caught.value) == ["file"]
    assert says in caught.value.errors[0].reason


def test_more_rows_than_the_limit_is_refused() -> None:
    """A file with more data rows than max_rows is refused without listing rows."""
    data = b"day,model,cost\n" + b"2025-06-01,m,1\n" * 4
    assert len(parse_invoice(data, ColumnMapping(), max_rows=4)) == 4
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice(data, ColumnMapping(), max_rows=3)
    assert caught.value.errors == (FieldError("file", "has more than 3 data rows; split it into "
                                              "smaller files"),)


def test_errors_past_max_errors_are_counted_not_listed() -> None:
    """Past max_errors the error ends with a count of the problems left out."""
    data = b"day,model,cost\n" + b"bad,m,1\n" * 5
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice(data, ColumnMapping(), max_errors=2)
    assert fields(caught.value) == ["row 2: day", "row 3: day", "file"]
    assert caught.value.errors[-1].reason == "3 more problem(s) not listed"


def test_malformed_csv_stops_reading_and_keeps_earlier_errors() -> None:
    """A stray quote is reported at its row, after the problems of the rows before it."""
    data = b'day,model,cost\n2025-06-01,m,x\n"a"b,m,1\n2025-06-01,m,y\n'
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice(data, ColumnMapping())
    assert fields(caught.value) == ["row 2: cost", "row 3"]
    assert "is not valid CSV" in caught.value.errors[1].reason


@pytest.mark.parametrize(("cell", "day"), [
    ("2025-06-01", D0), ("2025-06-01T23:30:00-05:00", D0), ("2025-06-01 00:00:00Z", D0),
    ("2025-06-01T12:00:00.123456+02:00", D0),
])
def test_iso_days_and_timestamps_give_the_date_as_written(cell: str, day: date) -> None:
    """The day column takes a date or an ISO timestamp, whose date part is used unconverted."""
    lines = parse_invoice(csv_bytes([["day", "model", "cost"], [cell, "m", "1"]]),
                          ColumnMapping())
    assert lines[0].day == day


@pytest.mark.parametrize("cell", ["20250601", "2025-W22-7", "06/01/2025", "2025-06-01x",
                                  "2025-02-30", "2025-06-01T25:00"])
def test_other_day_texts_are_refused_by_the_iso_format(cell: str) -> None:
    """Basic, week and US dates, junk after the date and impossible dates are refused."""
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice(csv_bytes([["day", "model", "cost"], [cell, "m", "1"]]), ColumnMapping())
    assert fields(caught.value) == ["row 2: day"]


def test_a_strptime_day_format_reads_us_dates() -> None:
    """A day_format pattern reads the whole cell."""
    mapping = ColumnMapping.from_fields({"dayFormat": "%m/%d/%Y"})
    assert parse_invoice(b"day,model,cost\n06/30/2025,m,1\n", mapping)[0].day == date(2025, 6, 30)
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice(b"day,model,cost\n06/30/2025,m,1\n2025-06-30,m,1\n", mapping)
    assert fields(caught.value) == ["row 3: day"]


def test_model_cells_are_trimmed_and_must_be_text() -> None:
    """Model text loses surrounding spaces; blank, overlong and control texts are refused."""
    data = csv_bytes([["day", "model", "cost"], ["2025-06-01", "  gpt-4o ", "1"],
                      ["2025-06-01", " ", "1"], ["2025-06-01", "x" * 201, "1"],
                      ["2025-06-01", "a\x07b", "1"]])
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice(data, ColumnMapping())
    assert fields(caught.value) == ["row 3: model", "row 4: model", "row 5: model"]
    trimmed = parse_invoice(b"day,model,cost\n2025-06-01,  gpt-4o ,1\n", ColumnMapping())
    assert trimmed[0].model == "gpt-4o"


# --- the column mapping -------------------------------------------------------------------------


def test_mapping_from_fields_accepts_both_spellings_and_any_unit_case() -> None:
    """snake_case and camelCase keys, padded headers and 'CENTS' are read; None keeps defaults."""
    got = ColumnMapping.from_fields({"day": " Date ", "input_tokens": "In", "outputTokens": "",
                                     "cost_unit": "CENTS", "model": None})
    assert got == ColumnMapping(day="Date", input_tokens="In", cost_unit=CostUnit.CENTS)


def test_mapping_from_fields_names_every_bad_field() -> None:
    """Unknown keys, repeated keys, non-strings, units and day formats are each named."""
    with pytest.raises(ValidationFailed) as caught:
        ColumnMapping.from_fields({"sku": "x", "day": 3, "costUnit": "eur", "dayFormat": 1,
                                   "input_tokens": "a", "inputTokens": "b"})
    assert sorted(fields(caught.value)) == ["costUnit", "day", "dayFormat", "inputTokens", "sku"]


@pytest.mark.parametrize(("given", "field"), [
    ({"model": "DAY"}, "model"), ({"outputTokens": " cost"}, "outputTokens"),
    ({"dayFormat": "%Y-%m"}, "dayFormat"), ({"dayFormat": "yyyy-mm-dd"}, "dayFormat"),
    ({"cost": " "}, "cost"), ({"day": "a\nb"}, "day"),
])
def test_mapping_semantics_are_checked(given: dict[str, object], field: str) -> None:
    """Two fields on one column, partial date patterns and blank headers are refused."""
    with pytest.raises(ValidationFailed) as caught:
        ColumnMapping.from_fields(given)
    assert fields(caught.value) == [field]


def test_a_mapping_is_validated_on_construction() -> None:
    """Constructing a mapping directly checks it as from_fields does."""
    with pytest.raises(ValidationFailed):
        ColumnMapping(day="cost")


# --- reconciling --------------------------------------------------------------------------------


def line(row: int, day: date, model: str, usd: str, tokens_in: int | None = None,
         tokens_out: int | None = None) -> InvoiceLine:
    """An invoice line with a USD cost."""
    return InvoiceLine(row, day, model, Cents.parse(Decimal(usd) * 100), tokens_in, tokens_out)


def test_split_invoice_rows_of_a_day_and_model_are_summed() -> None:
    """Rows of one day and model (SKUs, token kinds, aliases) are one line keeping its rows."""
    lines = [line(2, D0, "gpt-4o", "1.25", 1000, None), line(7, D0, "GPT-4O-2024-08-06", "0.75",
                                                             None, 300),
             line(4, D0, "gpt-4o", "-0.50")]
    metered = {(D0, GPT): Metered(Cents(1_500_000), 1000, 300, 9)}
    report = run(lines, metered)
    assert len(report.lines) == 1
    got = report.lines[0]
    assert (got.status, got.invoiced, got.rows) == (LineStatus.MATCHED, Cents(1_500_000),
                                                    (2, 4, 7))
    assert (got.invoiced_input_tokens, got.invoiced_output_tokens) == (1000, 300)
    assert (got.metered_input_tokens, got.metered_output_tokens) == (1000, 300)


def test_unresolved_texts_are_summed_per_day_and_text() -> None:
    """Unknown model texts group by day and exact text and keep the text as the model."""
    lines = [line(2, D0, "mystery", "1"), line(3, D0, "mystery", "2"),
             line(4, DAYS[1], "mystery", "4")]
    report = run(lines, {})
    assert [(x.day, x.model, x.model_id, x.invoiced, x.rows) for x in report.lines] == [
        (D0, "mystery", None, Cents(3_000_000), (2, 3)),
        (DAYS[1], "mystery", None, Cents(4_000_000), (4,)),
    ]


def test_lines_are_sorted_by_day_then_model_label() -> None:
    """Lines come by day, then by the model's label."""
    metered = {(day, m): Metered(Cents(100), 1, 1, 1) for day in DAYS[:2] for m in NAMES}
    report = run([line(2, D0, "zzz-unknown", "1")], metered)
    assert [(x.day, x.model) for x in report.lines] == [
        (D0, "claude-3-5-sonnet"), (D0, "gpt-4o"), (D0, "llama-3-70b"), (D0, "zzz-unknown"),
        (DAYS[1], "claude-3-5-sonnet"), (DAYS[1], "gpt-4o"), (DAYS[1], "llama-3-70b"),
    ]


def test_empty_metered_entries_are_ignored_and_free_usage_is_not_flagged() -> None:
    """Zero cost and zero invocations is no line; zero cost with invocations is unflagged."""
    metered = {(D0, GPT): Metered(Cents(0), 0, 0, 0), (D0, CLAUDE): Metered(Cents(0), 5, 5, 2)}
    report = run([], metered)
    assert [(x.model, x.status, x.flagged) for x in report.lines] == [
        ("claude-3-5-sonnet", LineStatus.METERED_ONLY, False)]


def test_zero_invoiced_lines_without_metering_are_not_flagged() -> None:
    """An invoice line netting to zero with nothing metered is invoiced_only but unflagged."""
    report = run([line(2, D0, "gpt-4o", "1"), line(3, D0, "gpt-4o", "-1")], {})
    assert [(x.status, x.flagged, x.variance) for x in report.lines] == [
        (LineStatus.INVOICED_ONLY, False, Cents.zero())]


def test_an_invoice_against_zero_metered_cost_is_over_tolerance() -> None:
    """Invoiced money for usage metered at zero cost is over tolerance with no percentage."""
    report = run([line(2, D0, "gpt-4o", "0.01")], {(D0, GPT): Metered(Cents(0), 1, 1, 1)})
    got = report.lines[0]
    assert (got.status, got.flagged, got.variance_percent) == (LineStatus.OVER_TOLERANCE, True,
                                                               None)


@pytest.mark.parametrize(("usd", "status", "pct"), [
    ("101.00", LineStatus.MATCHED, "1.00"), ("101.004", LineStatus.MATCHED, "1.00"),
    ("101.01", LineStatus.OVER_TOLERANCE, "1.01"), ("98.99", LineStatus.OVER_TOLERANCE, "-1.01"),
    ("99.00", LineStatus.MATCHED, "-1.00"),
])
def test_tolerance_compares_the_rounded_percentage(usd: str, status: LineStatus,
                                                   pct: str) -> None:
    """|variance %| rounded to 0.01 must exceed the tolerance, in either direction."""
    report = run([line(2, D0, "gpt-4o", usd)], {(D0, GPT): Metered(Cents(100_000_000), 1, 1, 1)})
    got = report.lines[0]
    assert (got.status, got.variance_percent) == (status, Decimal(pct))
    assert got.flagged is (status is LineStatus.OVER_TOLERANCE)


@pytest.mark.parametrize(("variance", "metered", "expected"), [
    (1, 20_000, "0.00"), (3, 20_000, "0.02"), (-1, 20_000, "0.00"), (-3, 20_000, "-0.02"),
    (1, 3, "33.33"), (2, 3, "66.67"), (5, -10, "50.00"),
])
def test_percent_is_exact_and_rounds_half_even(variance: int, metered: int,
                                               expected: str) -> None:
    """variance / |metered| x 100 is rounded half to even at 0.01 from exact integers."""
    assert str(percent(Cents(variance), Cents(metered))) == expected


@pytest.mark.parametrize("tolerance", [Decimal(-1), Decimal("NaN"), Decimal("Infinity"), 1])
def test_a_bad_tolerance_is_refused(tolerance: Decimal) -> None:
    """The tolerance is a finite Decimal >= 0."""
    with pytest.raises(ValidationFailed) as caught:
        run([], {}, tolerance)
    assert fields(caught.value) == ["tolerancePercent"]


def test_resolve_and_label_are_called_once_per_distinct_argument() -> None:
    """The registry callbacks are asked once per text and once per model id."""
    asked: list[object] = []

    def counting(fn: Callable[[str], uuid.UUID | None]) -> Callable[[str], uuid.UUID | None]:
        return lambda text: asked.append(text) or fn(text)

    def labelling(model_id: uuid.UUID) -> str:
        asked.append(model_id)
        return label(model_id)

    lines = [line(r, day, "gpt-4o", "1") for r, day in enumerate(DAYS, start=2)]
    reconcile(lines, {(D0, GPT): Metered(Cents(1), 0, 0, 1)}, resolve=counting(resolve),
              label=labelling, tolerance_percent=ONE_PERCENT)
    assert sorted(map(str, asked)) == sorted(["gpt-4o", str(GPT)])


def test_totals_add_every_line() -> None:
    """Totals are the sums of both sides and their difference."""
    report = run([line(2, D0, "gpt-4o", "2"), line(3, D0, "x", "1")],
                 {(D0, GPT): Metered(Cents(1_000_000), 0, 0, 1),
                  (D0, CLAUDE): Metered(Cents(500_000), 0, 0, 1)})
    assert (report.metered_total, report.invoiced_total, report.variance) == (
        Cents(1_500_000), Cents(3_000_000), Cents(1_500_000))
    assert report.variance_percent == Decimal("100.00")
    assert len(report.flagged) == 3


# --- the report CSV -----------------------------------------------------------------------------


def read_report(data: bytes) -> list[list[str]]:
    """The rows of a report CSV."""
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_report_csv_has_the_columns_and_exact_cells() -> None:
    """Header, exact USD amounts, two-place percentages, flags, tokens and rows per line."""
    report = run([line(4, D0, "gpt-4o", "1.0305", 10, None), line(2, D0, "gpt-4o", "0.0000")],
                 {(D0, GPT): Metered(Cents(100_000), 7, 3, 1),
                  (DAYS[1], CLAUDE): Metered(Cents(50), 1, 1, 1)})
    data = report_csv(report, timezone="Europe/Berlin")
    assert data.startswith(b"day,timezone,model_id,")
    assert b"\r\n" in data
    assert b"\xef\xbb\xbf" not in data
    rows = read_report(data)
    assert tuple(rows[0]) == REPORT_COLUMNS
    assert rows[1:] == [
        ["2025-06-01", "Europe/Berlin", str(GPT), "gpt-4o", "over_tolerance", "0.100000",
         "1.030500", "0.930500", "930.50", "true", "7", "10", "3", "", "2 4"],
        ["2025-06-02", "Europe/Berlin", str(CLAUDE), "claude-3-5-sonnet", "metered_only",
         "0.000050", "", "-0.000050", "-100.00", "true", "1", "", "1", "", ""],
    ]


def test_report_csv_neutralises_text_but_keeps_negative_amounts_numbers() -> None:
    """A formula-like model text gets a quote; a credit stays a plain negative number."""
    report = run([line(2, D0, "=HYPERLINK(\"http://x\")", "-1.5")], {})
    row = read_report(report_csv(report, timezone="UTC"))[1]
    assert row[3] == "'=HYPERLINK(\"http://x\")"
    assert row[2] == ""
    assert (row[6], row[7]) == ("-1.500000", "-1.500000")


def test_report_csv_has_no_totals_row() -> None:
    """Every row after the header is one reconciliation line."""
    report = run([line(2, D0, "gpt-4o", "1")], {(D0, GPT): Metered(Cents(1), 0, 0, 1)})
    assert len(read_report(report_csv(report, timezone="UTC"))) == 2


def test_usd_text_has_six_exact_places() -> None:
    """Amounts are written as USD with exactly six decimal places."""
    assert [usd_text(Cents(u)) for u in (0, 1, -1, 1_234_567_890)] == [
        "0.000000", "0.000001", "-0.000001", "1234.567890"]


# --- properties ---------------------------------------------------------------------------------

days = st.sampled_from(DAYS)
models = st.sampled_from(list(NAMES))
amounts = st.integers(-(10**12), 10**12).map(Cents)
texts = st.sampled_from([*NAMES.values(), *ALIASES, "unknown-sku", "Other SKU"])
tokens = st.none() | st.integers(0, 10**9)
metered_values = st.builds(Metered, st.integers(0, 10**12).map(Cents), st.integers(0, 10**9),
                           st.integers(0, 10**9), st.integers(0, 10**6))
metered_maps = st.dictionaries(st.tuples(days, models), metered_values, max_size=12)
invoice_lines = st.lists(st.builds(InvoiceLine, st.integers(2, 10**6), days, texts, amounts,
                                   tokens, tokens), max_size=20)
tolerances = st.decimals(0, 100, places=2)


@given(invoice_lines, metered_maps, tolerances)
def test_variances_add_up_to_the_total_variance(lines: list[InvoiceLine],
                                                metered: dict[tuple[date, uuid.UUID], Metered],
                                                tolerance: Decimal) -> None:
    """The lines' variances sum to invoiced total - metered total, exactly."""
    report = run(lines, metered, tolerance)
    assert sum((x.variance for x in report.lines), Cents.zero()) == report.variance
    assert report.invoiced_total == sum((x.cost for x in lines), Cents.zero())
    assert sorted(r for x in report.lines for r in x.rows) == sorted(x.row for x in lines)


@given(metered_maps, st.data())
def test_an_invoice_of_the_metered_usage_reconciles_without_flags(
        metered: dict[tuple[date, uuid.UUID], Metered], data: st.DataObject) -> None:
    """An invoice written from metered values, split over SKU rows, flags nothing."""
    rows: list[list[object]] = [HEADER]
    for (day, model), m in sorted(metered.items()):
        if m.cost.units == 0 and m.invocations == 0:
            continue
        parts = data.draw(st.integers(1, 3))
        split = data.draw(st.lists(st.integers(-(10**9), 10**9), min_size=parts - 1,
                                   max_size=parts - 1))
        costs = [*split, m.cost.units - sum(split)]
        names = data.draw(st.lists(st.sampled_from([NAMES[model], NAMES[model].upper(),
                                                    *[a for a, i in ALIASES.items()
                                                      if i == model]]),
                                   min_size=parts, max_size=parts))
        for i, (units, name) in enumerate(zip(costs, names, strict=True)):
            rows.append([day.isoformat(), name, usd_text(Cents(units)),
                         m.input_tokens if i == 0 else "", m.output_tokens if i == 0 else ""])
    lines = parse_invoice(csv_bytes(rows), WITH_TOKENS) if len(rows) > 1 else []
    report = run(lines, metered, Decimal(0))
    assert report.flagged == ()
    assert all(x.status is LineStatus.MATCHED for x in report.lines)
    assert all(x.invoiced_input_tokens == x.metered_input_tokens for x in report.lines)
    assert report.variance == Cents.zero()


@given(invoice_lines, metered_maps,
       st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=20))
def test_the_report_csv_reads_back_with_one_row_per_line(
        lines: list[InvoiceLine], metered: dict[tuple[date, uuid.UUID], Metered],
        zone: str) -> None:
    """The report CSV parses back to a header and one full row per line, amounts exact."""
    report = run(lines, metered)
    rows = read_report(report_csv(report, timezone=zone))
    assert len(rows) == len(report.lines) + 1
    assert all(len(r) == len(REPORT_COLUMNS) for r in rows)
    back = sum((Cents.parse(Decimal(r[7]) * 100) for r in rows[1:]), Cents.zero())
    assert back == report.variance


model_texts = st.lists(
    st.text(st.characters(blacklist_categories=["Cc", "Cs", "Zs", "Zl", "Zp"]), min_size=1,
            max_size=12), min_size=1, max_size=3).map(" ".join)


@given(st.lists(st.tuples(days, model_texts, amounts, tokens, tokens), min_size=1, max_size=10))
def test_invoice_lines_written_as_csv_parse_back_equal(
        values: list[tuple[date, str, Cents, int | None, int | None]]) -> None:
    """Lines written with usd_text and read through a mapping are the same lines."""
    rows: list[list[object]] = [HEADER]
    rows += [[d.isoformat(), m, usd_text(c), "" if i is None else i, "" if o is None else o]
             for d, m, c, i, o in values]
    expected = [InvoiceLine(n, *v) for n, v in enumerate(values, start=2)]
    assert parse_invoice(csv_bytes(rows), WITH_TOKENS) == expected
