"""Reading CRM exports: what a row becomes, which rows are refused, which files are refused whole."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from calltracking.crm.csv_import import MAX_LINE_CHARS, CrmCsv, CsvFileError, ParsedRow
from calltracking.crm.mirror import ContactIn, DealIn, ImportKind, ManagerIn, RowError


def read(kind: ImportKind, text: str) -> list[ParsedRow | RowError]:
    return list(CrmCsv(kind, io.StringIO(text, newline="")).rows())


def refusal(kind: ImportKind, text: str) -> str:
    with pytest.raises(CsvFileError) as refused:
        csv = CrmCsv(kind, io.StringIO(text, newline=""))
        csv.check_structure()
    return str(refused.value)


def test_good_contact_rows_become_the_api_models_with_their_lines() -> None:
    rows = read(
        "contacts",
        "external_id,name,owner,company,phones,is_active\n"
        "c-1,Ivan Orlov,m-anna,co-7,8 (916) 123-45-67,yes\n"
        "c-2,Olga,,,,0\n",
    )

    assert rows == [
        ParsedRow(
            2,
            ContactIn(
                external_id="c-1",
                name="Ivan Orlov",
                owner="m-anna",
                company="co-7",
                phones=["8 (916) 123-45-67"],
            ),
        ),
        ParsedRow(3, ContactIn(external_id="c-2", name="Olga", is_active=False)),
    ]


def test_a_phone_that_is_not_a_number_is_kept_as_written() -> None:
    [row] = read("contacts", "external_id,phones\nc-1,ext. 12 ask Olga\n")

    assert row == ParsedRow(2, ContactIn(external_id="c-1", phones=["ext. 12 ask Olga"]))


def test_a_bad_amount_refuses_its_row_only() -> None:
    rows = read(
        "deals",
        "external_id,amount,currency,opened_at,is_won\n"
        "d-1,1500.50,RUB,2026-11-22T12:00:00Z,\n"
        'd-2,"1 500,50",RUB,,\n'
        "d-3,,,,true\n",
    )

    assert rows[0] == ParsedRow(
        2,
        DealIn(
            external_id="d-1",
            amount=Decimal("1500.50"),
            currency="RUB",
            opened_at=datetime(2026, 11, 22, 12, tzinfo=UTC),
        ),
    )
    assert isinstance(rows[1], RowError)
    assert (rows[1].index, rows[1].external_id) == (3, "d-2")
    assert [message.split(":")[0] for message in rows[1].errors] == ["amount"]
    assert rows[2] == ParsedRow(4, DealIn(external_id="d-3", is_won=True))


def test_quoted_cells_keep_commas_and_split_lists_on_semicolons() -> None:
    [row] = read(
        "contacts",
        'external_id,name,phones\nc-1,"Orlov, Ivan","+7 916 123-45-67; 8 (903) 555-01-02;"\n',
    )

    assert row == ParsedRow(
        2, ContactIn(external_id="c-1", name="Orlov, Ivan", phones=["+7 916 123-45-67", "8 (903) 555-01-02"])
    )


def test_a_byte_order_mark_and_loose_header_spelling_are_accepted() -> None:
    [row] = read("managers", "\ufeffExternal_ID , Name,extensions\nm-1,Anna,101;102\n")

    assert row == ParsedRow(2, ManagerIn(external_id="m-1", name="Anna", extensions=["101", "102"]))


def test_blank_lines_are_skipped_and_lines_count_across_multiline_cells() -> None:
    rows = read("contacts", 'external_id,name\nc-1,"two\nlines"\n\n,\nc 2,x\n')

    assert rows[0] == ParsedRow(2, ContactIn(external_id="c-1", name="two\nlines"))
    assert isinstance(rows[1], RowError) and (rows[1].index, rows[1].external_id) == (6, "c 2")
    assert len(rows) == 2


@pytest.mark.parametrize(
    ("line", "problem"),
    [("c-1,x,extra", "has 3 cells"), ("c-1", "has 1 cells"), ("c-1,maybe", "is_active")],
)
def test_a_row_that_does_not_fit_is_a_row_error(line: str, problem: str) -> None:
    [row] = read("contacts", f"external_id,is_active\n{line}\n")

    assert isinstance(row, RowError) and row.index == 2 and row.external_id == "c-1"
    assert problem in " ".join(row.errors)


def test_chunks_carry_good_and_bad_rows_with_their_line_range() -> None:
    csv = CrmCsv("contacts", io.StringIO("external_id\nc-1\nc 2\nc-3\n", newline=""))

    chunks = list(csv.chunks(2))

    assert [(len(c.items), len(c.errors), c.first_line, c.last_line) for c in chunks] == [
        (1, 1, 2, 3),
        (1, 0, 4, 4),
    ]


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("contacts", "external_id,name,phone\n", "unknown column(s) for contacts: 'phone'"),
        ("contacts", "external_id;name\nc-1;x\n", "separated by commas"),
        ("contacts", "name,phones\nx,1\n", "missing for contacts: external_id"),
        ("managers", "external_id,extensions\n", "missing for managers: name"),
        ("contacts", "external_id,name,Name\n", "named twice: name"),
        ("contacts", "external_id,,name\n", "column 2 has no name"),
        ("contacts", "", "the file is empty"),
        ("contacts", "external_id\x00\x00\n", "binary file"),
        ("contacts", 'external_id,name\nc-1,"never closed\n' + "c-2,x\n" * 10, "line 2: not valid CSV"),
        ("contacts", 'external_id,name\nc-1,"x"y\n', "line 2: not valid CSV"),
        ("contacts", "external_id\n" + "x" * (MAX_LINE_CHARS + 5), "line 2 is longer than"),
        ("contacts", 'external_id,name\nc-1,"' + ("y" * 1000 + "\n") * 300, "an unclosed quote?"),
    ],
)
def test_a_file_that_cannot_be_loaded_is_refused_whole(kind: ImportKind, text: str, message: str) -> None:
    assert message in refusal(kind, text)


def test_text_that_is_not_utf8_is_refused_whole() -> None:
    data = "external_id,name\nc-1,Иван\n".encode("cp1251")
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")

    with pytest.raises(CsvFileError, match="not UTF-8 text"):
        CrmCsv("contacts", stream).check_structure()


def test_structure_check_counts_rows_without_judging_cells() -> None:
    csv = CrmCsv("deals", io.StringIO("external_id,amount\nd-1,1\nbad id,lots\n\nd-3,\n", newline=""))

    assert csv.check_structure() == 3
