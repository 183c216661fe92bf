"""First-time callers racing: many writers matching calls from the same unknown numbers at once still make one
lead and one open callback task per number. On PostgreSQL the writers are concurrent transactions on several
connections; on SQLite they queue on the database lock."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.app.runtime import call_pipeline
from calltracking.calls.record import CallRecord, CallStatus, EntityKind
from calltracking.calls.repository import list_calls, save_calls
from calltracking.config import CrmSettings, TrackingSettings
from calltracking.crm.call_matching import CallMatcher
from calltracking.crm.callback_repository import list_callbacks
from calltracking.crm.callbacks import CallbackState
from calltracking.crm.match_repository import StoredMatch, get_matches
from calltracking.crm.mirror import Entity, EntityOrigin, auto_lead_id
from calltracking.crm.repository import list_leads
from tests.helpers.crm import seed_crm
from tests.helpers.factories import make_call
from tests.helpers.listening import database_settings

NUMBERS = tuple(f"+7916555{k:04d}" for k in range(10))
CALLS_PER_NUMBER = 5
MATCHER = CallMatcher(CrmSettings(), TrackingSettings())


def first_time_calls() -> list[CallRecord]:
    """50 inbound calls, 5 from each number: the first half dialled in as `+7...`, the second half as
    `8...` (the assembler stores the E.164 form in `caller_number` either way)."""
    count = len(NUMBERS) * CALLS_PER_NUMBER
    calls = []
    for n in range(count):
        number = NUMBERS[n % len(NUMBERS)]
        raw = number if n < count // 2 else "8" + number.removeprefix("+7")
        calls.append(make_call(n + 1, caller=raw, caller_number=number))
    return calls


async def write_each_in_its_own_transaction(
    sessions: async_sessionmaker[AsyncSession], calls: list[CallRecord]
) -> None:
    """One task and one transaction per call, all at once. Calls from the same number are started side by
    side, so the transactions holding the pool's connections at the same moment race on the same numbers
    (started in number order, they would mostly hold different ones)."""

    async def write(call: CallRecord) -> None:
        async with sessions.begin() as session:
            ids = await save_calls(session, [call])
            await MATCHER(session, [call], ids)

    side_by_side = sorted(calls, key=lambda call: call.external_number or "")
    await asyncio.gather(*(write(call) for call in side_by_side))


async def leads_and_matches(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[list[Entity], dict[str, int], dict[int, StoredMatch]]:
    """Every lead, the call ids by PBX call id, and every call's match."""
    async with sessions() as session:
        leads = await list_leads(session, created_since=None, after_id=None, limit=1000)
        stored = await list_calls(session)
        matches = await get_matches(session, [s.id for s in stored])
    call_ids = {s.call.pbx_call_id: s.id for s in stored}
    return leads, call_ids, matches


def assert_one_lead_per_number(leads: list[Entity], matches: dict[int, StoredMatch], calls: int) -> None:
    assert sorted(lead.external_id for lead in leads) == sorted(auto_lead_id(n) for n in NUMBERS)
    assert {(lead.kind, lead.origin) for lead in leads} == {(EntityKind.LEAD, EntityOrigin.CALL)}
    lead_of_number = {}
    for lead in leads:
        [phone] = lead.phones
        assert phone.e164 is not None
        lead_of_number[phone.e164] = lead.id
    assert sorted(lead_of_number) == sorted(NUMBERS)
    assert len(matches) == calls
    assert all(match.entity_id == lead_of_number[match.number] for match in matches.values())
    # Exactly one call of each number says it created the lead, and it is the lead's first call.
    creators = {match.number: match.call_id for match in matches.values() if match.lead_created}
    assert sorted(creators) == sorted(NUMBERS)
    assert {lead.first_call_id for lead in leads} == set(creators.values())


async def test_fifty_concurrent_first_time_calls_from_ten_numbers_create_ten_leads(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    calls = first_time_calls()
    await write_each_in_its_own_transaction(sessions, calls)

    leads, ids, matches = await leads_and_matches(sessions)
    assert len(ids) == len(calls)
    assert_one_lead_per_number(leads, matches, len(calls))
    for call in calls:
        assert matches[ids[call.pbx_call_id]].number == call.caller_number


@pytest.mark.parametrize("batch_size", [7, 500])
async def test_fifty_first_time_calls_through_one_pipeline_create_ten_leads(
    database_url: str, tmp_path: Path, batch_size: int
) -> None:
    calls = first_time_calls()
    settings = database_settings(database_url, tmp_path, batch_size=batch_size)
    async with call_pipeline(settings) as pipeline:
        for call in calls:
            pipeline.call_log.submit(call)
        await asyncio.wait_for(pipeline.call_log.flush(), 60)
        leads, ids, matches = await leads_and_matches(pipeline.sessionmaker)
    assert len(ids) == len(calls)
    assert_one_lead_per_number(leads, matches, len(calls))


async def test_concurrent_missed_calls_from_one_number_open_one_callback_task(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    numbers = NUMBERS[:5]
    misses_per_number = 6
    calls = [
        make_call(
            n + 1,
            caller=numbers[n % len(numbers)],
            caller_number=numbers[n % len(numbers)],
            status=CallStatus.NO_ANSWER,
            answered_by=None,
            answered_at=None,
            talk_seconds=0.0,
        )
        for n in range(len(numbers) * misses_per_number)
    ]
    await write_each_in_its_own_transaction(sessions, calls)

    async with sessions() as session:
        tasks = await list_callbacks(
            session, state=None, due_before=None, manager=None, after_id=None, limit=1000
        )
        stored = await list_calls(session)
        matches = await get_matches(session, [s.id for s in stored])
    ids = {s.call.pbx_call_id: s.id for s in stored}
    assert sorted(t.number for t in tasks) == sorted(numbers)
    assert {t.state for t in tasks} == {CallbackState.OPEN}
    assert {t.number: t.missed_calls for t in tasks} == dict.fromkeys(numbers, misses_per_number)
    task_of_number = {t.number: t.id for t in tasks}
    assert len(matches) == len(calls)
    assert all(match.callback_id == task_of_number[match.number] for match in matches.values())
    assert Counter(match.callback_id for match in matches.values()) == Counter(
        dict.fromkeys(task_of_number.values(), misses_per_number)
    )
    # Whichever miss was written first opened the task and starts its SLA; the last miss stays the last,
    # whatever order the writers committed in.
    ended_at = {ids[c.pbx_call_id]: c.ended_at for c in calls}
    for task in tasks:
        misses = sorted(ended_at[m.call_id] for m in matches.values() if m.number == task.number)
        assert task.missed_call_id is not None
        assert task.missed_at == ended_at[task.missed_call_id]
        assert task.due_at == task.missed_at + timedelta(minutes=CrmSettings().callback_due_minutes)
        assert task.last_missed_at == misses[-1]


async def test_concurrent_leads_nobody_answered_are_dealt_out_in_turn(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed_crm(sessions)
    # Answered at an extension no manager has, on a DID with no default manager: round-robin decides.
    calls = [replace(call, answered_by="199", manager="199", rang=("199",)) for call in first_time_calls()]
    await write_each_in_its_own_transaction(sessions, calls)

    leads, _, _ = await leads_and_matches(sessions)
    owners = Counter(lead.owner for lead in leads if lead.origin is EntityOrigin.CALL)
    # Ten leads over three managers, one turn each in CRM-id order from the first: 4, 3, 3.
    assert owners == {"m-anna": 4, "m-boris": 3, "m-vera": 3}
