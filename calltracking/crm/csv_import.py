"""Reading a CRM export (CSV) into the input models the REST API takes, so a file and a request accept and
refuse exactly the same rows.

The format, one file per kind (managers, contacts, companies, leads, deals):

- UTF-8 text, with or without a byte order mark; cells separated by commas, quoted the usual CSV way
  (`"Orlov, Ivan"`, `""` for a quote inside a quoted cell); a cell may span lines when quoted.
- The first line names the columns: the model's field names (`external_id`, `name`, `owner`, `phones`,
  ...), in any order, case and surrounding spaces ignored. `external_id` (and every other required
  field, e.g. a manager's `name`) must be there; a column the model does not know refuses the whole
  file, since it is a mapping mistake that would otherwise drop data silently.
- An empty cell is the field's default (null, an empty list, `is_active` true). List cells (`phones`,
  `extensions`) hold several values separated by `;` (`+7 916 123-45-67; 8 903 555-01-02`); commas
  belong to CSV, and phone numbers never contain a `;`.
- Booleans: `true/false`, `1/0`, `yes/no`. Times: ISO 8601 with a zone (`2026-11-22T12:00:00Z`).
  Amounts: a dot for decimals, at most two of them (`1500.50`).
- Lines with only empty cells are skipped. A row that does not fit its model is a row error (its line
  number, its external_id and what is wrong); the other rows still load. A phone that is not a valid
  number is no error: it is kept as written and matches calls by its last digits.

Problems with the file as a whole (no header, an unknown or missing column, text that is not UTF-8,
broken quoting, a line too long to be CSV) raise `CsvFileError` with the line where they were found.
Reading is streamed and bounded: memory stays the same whatever the number of rows, and a line or a
record longer than any real row stops the read instead of filling memory.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO, get_origin

from calltracking.crm.mirror import (
    CompanyIn,
    ContactIn,
    DealIn,
    ImportKind,
    LeadIn,
    ManagerIn,
    RowError,
    validate_rows,
)
from calltracking.errors import CalltrackingError

CrmInput = ManagerIn | ContactIn | CompanyIn | LeadIn | DealIn
MODEL_OF_KIND: dict[ImportKind, type[CrmInput]] = {
    "managers": ManagerIn,
    "contacts": ContactIn,
    "companies": CompanyIn,
    "leads": LeadIn,
    "deals": DealIn,
}
LIST_SEPARATOR = ";"
# The models take only true/false (an API request with 0 or "no" is a mistake); a file uses these words.
BOOLEAN_COLUMNS = frozenset({"is_active", "is_won"})
BOOLEAN_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
# The widest real row (20 phones of 64 characters, names of 256) is a few kilobytes; far beyond that a
# "line" is a binary file or an unclosed quote swallowing the rest of the file.
MAX_LINE_CHARS = 64 * 1024
MAX_RECORD_CHARS = 100 * 1024  # below the csv module's own field limit (128 KiB), so this one speaks
# An external_id echoed in a row error is cut to this: the cell may be anything.
MAX_SHOWN_CHARS = 128


class CsvFileError(CalltrackingError):
    """The file as a whole cannot be loaded; nothing of it is."""


@dataclass(frozen=True, slots=True)
class ParsedRow:
    line: int
    item: CrmInput


@dataclass(frozen=True, slots=True)
class CsvChunk:
    """Consecutive rows of the file: the good ones as models, the bad ones as errors."""

    items: tuple[CrmInput, ...]
    errors: tuple[RowError, ...]
    first_line: int
    last_line: int

    @property
    def rows(self) -> int:
        return len(self.items) + len(self.errors)


class CrmCsv:
    """One CRM export being read. The header is checked on opening, so a file that cannot be loaded is
    refused before any row is read; rows are then read on demand."""

    def __init__(self, kind: ImportKind, stream: TextIO) -> None:
        self.kind = kind
        self._model = MODEL_OF_KIND[kind]
        self._lines = _BoundedLines(stream)
        self._reader = csv.reader(self._lines, strict=True)
        self.columns = self._header()
        self._list_columns = {
            name for name, info in self._model.model_fields.items() if get_origin(info.annotation) is list
        }

    def rows(self) -> Iterator[ParsedRow | RowError]:
        """Each row that is not blank, in file order; a `RowError`'s index is the line the row starts on."""
        for line, cells in self._records():
            yield self._parse(line, cells)

    def chunks(self, size: int) -> Iterator[CsvChunk]:
        items: list[CrmInput] = []
        errors: list[RowError] = []
        first_line = 0
        last_line = 0
        for parsed in self.rows():
            if not items and not errors:
                first_line = parsed.line if isinstance(parsed, ParsedRow) else parsed.index
            if isinstance(parsed, ParsedRow):
                items.append(parsed.item)
                last_line = parsed.line
            else:
                errors.append(parsed)
                last_line = parsed.index
            if len(items) + len(errors) >= size:
                yield CsvChunk(tuple(items), tuple(errors), first_line, last_line)
                items, errors = [], []
        if items or errors:
            yield CsvChunk(tuple(items), tuple(errors), first_line, last_line)

    def check_structure(self) -> int:
        """Read every record without judging its cells: the file is UTF-8, well-formed CSV and bounded to
        its end. Returns how many rows it holds. Cheap next to loading, so a file that would fail half
        way is refused before anything of it is written."""
        return sum(1 for _ in self._records())

    def _header(self) -> tuple[str, ...]:
        try:
            cells = next(self._reader, None)
        except csv.Error as exc:
            raise CsvFileError(f"line 1: not valid CSV ({exc})") from exc
        if not cells:
            raise CsvFileError(
                "the file is empty: its first line must name the columns, e.g. "
                + ",".join(self._model.model_fields)
            )
        if any("\x00" in cell for cell in cells):
            raise CsvFileError("line 1 holds NUL bytes: this is a binary file, not CSV text")
        columns = tuple(cell.strip().lstrip("\ufeff").strip().lower() for cell in cells)
        self._check_columns(columns)
        return columns

    def _check_columns(self, columns: tuple[str, ...]) -> None:
        known = self._model.model_fields
        if "" in columns:
            raise CsvFileError(f"line 1: column {columns.index('') + 1} has no name")
        repeated = sorted({name for name in columns if columns.count(name) > 1})
        if repeated:
            raise CsvFileError(f"line 1: column(s) named twice: {', '.join(repeated)}")
        unknown = [name for name in columns if name not in known]
        if unknown:
            hint = ""
            if any(LIST_SEPARATOR in name for name in unknown):
                hint = " (columns must be separated by commas, not ';')"
            raise CsvFileError(
                f"line 1: unknown column(s) for {self.kind}: "
                + ", ".join(repr(name[:MAX_SHOWN_CHARS]) for name in unknown)
                + hint
                + f"; known columns: {', '.join(known)}"
            )
        missing = [name for name, info in known.items() if info.is_required() and name not in columns]
        if missing:
            raise CsvFileError(f"line 1: required column(s) missing for {self.kind}: {', '.join(missing)}")

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """(first line, cells) of each record that is not blank."""
        while True:
            first_line = self._reader.line_num + 1
            self._lines.start_record()
            try:
                cells = next(self._reader, None)
            except csv.Error as exc:
                raise CsvFileError(f"line {first_line}: not valid CSV ({exc})") from exc
            if cells is None:
                return
            if any(cell.strip() for cell in cells):
                yield first_line, cells

    def _parse(self, line: int, cells: list[str]) -> ParsedRow | RowError:
        external_id = self._external_id(cells)
        if len(cells) != len(self.columns):
            return RowError(
                line, external_id, (f"has {len(cells)} cells, the header names {len(self.columns)} columns",)
            )
        values: dict[str, str | bool | list[str]] = {}
        for name, cell in zip(self.columns, cells, strict=True):
            text = cell.strip()
            if not text:
                continue
            if name in self._list_columns:
                values[name] = [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]
            elif name in BOOLEAN_COLUMNS and text.lower() in BOOLEAN_WORDS:
                values[name] = BOOLEAN_WORDS[text.lower()]
            else:
                values[name] = text
        # The API's own row validation, so a row and a request item get the same verdict and messages.
        valid, errors = validate_rows([values], self._model)
        if errors:
            return RowError(line, external_id, errors[0].errors)
        return ParsedRow(line, valid[0])

    def _external_id(self, cells: list[str]) -> str | None:
        position = self.columns.index("external_id")
        if position >= len(cells):
            return None
        return cells[position].strip()[:MAX_SHOWN_CHARS] or None


class _BoundedLines:
    """The stream's lines for the CSV reader, refusing a line or a record longer than any real row, and
    text that is not UTF-8 (the stream decodes; this turns its error into the file's)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._read = 0
        self._record_chars = 0

    def __iter__(self) -> _BoundedLines:
        return self

    def __next__(self) -> str:
        try:
            line = self._stream.readline(MAX_LINE_CHARS)
        except UnicodeDecodeError as exc:
            raise CsvFileError(
                f"not UTF-8 text: byte {exc.object[exc.start : exc.start + 1]!r} after line {self._read} "
                "(save the file as CSV UTF-8)"
            ) from exc
        if not line:
            raise StopIteration
        self._read += 1
        if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            raise CsvFileError(
                f"line {self._read} is longer than {MAX_LINE_CHARS} characters: not a CSV export of CRM data"
            )
        self._record_chars += len(line)
        if self._record_chars > MAX_RECORD_CHARS:
            raise CsvFileError(
                f"line {self._read}: a row longer than {MAX_RECORD_CHARS} characters (an unclosed quote?)"
            )
        return line

    def start_record(self) -> None:
        self._record_chars = 0
