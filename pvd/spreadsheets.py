"""The one writer of every CSV and XLSX the portal produces: a user's text never becomes a
formula in the spreadsheet that opens it (OWASP « CSV injection »).

- CSV: a text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
  leading single quote, which spreadsheets show as text. Numbers, dates and amounts are
  formatted here (French decimal comma), so a negative amount stays a number.
- XLSX: a text is always stored as a string cell, never a formula; one that starts like a
  formula also gets Excel's « quote prefix » style, so editing the cell keeps it text.
  Its value is not changed: a workbook read back by the portal gets the text as typed.

Use ``csv_response`` / ``csv_lines`` for CSV; ``xlsx_response`` for a one-sheet XLSX, or
``sheet.append(xlsx_row(sheet, row))`` / ``text_cell(sheet.cell(…), text)`` to build a richer
workbook; never put a user's text in a cell directly.
"""

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal

from django.http import FileResponse, StreamingHttpResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_BATCH = 500  # rows per chunk sent: fewer, larger writes than one per row
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def looks_like_formula(value: str) -> bool:
    return value.startswith(FORMULA_PREFIXES)


def safe_text(value: str) -> str:
    """The text as a spreadsheet shows it, never run: « '=HYPERLINK(…) »."""
    return "'" + value if looks_like_formula(value) else value


# CSV --------------------------------------------------------------------------------------


def csv_value(value) -> str:
    """A cell of a CSV read by French Excel: « 1234,50 » for an amount, ISO dates."""
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, Decimal | float):
        return f"{value:.2f}".replace(".", ",")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def csv_lines(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """The file in chunks: a BOM (so Excel reads UTF-8), the header, the rows."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow([csv_value(title) for title in header])
    for count, row in enumerate(rows, 1):
        writer.writerow([csv_value(value) for value in row])
        if count % CSV_BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_response(header: list[str], rows: Iterable[Iterable], filename: str):
    response = StreamingHttpResponse(
        csv_lines(header, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def open_data_value(value) -> str:
    """A cell of an open-data CSV (data.gouv.fr): decimal point, ISO dates, texts that start
    like a formula still neutralised."""
    if isinstance(value, Decimal | float):
        return f"{value:.2f}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return csv_value(value)


def write_open_data_csv(header: list[str], rows: Iterable[Iterable], output) -> int:
    """An open-data file as data.gouv.fr publishes them (ANCT's PVD list, SCDL): comma
    separator, UTF-8 without BOM, one header line; written to the text stream ``output``.
    Returns the number of rows written."""
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow([open_data_value(value) for value in row])
        count += 1
    return count


# XLSX -------------------------------------------------------------------------------------


def text_cell(cell, value: str):
    """Put a text in a cell as a string, never a formula. A control character XML cannot
    carry (stored before forms refused them) is dropped: openpyxl would refuse the cell, and
    one such text would stop a whole export."""
    cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell.data_type = "s"  # openpyxl would take « =… » for a formula
    if looks_like_formula(value):
        cell.quotePrefix = True
    return cell


def xlsx_row(sheet, row: Iterable) -> list:
    """A row for ``sheet.append`` (write-only or ordinary sheet): texts as string cells,
    other values (numbers, dates) as they are."""
    return [
        text_cell(WriteOnlyCell(sheet), value) if isinstance(value, str) else value for value in row
    ]


def xlsx_response(
    header: list[str], rows: Iterable[Iterable], filename: str, sheet_name: str
) -> FileResponse:
    """A one-sheet workbook download, written to a temporary file rather than memory."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_name)
    sheet.append(xlsx_row(sheet, header))
    for row in rows:
        sheet.append(xlsx_row(sheet, row))
    output = tempfile.TemporaryFile()
    workbook.save(output)
    output.seek(0)
    return FileResponse(
        output, as_attachment=True, filename=f"{filename}.xlsx", content_type=XLSX_CONTENT_TYPE
    )
