"""The figures as files to download: a CSV table, or an Excel workbook of one or more sheets.

A table here is plain data — a title, column names and rows of cells — and `to_csv` and
`to_xlsx` return bytes; what the rows stand for is decided by whoever builds them (below:
`indicators_table`, a row per scope, and `targets_table`, a row per target of a scope).
Percentages are marked as such (`Percent`) where they are put in a row: a workbook shows them
with a percent format, a CSV writes the number (41.9).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from score_indicators.indicators import INDICATORS, Value
from score_indicators.targets import TargetValue


@dataclass(frozen=True, slots=True)
class Percent:
    """A percentage as the API reports it: 41.9 is 41.9 %."""

    value: float


Cell = str | int | float | bool | Percent | None
"""What a cell holds; None is an empty cell (an indicator whose denominator is zero)."""


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    """The sheet's name in a workbook (at most 31 characters, Excel's limit)."""
    columns: Sequence[str]
    rows: Sequence[Sequence[Cell]]


FileFormat = Literal["csv", "xlsx"]

MEDIA_TYPES: Final[dict[FileFormat, str]] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def attachment(name: str) -> str:
    """A Content-Disposition that has a browser save the answer as `name`.

    The names made here are ASCII letters, digits, dashes and dots only (phase ids and
    country codes are held to that), so no quoting or RFC 8187 form is needed.
    """
    return f'attachment; filename="{name}"'


def to_csv(table: Table) -> bytes:
    """The table as RFC 4180 CSV in UTF-8: a header row, CRLF line ends, an empty field for a
    null, numbers as plain decimals (no thousands separator, no exponent)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    writer.writerows([_csv_field(cell) for cell in row] for row in table.rows)
    return out.getvalue().encode("utf-8")


def _csv_field(cell: Cell) -> str:
    match cell:
        case None:
            return ""
        case bool():  # before int: a bool is an int
            return "true" if cell else "false"
        case Percent(value=value):
            return _plain(value)
        case int() | float():
            return _plain(cell)
        case str():
            return cell


def _plain(number: int | float) -> str:
    """`number` as a plain decimal: 41.9, 1200, never 1.2e+16. A float is written as the
    shortest decimal that reads back as the same float (its `repr`)."""
    if isinstance(number, int):
        return str(number)
    text = format(Decimal(repr(number)), "f")
    return text.removesuffix(".0") if text.endswith(".0") else text


PERCENT_FORMAT = "0.0%"
"""Excel's percent format with the API's one decimal: it shows a fraction, 0.419, as 41.9%."""

WIDEST_COLUMN = 40
"""Characters: a column is as wide as its longest cell, up to this."""


def to_xlsx(tables: Sequence[Table]) -> bytes:
    """A workbook with one sheet per table: a bold header row, frozen with the first column
    (row labels stay in view while scrolling), a filter on the header, columns as wide as
    their cells, and typed cells — numbers as numbers, percentages as fractions shown with a
    percent format, booleans as booleans, text as text (never a formula)."""
    out = io.BytesIO()
    # In memory: the workbook is small, and no temporary files are left by a failed request.
    workbook = Workbook(out, {"in_memory": True, "strings_to_formulas": False})
    header = workbook.add_format({"bold": True, "bottom": 1})
    percent = workbook.add_format({"num_format": PERCENT_FORMAT})
    for table in tables:
        _write_sheet(workbook.add_worksheet(table.title), table, header, percent)
    workbook.close()
    return out.getvalue()


def _write_sheet(sheet: Worksheet, table: Table, header: Format, percent: Format) -> None:
    for column, name in enumerate(table.columns):
        sheet.write_string(0, column, name, header)
    for row_number, row in enumerate(table.rows, start=1):
        for column, cell in enumerate(row):
            _write_cell(sheet, row_number, column, cell, percent)
    for column, name in enumerate(table.columns):
        longest = max([len(name), *(len(_csv_field(row[column])) for row in table.rows)])
        sheet.set_column(column, column, min(longest + 2, WIDEST_COLUMN))
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, len(table.rows), len(table.columns) - 1)


def _write_cell(sheet: Worksheet, row: int, column: int, cell: Cell, percent: Format) -> None:
    match cell:
        case None:
            pass  # an empty cell: nothing is written
        case bool():
            sheet.write_boolean(row, column, cell)
        case Percent(value=value):
            # Excel's percentages are fractions: 41.9 % is 0.419, the float nearest to it.
            sheet.write_number(row, column, float(Decimal(repr(value)) / 100), percent)
        case int() | float():
            sheet.write_number(row, column, cell)
        case str():
            sheet.write_string(row, column, cell)


# What the indicators' export holds.

PERCENTAGES: Final = frozenset(
    {
        "women_share_trainers",
        "cost_recovery_pct",
        "cost_recovery_pct_module1",
        "cost_recovery_pct_modules2to5",
    }
)
"""The indicators that are percentages (DOMAIN.md: "a number with one decimal"); every other
is a count."""


def indicators_table(figures: Sequence[tuple[str, Mapping[str, Value]]]) -> Table:
    """One row per scope, labelled in a `region` column (`national`, or a region's slug), and a
    column per indicator in the order `GET /v1/indicators` answers them."""
    return Table(
        title="indicators",
        columns=("region", *INDICATORS),
        rows=[
            (scope, *(_indicator_cell(key, values[key]) for key in INDICATORS))
            for scope, values in figures
        ],
    )


def _indicator_cell(key: str, value: Value) -> Cell:
    return Percent(value) if key in PERCENTAGES and value is not None else value


# What the targets' export holds.

TARGET_COLUMNS: Final = ("phase", "region", "key", "target", "actual", "percent", "met")


def targets_table(phase: str, targets: Sequence[tuple[str, Sequence[TargetValue]]]) -> Table:
    """A row per target of `phase` in each scope (`national`, or a region's slug): what it
    asks, what is there, how far along (a percentage), whether it is met. A target on a
    percentage (cost recovery) has its target and actual as percentages too."""
    return Table(
        title="targets",
        columns=TARGET_COLUMNS,
        rows=[
            (
                phase,
                scope,
                value.key,
                _indicator_cell(value.key, value.target),
                _indicator_cell(value.key, value.actual),
                None if value.percent is None else Percent(value.percent),
                value.met,
            )
            for scope, values in targets
            for value in values
        ],
    )
