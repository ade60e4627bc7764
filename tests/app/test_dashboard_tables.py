"""The dashboard's CSV tables: exact values, and user text a spreadsheet could run neutralised."""

from __future__ import annotations

from analytics_app.ui.tables import Row, Table, usd_cell


def test_labels_that_read_as_formulas_are_neutralised_like_the_exports() -> None:
    """A full-width sign or one behind white space is neutralised too, not only a leading
    `=`; numbers stay as they are."""
    table = Table("clients", ("Client", "Reported cost"), (
        Row("=cmd", (usd_cell("-1.5000"),)),
        Row("\u3000=HYPERLINK(1)", (usd_cell("2.0000"),)),
        Row("\uff0bSUM(1)", (usd_cell("3.0000"),)),
        Row("plain", (usd_cell("4.0000"),)),
    ), "usd-cents")
    lines = table.csv().splitlines()
    assert lines[1:] == ["'=cmd,-1.5000", "'\u3000=HYPERLINK(1),2.0000",
                         "'\uff0bSUM(1),3.0000", "plain,4.0000"]
