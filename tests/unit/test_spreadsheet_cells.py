"""Cells a spreadsheet would run as formulas are quoted in every export; numbers stay numbers."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from api.spreadsheet import csv_text, inert, xlsx_bytes


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("\t=1", "'\t=1"),
        ("+79161234567", "+79161234567"),
        ("+7 (916) 123-45-67", "+7 (916) 123-45-67"),
        ("-12.5", "-12.5"),
        ("Anna", "Anna"),
        ("", ""),
        (12, 12),
        (None, None),
    ],
)
def test_formula_like_text_is_quoted_and_numbers_are_not(value: object, shown: object) -> None:
    assert inert(value) == shown


def test_csv_and_excel_files_carry_the_quoted_text() -> None:
    rows = [{"name": "=1+1", "number": "+79161234567", "calls": 3}]
    parsed = list(csv.DictReader(io.StringIO(csv_text(rows))))
    assert parsed == [{"name": "'=1+1", "number": "+79161234567", "calls": "3"}]
    sheet = load_workbook(io.BytesIO(xlsx_bytes([("t", rows)]))).active
    assert sheet is not None
    assert [cell.value for cell in sheet[2]] == ["'=1+1", "+79161234567", 3]
