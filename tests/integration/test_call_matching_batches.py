"""What a batch of calls from new customers costs the database: the same number of statements for 5
calls as for 40, answered or missed (their callback tasks opened together), and the same facts as one
call at a time (each number its own lead, each call on its number's lead, each lead.created queued once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.record import CallRecord, CallStatus
from calltracking.calls.repository import save_calls
from calltracking.config import CrmSettings, TrackingSettings
from calltracking.crm.call_matching import CallMatcher
from calltracking.store.tables import CallbackRow, CallMatchRow, EntityRow, WebhookDeliveryRow
from calltracking.webhooks.repository import create_webhook
from calltracking.webhooks.roster import WebhookRoster
from tests.helpers.databases import Statements
from tests.helpers.factories import make_call


def new_customers(first: int, count: int, *, missed: bool = False) -> list[CallRecord]:
    calls = []
    for n in range(first, first + count):
        number = f"+7916{n:07d}"
        call = make_call(n, caller=number, caller_number=number)
        if missed:
            call = make_call(
                n,
                caller=number,
                caller_number=number,
                status=CallStatus.MISSED,
                answered_at=None,
                answered_by=None,
                talk_seconds=0.0,
                ended_at=call.started_at + timedelta(seconds=20),
            )
        calls.append(call)
    return calls


async def match_batch(
    sessions: async_sessionmaker[AsyncSession], matcher: CallMatcher, calls: list[CallRecord]
) -> int:
    """Statements the matcher sent for this batch (the calls themselves are written first, uncounted)."""
    statements = Statements(sessions)
    async with sessions.begin() as session:
        ids = await save_calls(session, calls)
        before = statements.count
        await matcher(session, calls, ids)
        return statements.count - before


async def test_a_batch_of_new_customers_costs_the_same_statements_whatever_its_size(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # A roster that stays fresh for the test: the first batch reads the webhooks table once, the rest not.
    matcher = CallMatcher(CrmSettings(), TrackingSettings(), roster=WebhookRoster(max_age_seconds=3600))
    await match_batch(sessions, matcher, new_customers(300, 1))

    small = await match_batch(sessions, matcher, new_customers(1, 5))
    large = await match_batch(sessions, matcher, new_customers(100, 40))
    few_missed = await match_batch(sessions, matcher, new_customers(200, 5, missed=True))
    many_missed = await match_batch(sessions, matcher, new_customers(220, 40, missed=True))

    assert large == small
    assert many_missed == few_missed
    async with sessions() as session:
        leads = (await session.execute(select(func.count()).select_from(EntityRow))).scalar_one()
        landed = (
            await session.execute(
                select(func.count())
                .select_from(CallMatchRow)
                .join(EntityRow, EntityRow.id == CallMatchRow.entity_id)
                .where(EntityRow.external_id == "ct-" + func.substr(CallMatchRow.number, 2))
            )
        ).scalar_one()
        tasks = (await session.execute(select(func.count()).select_from(CallbackRow))).scalar_one()
    assert (leads, landed, tasks) == (91, 91, 45)


async def test_lead_created_is_queued_once_per_new_lead_for_a_subscriber(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await create_webhook(
            session,
            url="https://crm.example/hook",
            events=["lead.created"],
            secret="s" * 32,
            description=None,
            now=datetime.now(UTC),
        )
    matcher = CallMatcher(CrmSettings(), TrackingSettings(), roster=WebhookRoster())
    calls = new_customers(1, 6)
    # The same customer calling twice in one batch is one new lead.
    calls.append(make_call(50, caller=calls[0].caller, caller_number=calls[0].caller_number))

    await match_batch(sessions, matcher, calls)
    await match_batch(sessions, matcher, calls)  # written again (a replay): nothing new

    async with sessions() as session:
        queued = (
            await session.execute(select(WebhookDeliveryRow.event_id).order_by(WebhookDeliveryRow.event_id))
        ).scalars()
        assert [event_id.split(":")[0] for event_id in queued] == ["lead.created"] * 6
