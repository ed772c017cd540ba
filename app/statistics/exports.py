"""CSV and XLSX exports of the dashboard's tables and of drill-down lists.

The CSV is written for Excel in French: UTF-8 with a byte order mark (without
it Excel reads the file as Windows-1252), ``;`` as separator, a decimal comma
and dates as dd/mm/yyyy. Text that starts with ``=``, ``+``, ``-`` or ``@`` is
prefixed with an apostrophe so that a spreadsheet never runs it as a formula.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.core.parsing import format_date_fr

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Table:
    """A table of the dashboard: its stable id (file name), title, headings and rows of typed cells."""

    id: str
    title: str
    headings: list[str]
    rows: list[list[Any]]


def _harmless(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Up to three decimals, trailing zeros dropped: 1234.5 is written 1234,5.
        return f"{value:.3f}".rstrip("0").rstrip(".").replace(".", ",")
    if isinstance(value, datetime):
        return format_date_fr(value.date())
    if isinstance(value, date):
        return format_date_fr(value)
    return _harmless(str(value))


def table_csv(table: Table) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow([_harmless(heading) for heading in table.headings])
    for row in table.rows:
        writer.writerow([csv_cell(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def table_xlsx(table: Table) -> bytes:
    """Write the table as one XLSX sheet, numbers as numbers and dates as dates shown dd/mm/yyyy."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    # Sheet titles are limited to 31 characters and may not contain []:*?/\
    sheet.title = "".join(char for char in table.title if char not in "[]:*?/\\")[:31] or table.id[:31]
    sheet.append([_harmless(heading) for heading in table.headings])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table.rows:
        sheet.append([_xlsx_value(value) for value in row])
    for column in sheet.iter_cols(min_row=2):
        for cell in column:
            if isinstance(cell.value, (date, datetime)):
                cell.number_format = "DD/MM/YYYY"
            elif isinstance(cell.value, float):
                cell.number_format = "0.00"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return _harmless(value)
    return value
