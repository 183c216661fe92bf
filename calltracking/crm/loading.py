"""Loading a CRM export into the mirror (`calltracking import`): the first load of a CRM's data, through
the same upserts the REST API uses, so loading a file twice updates rather than duplicates.

The file is read twice: once to check it is UTF-8, well-formed CSV to its end, and has the right columns,
so a file that would fail half way loads nothing; then chunk by chunk, one transaction per chunk. An
entity and its phones commit together, with the re-match of the calls their numbers had, so a call made
before the CRM was loaded lands on the imported contact.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.config import CrmSettings
from calltracking.crm.call_matching import Clock, rematch, utc_now
from calltracking.crm.csv_import import CrmCsv, CrmInput, CsvChunk, CsvFileError
from calltracking.crm.mirror import CompanyIn, ContactIn, DealIn, ImportKind, LeadIn, ManagerIn, RowError
from calltracking.crm.repository import (
    UpsertResult,
    refresh_statistics,
    upsert_deals,
    upsert_managers,
    upsert_parties,
)
from calltracking.errors import CalltrackingError

log = structlog.get_logger(__name__)

CHUNK_ROWS = 1000
# Row errors listed in the report; all of them are counted.
MAX_LISTED_ERRORS = 1000


class ImportStopped(CalltrackingError):
    """The load stopped part way (the database failed, the file changed): the chunks before are kept."""


@dataclass
class ImportReport:
    kind: ImportKind
    rows: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)

    def count_rejected(self, errors: tuple[RowError, ...]) -> None:
        self.rejected += len(errors)
        self.errors.extend(errors[: max(0, MAX_LISTED_ERRORS - len(self.errors))])

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "rejected": self.rejected,
            "errors": [
                {"line": error.index, "external_id": error.external_id, "errors": list(error.errors)}
                for error in self.errors
            ],
        }


def check_csv_file(kind: ImportKind, path: Path) -> int:
    """Refuse a file that cannot be loaded whole (see `CrmCsv.check_structure`); returns its rows."""
    with _opened(path) as stream:
        return CrmCsv(kind, stream).check_structure()


async def load_csv_file(
    sessions: async_sessionmaker[AsyncSession],
    kind: ImportKind,
    path: Path,
    crm: CrmSettings,
    clock: Clock = utc_now,
) -> ImportReport:
    """Load a file `check_csv_file` accepted. Rows a model refuses are reported and skipped; within the
    file, a later row with the same external_id replaces the earlier one (it counts as an update)."""
    report = ImportReport(kind)
    next_statistics = 1
    with _opened(path) as stream:
        try:
            for number, chunk in enumerate(CrmCsv(kind, stream).chunks(CHUNK_ROWS), start=1):
                await _load_chunk(sessions, chunk, crm, clock, report)
                if number == next_statistics:
                    # A first load grows the tables from nothing: without fresh statistics PostgreSQL
                    # keeps plans made for empty tables (sequential scans) and every chunk gets slower.
                    async with sessions.begin() as session:
                        await refresh_statistics(session)
                    next_statistics *= 2
        except CsvFileError as exc:
            raise ImportStopped(
                f"{exc}; the {report.rows} rows before it were loaded (did the file change while read?)"
            ) from exc
    log.info(
        "crm_import_finished",
        kind=kind,
        rows=report.rows,
        created=report.created,
        updated=report.updated,
        rejected=report.rejected,
    )
    return report


async def _load_chunk(
    sessions: async_sessionmaker[AsyncSession],
    chunk: CsvChunk,
    crm: CrmSettings,
    clock: Clock,
    report: ImportReport,
) -> None:
    if chunk.items:
        now = clock()
        try:
            async with sessions.begin() as session:
                result = await _upsert(session, chunk.items, crm, now)
        except (SQLAlchemyError, OSError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise ImportStopped(
                f"the database refused lines {chunk.first_line}-{chunk.last_line} ({reason}); the "
                f"{report.rows} rows before them were loaded, and loading the file again is safe"
            ) from exc
        report.created += result.created
        report.updated += len(chunk.items) - result.created
    report.rows += chunk.rows
    report.count_rejected(chunk.errors)
    log.info(
        "crm_import_chunk_loaded",
        first_line=chunk.first_line,
        last_line=chunk.last_line,
        loaded=len(chunk.items),
        rejected=len(chunk.errors),
    )


async def _upsert(
    session: AsyncSession, items: tuple[CrmInput, ...], crm: CrmSettings, now: datetime
) -> UpsertResult:
    """A chunk holds one kind; the models are sorted by type so each upsert gets the type it takes."""
    managers = [item for item in items if isinstance(item, ManagerIn)]
    deals = [item for item in items if isinstance(item, DealIn)]
    parties = [item for item in items if isinstance(item, ContactIn | CompanyIn | LeadIn)]
    results = []
    if managers:
        results.append(await upsert_managers(session, managers, now))
    if deals:
        results.append(await upsert_deals(session, deals, now))
    if parties:
        loaded = await upsert_parties(session, parties, crm.default_country, now)
        await rematch(session, loaded.touched_phones, crm, now)
        results.append(loaded)
    return UpsertResult(
        created=sum(result.created for result in results),
        updated=sum(result.updated for result in results),
    )


@contextmanager
def _opened(path: Path) -> Iterator[TextIO]:
    """The file as text for the CSV reader: UTF-8 with or without a BOM, newlines left to the reader."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            yield stream
    except OSError as exc:
        raise CsvFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
