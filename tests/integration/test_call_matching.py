"""The real captures, replayed in the order they happened into a CRM mirror that knows two of the callers:
every external call lands on an entity, every unknown number gets exactly one lead, missed and busy calls
open callback tasks, and a later answered outbound call to a missed number closes its task."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.app.replay import replay_captures
from calltracking.calls.record import CallRecord, CallStatus, Direction
from calltracking.calls.repository import list_calls, save_calls
from calltracking.config import CrmSettings, PbxSettings
from calltracking.crm.call_matching import CallMatcher
from calltracking.crm.call_webhooks import completed_queuer
from calltracking.crm.mirror import EntityKind
from calltracking.crm.sync import load_parties, remove_party
from calltracking.store.engine import create_engine, create_sessionmaker, migrate
from calltracking.store.tables import (
    CallbackRow,
    CallMatchRow,
    CallRow,
    EntityPhoneRow,
    EntityRow,
    WebhookDeliveryRow,
)
from calltracking.webhooks.repository import create_webhook
from tests.helpers.captures import capture, story_captures
from tests.helpers.crm import ALL_LEADS, TRACKING, make_lead, seed_crm
from tests.helpers.factories import make_call
from tests.helpers.listening import database_settings

UNKNOWN_NUMBERS = {
    "+79161234567": "m-anna",  # answered by 101 on its first call
    "+79035550101": "m-boris",  # missed: the DID's default manager
    "+79035550103": "m-boris",  # caller gave up: the DID's default manager
    "+79261112244": "m-anna",  # queue abandoned, DID without a default: round-robin starts at the first
    "+79169990000": "m-boris",  # outbound, placed by 102
    "+79165550000": "m-vera",  # click-to-call from 103
}
# A return call placed later from another PBX (a branch office), by 101, to the number that missed first.
CALLBACK_CAPTURE = ("outbound_answered", b"89161234567", b"89035550101")


def in_time_order() -> list[bytes]:
    def first_timestamp(name: str) -> bytes:
        data = capture(name)
        return data[data.index(b"Timestamp: ") :][:30]

    return [capture(name) for name in sorted(story_captures(), key=first_timestamp)]


@dataclass
class Office:
    url: str
    tmp_path: Path
    sessions: async_sessionmaker[AsyncSession]

    async def replay(self, captures: list[bytes], pbx: str = "office", crm: CrmSettings = ALL_LEADS) -> None:
        await replay_captures(
            captures,
            PbxSettings(name=pbx),
            database_settings(self.url, self.tmp_path),
            self.tmp_path / f"spool-{pbx}",
            crm=crm,
            tracking=TRACKING,
        )

    async def rows(self, statement: Any) -> list[Any]:
        async with self.sessions() as session:
            return list((await session.execute(statement)).all())


@pytest.fixture
async def office(database_url: str, tmp_path: Path) -> AsyncIterator[Office]:
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = create_sessionmaker(engine)
    await seed_crm(sessions)
    try:
        yield Office(database_url, tmp_path, sessions)
    finally:
        await engine.dispose()


LANDED = (
    select(CallRow.direction, CallRow.status, CallMatchRow.number, EntityRow.kind, EntityRow.external_id)
    .join(CallMatchRow, CallMatchRow.call_id == CallRow.id)
    .join(EntityRow, EntityRow.id == CallMatchRow.entity_id, isouter=True)
    .order_by(CallRow.started_at)
)
LEADS = select(EntityRow.external_id, EntityRow.owner, EntityRow.source, EntityRow.origin).where(
    EntityRow.kind == "lead"
)
TASKS = select(
    CallbackRow.number,
    CallbackRow.state,
    CallbackRow.manager,
    CallbackRow.missed_calls,
    CallbackRow.returned_by,
).order_by(CallbackRow.number)


async def test_replayed_captures_land_every_external_call_on_one_entity(office: Office) -> None:
    await office.replay(in_time_order())

    landed = await office.rows(LANDED)
    assert all(kind is not None for *_, kind, _ in landed)
    by_number = {number: (kind, external_id) for _, _, number, kind, external_id in landed}
    assert (
        by_number
        == {
            "+79261112233": ("contact", "c-100"),  # the CRM has it as "8 (926) 111-22-33"
            "+79035550102": ("company", "co-7"),  # the CRM has it as "+7 903 555-01-02"
            **{number: ("lead", "ct-" + number[1:]) for number in UNKNOWN_NUMBERS},
        }
    )
    assert len(landed) == 11  # the internal call has no customer number and lands nowhere

    leads = await office.rows(LEADS)
    assert sorted((external_id, owner) for external_id, owner, _, _ in leads) == sorted(
        ("ct-" + number[1:], owner) for number, owner in UNKNOWN_NUMBERS.items()
    )
    sources = {external_id: source for external_id, _, source, _ in leads}
    assert sources["ct-79035550101"] == "google"  # DID 74951110001 in the tracking settings
    assert sources["ct-79261112244"] is None


async def test_missed_and_busy_calls_open_tasks_and_a_later_return_call_closes_one(office: Office) -> None:
    await office.replay(in_time_order())
    assert await office.rows(TASKS) == [
        ("+79035550101", "open", "m-boris", 1, None),
        ("+79035550102", "open", "m-boris", 1, None),  # the company's owner
        ("+79035550103", "open", "m-boris", 1, None),
        ("+79261112244", "open", "m-anna", 1, None),  # the round-robin lead's owner
    ]

    name, dialled, returned = CALLBACK_CAPTURE
    await office.replay([capture(name).replace(dialled, returned)], pbx="branch")

    tasks = await office.rows(TASKS)
    assert tasks[0] == ("+79035550101", "done", "m-boris", 1, "m-anna")
    assert [state for _, state, *_ in tasks[1:]] == ["open", "open", "open"]
    [(seconds, closed_by)] = await office.rows(
        select(CallbackRow.seconds_to_return, CallbackRow.closed_by_call_id).where(
            CallbackRow.state == "done"
        )
    )
    [(callback_call,)] = await office.rows(select(CallRow.id).where(CallRow.pbx == "branch"))
    assert closed_by == callback_call
    # From the end of the missed call (…945 + 12 s of ringing) to the answer of the return call (…2003+).
    assert 40 < seconds < 70


async def test_replaying_the_same_captures_again_changes_nothing(office: Office) -> None:
    await office.replay(in_time_order())
    before = (await office.rows(LEADS), await office.rows(TASKS), await office.rows(LANDED))
    await office.replay(in_time_order())
    after = (await office.rows(LEADS), await office.rows(TASKS), await office.rows(LANDED))
    assert after == before
    [(phones,)] = await office.rows(select(func.count()).select_from(EntityPhoneRow))
    assert phones == 2 + len(UNKNOWN_NUMBERS)


async def test_each_new_lead_and_each_task_is_owed_to_the_crm_once(office: Office) -> None:
    async with office.sessions.begin() as session:
        await create_webhook(
            session,
            url="http://127.0.0.1:9/crm",
            events=["lead.created", "callback.opened"],
            secret="s" * 32,
            description=None,
            now=datetime.now(UTC),
        )
    await office.replay(in_time_order())
    await office.replay(in_time_order())
    counts = dict(
        await office.rows(
            select(WebhookDeliveryRow.event_type, func.count()).group_by(WebhookDeliveryRow.event_type)
        )
    )
    assert counts == {"lead.created": len(UNKNOWN_NUMBERS), "callback.opened": 4}
    payloads = [payload for (payload,) in await office.rows(select(WebhookDeliveryRow.payload))]
    created = [p["data"] for p in payloads if p["type"] == "lead.created"]
    assert {lead["external_id"] for lead in created} == {"ct-" + number[1:] for number in UNKNOWN_NUMBERS}


async def test_call_completed_names_the_entity_the_call_landed_on(office: Office) -> None:
    await office.replay(in_time_order())
    async with office.sessions.begin() as session:
        [stored] = [s for s in await list_calls(session) if s.call.caller == "+79261112233"]
        await create_webhook(
            session,
            url="http://127.0.0.1:9/crm",
            events=["call.completed"],
            secret="s" * 32,
            description=None,
            now=datetime.now(UTC),
        )
        await completed_queuer()(session, [stored.call], [stored.id])
    [(payload,)] = await office.rows(select(WebhookDeliveryRow.payload))
    entity = payload["data"]["entity"]
    assert (entity["kind"], entity["external_id"], entity["name"]) == ("contact", "c-100", "Ivan Orlov")


async def test_default_switches_make_no_lead_for_numbers_managers_dial(office: Office) -> None:
    await office.replay(in_time_order(), crm=CrmSettings())
    leads = {external_id for external_id, *_ in await office.rows(LEADS)}
    assert leads == {"ct-79161234567", "ct-79035550101", "ct-79035550103", "ct-79261112244"}
    unmatched = [number for _, _, number, kind, _ in await office.rows(LANDED) if kind is None]
    assert sorted(unmatched) == ["+79165550000", "+79169990000"]


async def test_a_lead_the_crm_creates_after_the_call_gets_its_history(office: Office) -> None:
    await office.replay(in_time_order(), crm=CrmSettings())
    now = datetime.now(UTC)
    async with office.sessions.begin() as session:
        await load_parties(
            session, [make_lead("crm-77", "8 916 999-00-00", name="Supplier")], CrmSettings(), now
        )
    landed = {number: external_id for _, _, number, _, external_id in await office.rows(LANDED)}
    assert landed["+79169990000"] == "crm-77"

    async with office.sessions.begin() as session:
        assert await remove_party(session, EntityKind.LEAD, "crm-77", CrmSettings(), now)
    landed = {number: external_id for _, _, number, _, external_id in await office.rows(LANDED)}
    assert landed["+79169990000"] is None


async def test_a_number_stored_in_an_odd_format_matches_by_its_last_digits(office: Office) -> None:
    await office.replay(in_time_order(), crm=CrmSettings())
    now = datetime.now(UTC)
    async with office.sessions.begin() as session:
        # Not a valid number for phonenumbers (a stray digit in front), but its last ten digits are right.
        await load_parties(session, [make_lead("crm-78", "5 916 555 00 00", name="Odd")], CrmSettings(), now)
    [(matched_by, external_id)] = await office.rows(
        select(CallMatchRow.matched_by, EntityRow.external_id)
        .join(EntityRow, EntityRow.id == CallMatchRow.entity_id)
        .where(CallMatchRow.number == "+79165550000")
    )
    assert (matched_by, external_id) == ("tail", "crm-78")


async def test_a_lead_the_crm_deleted_is_not_made_again_for_the_next_call(office: Office) -> None:
    await office.replay(in_time_order())
    async with office.sessions.begin() as session:
        assert await remove_party(
            session, EntityKind.LEAD, "ct-79035550101", CrmSettings(), datetime.now(UTC)
        )
    await office.replay([capture("inbound_single_missed")], pbx="branch")

    leads = await office.rows(
        select(EntityRow.external_id, EntityRow.is_active).where(EntityRow.kind == "lead")
    )
    assert ("ct-79035550101", False) in leads
    assert len(leads) == len(UNKNOWN_NUMBERS)
    [(entity_id,)] = await office.rows(
        select(CallMatchRow.entity_id)
        .join(CallRow, CallRow.id == CallMatchRow.call_id)
        .where(CallRow.pbx == "branch")
    )
    assert entity_id is None


async def test_one_batch_counts_repeated_misses_once_per_task_in_call_order(office: Office) -> None:
    def missed(n: int) -> CallRecord:
        return make_call(n, status=CallStatus.MISSED, answered_by=None, answered_at=None, talk_seconds=0.0)

    # Three misses, the manager calls back, one more miss: all in one write.
    calls = [
        missed(1),
        missed(2),
        missed(3),
        make_call(
            4,
            direction=Direction.OUTBOUND,
            caller="101",
            callee="+79161234567",
            caller_number=None,
            callee_number="+79161234567",
        ),
        missed(5),
    ]
    async with office.sessions.begin() as session:
        ids = await save_calls(session, calls)
        await CallMatcher(CrmSettings(), TRACKING)(session, calls, ids)
    assert await office.rows(
        select(CallbackRow.state, CallbackRow.missed_calls, CallbackRow.closed_by_call_id).order_by(
            CallbackRow.id
        )
    ) == [("done", 3, ids[3]), ("open", 1, None)]
    callback_ids = [
        row[0] for row in await office.rows(select(CallMatchRow.callback_id).order_by(CallMatchRow.call_id))
    ]
    first, second = [row[0] for row in await office.rows(select(CallbackRow.id).order_by(CallbackRow.id))]
    assert callback_ids == [first, first, first, first, second]
