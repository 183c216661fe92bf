"""Tables as files people open: CSV, and Excel workbooks written by XlsxWriter (a real writer: typed
cells, frozen header row, one sheet per table), for the reports' `Accept` variants."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal

import xlsxwriter  # type: ignore[import-untyped]

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Table = tuple[str, Sequence[Mapping[str, object]]]
# A phone number (+7 916 ...) or a signed number: text a spreadsheet shows as it is, left alone.
_PLAIN_NUMBER = re.compile(r"[+-][0-9 ().-]*")


def inert(value: object) -> object:
    """Text that a spreadsheet would run as a formula (`=HYPERLINK(...)`, `@SUM`, `+cmd|...`) quoted
    with a leading apostrophe, so it is shown, not run. Names, notes and utm values come from customers
    and visitors; phone numbers and signed numbers are left as they are."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in "=@\t\r" or (value[0] in "+-" and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def flat_cell(value: object) -> object:
    """Lists joined with `;`, maps as `key value` pairs: one cell a person reads."""
    if isinstance(value, list | tuple):
        return ";".join(str(item) for item in value)
    if isinstance(value, Mapping):
        return ";".join(f"{key} {item}".strip() for key, item in value.items())
    return value


def columns_of(rows: Sequence[Mapping[str, object]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def csv_text(rows: Sequence[Mapping[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns_of(rows))
    writer.writeheader()
    for row in rows:
        writer.writerow({name: inert(flat_cell(value)) for name, value in row.items()})
    return buffer.getvalue()


def xlsx_bytes(tables: Sequence[Table]) -> bytes:
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    bold = workbook.add_format({"bold": True})
    for title, rows in tables:
        sheet = workbook.add_worksheet(title[:31])
        names = columns_of(rows)
        sheet.write_row(0, 0, names, bold)
        sheet.freeze_panes(1, 0)
        for number, row in enumerate(rows, start=1):
            for column, name in enumerate(names):
                value = flat_cell(row.get(name))
                if value is None:
                    continue
                if isinstance(value, bool):
                    sheet.write_boolean(number, column, value)
                elif isinstance(value, int | float | Decimal):
                    sheet.write_number(number, column, float(value))
                else:
                    # write_string never makes a formula; quoting keeps CSV and Excel files alike.
                    sheet.write_string(number, column, str(inert(value)))
        sheet.autofit()
    workbook.close()
    return buffer.getvalue()
