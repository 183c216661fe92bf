"""`calltracking import` as an admin runs it for the first load of a CRM, on both databases. The CLI runs
its own event loop, so it runs in a worker thread while the test reads the database from its loop."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.app.cli import main
from calltracking.calls.repository import save_calls
from calltracking.config import CrmSettings, TrackingSettings
from calltracking.crm.call_matching import CallMatcher
from calltracking.crm.loading import CHUNK_ROWS
from calltracking.crm.match_repository import get_matches
from calltracking.crm.mirror import EntityKind
from calltracking.crm.repository import get_deal, get_manager, get_party
from calltracking.store.tables import EntityPhoneRow, EntityRow
from tests.helpers.factories import make_call

CONTACTS = (
    "external_id,name,owner,phones\n"
    'c-1,"Orlov, Ivan",m-anna,8 (916) 123-45-67\n'
    "c 2,Bad Id,,+7 903 555-01-02\n"
    "c-3,Olga,,+7 916 1234567;12345\n"
)


async def run_import(
    capsys: pytest.CaptureFixture[str], url: str, kind: str, path: Path
) -> tuple[int, dict[str, Any] | None, str]:
    code = await asyncio.to_thread(main, ["import", kind, str(path), "--database", url])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else None, err


def sqlite_url(tmp_path: Path) -> str:
    """For tests refused before the database is opened."""
    return f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"


def write(tmp_path: Path, text: str, name: str = "crm.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def count_rows(sessions: async_sessionmaker[AsyncSession], table: type[Any]) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_bad_row_is_reported_by_line_and_the_good_rows_load(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report, _ = await run_import(capsys, database_url, "contacts", write(tmp_path, CONTACTS))

    assert code == 1
    assert report is not None
    assert {key: report[key] for key in ("kind", "rows", "created", "updated", "rejected")} == {
        "kind": "contacts",
        "rows": 3,
        "created": 2,
        "updated": 0,
        "rejected": 1,
    }
    [error] = report["errors"]
    assert (error["line"], error["external_id"]) == (3, "c 2")
    assert error["errors"][0].startswith("external_id:")
    async with sessions() as session:
        ivan = await get_party(session, EntityKind.CONTACT, "c-1")
        olga = await get_party(session, EntityKind.CONTACT, "c-3")
    assert ivan is not None and (ivan.name, ivan.owner) == ("Orlov, Ivan", "m-anna")
    assert olga is not None and [(p.raw, p.e164) for p in olga.phones] == [
        ("+7 916 1234567", "+79161234567"),
        ("12345", None),
    ]
    assert await count_rows(sessions, EntityRow) == 2


async def test_the_same_file_twice_updates_and_duplicates_nothing(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, CONTACTS)

    _, first, _ = await run_import(capsys, database_url, "contacts", path)
    _, second, _ = await run_import(capsys, database_url, "contacts", path)

    assert first is not None and second is not None
    assert (first["created"], first["updated"]) == (2, 0)
    assert (second["created"], second["updated"], second["rejected"]) == (0, 2, 1)
    assert await count_rows(sessions, EntityRow) == 2
    assert await count_rows(sessions, EntityPhoneRow) == 3


async def test_two_spellings_of_a_number_are_the_same_number(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, "external_id,phones\nc-1,8 (916) 123-45-67\nc-2,+7 916 1234567\n")

    code, _, _ = await run_import(capsys, database_url, "contacts", path)

    assert code == 0
    async with sessions() as session:
        first = await get_party(session, EntityKind.CONTACT, "c-1")
        second = await get_party(session, EntityKind.CONTACT, "c-2")
    assert first is not None and second is not None
    assert [p.e164 for p in first.phones] == [p.e164 for p in second.phones] == ["+79161234567"]


async def test_a_call_logged_before_the_import_lands_on_the_imported_contact(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    call = make_call(1, caller="89161234567", caller_number="+79161234567")
    async with sessions.begin() as session:
        [call_id] = await save_calls(session, [call])
        await CallMatcher(CrmSettings(), TrackingSettings())(session, [call], [call_id])
    async with sessions() as session:
        before = (await get_matches(session, [call_id]))[call_id]
        auto_lead = await get_party(session, EntityKind.LEAD, "ct-79161234567")
    assert auto_lead is not None and before.entity_id == auto_lead.id

    code, _, _ = await run_import(capsys, database_url, "contacts", write(tmp_path, CONTACTS))

    assert code == 1
    async with sessions() as session:
        after = (await get_matches(session, [call_id]))[call_id]
        ivan = await get_party(session, EntityKind.CONTACT, "c-1")
    assert ivan is not None and after.entity_id == ivan.id
    assert {candidate["external_id"] for candidate in after.candidates} == {"c-1", "c-3", "ct-79161234567"}


async def test_managers_and_deals_load_through_the_same_command(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    managers = write(tmp_path, "external_id,name,extensions\nm-anna,Anna Petrova,101;201\n", "managers.csv")
    deals = write(
        tmp_path,
        "external_id,contact,amount,currency,closed_at,is_won\nd-1,c-1,1500.50,RUB,2026-11-22T12:00:00Z,yes\n",
        "deals.csv",
    )

    assert (await run_import(capsys, database_url, "managers", managers))[0] == 0
    assert (await run_import(capsys, database_url, "deals", deals))[0] == 0

    async with sessions() as session:
        anna = await get_manager(session, "m-anna")
        deal = await get_deal(session, "d-1")
    assert anna is not None and anna.extensions == ("101", "201")
    assert deal is not None and (deal.amount, deal.is_won, deal.is_open) == (Decimal("1500.50"), True, False)


async def test_a_file_broken_after_the_first_chunk_loads_nothing(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = "".join(f"c-{n},Contact {n}\n" for n in range(CHUNK_ROWS + 10))
    path = tmp_path / "export.csv"
    path.write_bytes(("external_id,name\n" + good).encode() + "c-last,Иван\n".encode("cp1251"))

    code, report, err = await run_import(capsys, database_url, "contacts", path)

    assert (code, report) == (2, None)
    assert "not UTF-8 text" in err and "Traceback" not in err
    assert await count_rows(sessions, EntityRow) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text"),
        (b"external_id,name,email\nc-1,x,x@example.com\n", "unknown column(s) for contacts: 'email'"),
        (b"external_id\n" + b"7" * 200_000, "line 2 is longer than"),
    ],
)
async def test_a_hostile_file_is_a_clear_error_not_a_traceback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    message: str,
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(content)

    code, report, err = await run_import(capsys, sqlite_url(tmp_path), "contacts", path)

    assert (code, report) == (2, None)
    assert err.startswith("calltracking: ") and message in err and "Traceback" not in err


async def test_a_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await run_import(capsys, sqlite_url(tmp_path), "contacts", tmp_path / "nope.csv")

    assert code == 2 and "cannot read" in err
