"""A ringing call names the caller's CRM entity before anyone answers: on the WebSocket hub and in the
call.ringing webhook."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.schemas import call_payload
from calltracking.calls.hub import CallEventHub
from calltracking.calls.record import CallCompleted, CallProgress, Direction, ProgressKind, StoredCall
from calltracking.calls.repository import save_calls
from calltracking.config import CrmSettings, TrackingSettings, load_settings
from calltracking.crm.call_matching import CallMatcher
from calltracking.crm.call_webhooks import progress_event
from calltracking.crm.lookup import screen_pop_enricher
from calltracking.crm.lookup_repository import LookupHit, open_lookup_reader
from calltracking.crm.sync import load_parties
from tests.helpers.crm import make_contact
from tests.helpers.factories import make_call

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def ringing(caller: str, direction: Direction = Direction.INBOUND) -> CallProgress:
    return CallProgress(
        kind=ProgressKind.RINGING,
        pbx="office",
        pbx_call_id="1795349935.7",
        at=AT,
        direction=direction,
        caller=caller,
        callee="101" if direction is Direction.INBOUND else "89161234567",
        extension="101",
    )


async def test_a_ringing_call_from_a_known_number_names_its_contact(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await load_parties(session, [make_contact("c-1", "+7 916 123-45-67", name="Ivan")], CrmSettings(), AT)
    settings = load_settings(environ={}, overrides={"pbxs": [{"name": "office"}]})
    reader = await open_lookup_reader(sessions)
    hub = CallEventHub(enrich=screen_pop_enricher(reader, settings, sessions))
    runner = asyncio.create_task(hub.run())
    try:
        with hub.subscription() as subscription:
            hub.publish(ringing("89161234567"))
            hub.publish(ringing("+79990001122"))
            hub.publish(ringing("101", Direction.OUTBOUND))
            known, unknown, outbound = [await subscription.next() for _ in range(3)]
    finally:
        runner.cancel()
        await reader.close()
    assert isinstance(known, CallProgress) and known.entity is not None
    assert (known.entity.kind.value, known.entity.external_id, known.entity.name) == (
        "contact",
        "c-1",
        "Ivan",
    )
    assert isinstance(unknown, CallProgress) and unknown.entity is None
    # Outbound, the customer is the callee (89161234567 here).
    assert isinstance(outbound, CallProgress) and outbound.entity is not None
    webhook = progress_event(known)
    assert webhook is not None and webhook.data["entity"]["external_id"] == "c-1"


async def test_a_completed_call_goes_out_naming_the_entity_it_landed_on(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    call = make_call(1, caller="89161234567", caller_number="+79161234567")
    async with sessions.begin() as session:
        await load_parties(session, [make_contact("c-1", "+7 916 123-45-67", name="Ivan")], CrmSettings(), AT)
        [call_id] = await save_calls(session, [call])
        await CallMatcher(CrmSettings(), TrackingSettings())(session, [call], [call_id])
    reader = await open_lookup_reader(sessions)
    settings = load_settings(environ={}, overrides={"pbxs": [{"name": "office"}]})
    hub = CallEventHub(enrich=screen_pop_enricher(reader, settings, sessions))
    runner = asyncio.create_task(hub.run())
    try:
        with hub.subscription() as subscription:
            hub.publish(CallCompleted(call_id=call_id, call=call))
            completed = await subscription.next()
    finally:
        runner.cancel()
        await reader.close()
    assert isinstance(completed, CallCompleted) and completed.entity is not None
    assert (
        completed.entity.external_id,
        call_payload(StoredCall(call_id, call), completed.entity)["entity"],
    ) == (
        "c-1",
        {"id": 1, "kind": "contact", "external_id": "c-1", "name": "Ivan"},
    )


async def test_numbers_looked_up_together_find_what_each_alone_finds(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        parties = [
            make_contact("c-1", "+7 916 123-45-67", name="Ivan"),
            make_contact("c-2", "+49 30 16555 4433", name="Olga"),  # shares its last 9 digits below
            make_contact("c-3", "+7 495 111-22-33", name="Twin A"),
            make_contact("c-4", "+7 495 111-22-33", name="Twin B"),
        ]
        await load_parties(session, parties, CrmSettings(), AT)
    numbers = ["+79161234567", "+79165554433", "+74951112233", "+79990001122", "+7916555"]
    reader = await open_lookup_reader(sessions)
    try:
        alone = {number: await reader.hits(number, 9) for number in numbers}
        together = await reader.hits_many(numbers, 9)
        assert await reader.hits_many([], 9) == {}
    finally:
        await reader.close()
    assert together == alone
    assert [len(alone[n]) for n in numbers] == [1, 1, 2, 0, 0]


async def test_a_burst_of_new_callers_gets_their_entities_in_one_query(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await load_parties(session, [make_contact("c-1", "+7 916 123-45-67", name="Ivan")], CrmSettings(), AT)
    settings = load_settings(environ={}, overrides={"pbxs": [{"name": "office"}]})
    reader = await open_lookup_reader(sessions)
    asked: list[int] = []
    hits_many = reader.hits_many

    async def counted(e164s: Sequence[str], tail_digits: int) -> dict[str, list[LookupHit]]:
        asked.append(len(e164s))
        return await hits_many(e164s, tail_digits)

    reader.hits_many = counted  # type: ignore[method-assign]
    enrich = screen_pop_enricher(reader, settings, sessions)
    try:
        events = [ringing("89161234567"), *(ringing(f"+7999000{n:04d}") for n in range(30))]
        enriched = await enrich(events)
        # Looked up a moment ago: known without a query, as the hub asks before it waits for one.
        again = enrich.at_once(ringing("89161234567"))
    finally:
        await reader.close()
    assert asked == [31]
    assert [e.entity is not None for e in enriched if isinstance(e, CallProgress)] == [True] + [False] * 30
    assert isinstance(again, CallProgress) and again.entity is not None and again.entity.external_id == "c-1"
