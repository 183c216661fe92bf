"""A constructed October for the stats tests: four managers in two teams, eleven calls around the edges
of the month (the last evening in Moscow is November further east), deals won with and without calls.
The figures the tests expect are counted by hand from what is listed here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.record import CallRecord, CallStatus, Direction
from calltracking.calls.repository import save_calls
from calltracking.config import CrmSettings, TrackingSettings
from calltracking.crm.call_matching import CallMatcher
from calltracking.crm.mirror import ContactIn, DealIn, LeadIn, ManagerIn
from calltracking.crm.repository import upsert_deals, upsert_managers, upsert_parties
from tests.helpers.factories import make_call

NOW = datetime(2026, 11, 30, tzinfo=UTC)
MANAGERS = [
    ManagerIn(external_id="m-anna", name="Anna", extensions=["101"], team="north"),
    ManagerIn(external_id="m-boris", name="Boris", extensions=["102"], team="north"),
    ManagerIn(external_id="m-gleb", name="Gleb", extensions=["104"], team="south"),
    ManagerIn(external_id="m-dina", name="Dina", extensions=["105"], team="south"),
]
TRACKING = TrackingSettings.model_validate({"dids": {"74951110001": {"default_manager": "m-anna"}}})
CUSTOMER = {name: f"+7916000000{i}" for i, name in enumerate("ABCDEFGH", start=1)}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def inbound(
    n: int, start: str, customer: str, by: str | None, ring: float, talk: float, **more: object
) -> CallRecord:
    started = at(start)
    answered = started + timedelta(seconds=ring) if by else None
    ended = started + timedelta(seconds=ring + talk)
    return make_call(
        n,
        caller=CUSTOMER[customer],
        caller_number=CUSTOMER[customer],
        status=CallStatus.ANSWERED if by else CallStatus.MISSED,
        answered_by=by,
        manager=by,
        rang=more.pop("rang", (by,)),
        started_at=started,
        answered_at=answered,
        ended_at=ended,
        ring_seconds=ring,
        talk_seconds=talk,
        **more,
    )


def outbound(n: int, start: str, customer: str, by: str, talk: float | None) -> CallRecord:
    started = at(start)
    answered = started + timedelta(seconds=5) if talk is not None else None
    return make_call(
        n,
        direction=Direction.OUTBOUND,
        status=CallStatus.ANSWERED if talk is not None else CallStatus.NO_ANSWER,
        caller=by,
        caller_number=None,
        callee=CUSTOMER[customer],
        callee_number=CUSTOMER[customer],
        did=None,
        answered_by=None,
        manager=by,
        rang=(),
        started_at=started,
        answered_at=answered,
        ended_at=(answered or started) + timedelta(seconds=talk or 20),
        ring_seconds=5 if talk is not None else 20,
        talk_seconds=talk or 0.0,
    )


CALLS = [
    inbound(1, "2026-10-05T07:00:00", "A", "101", 4, 60),  # Monday 10:00 Moscow
    inbound(2, "2026-10-06T08:00:00", "B", "101", 6, 120),
    inbound(3, "2026-10-07T09:00:00", "A", "101", 2, 30),
    inbound(4, "2026-10-08T10:00:00", "C", None, 20, 0, rang=("101", "102")),  # missed, both rang
    outbound(5, "2026-10-08T10:10:00", "C", "101", 45),  # returns call 4: 585 s after its end
    inbound(6, "2026-10-09T11:00:00", "D", "102", 5, 200),
    outbound(7, "2026-10-09T12:00:00", "E", "102", None),
    make_call(  # internal, Saturday 15:00 Moscow
        8,
        direction=Direction.INTERNAL,
        caller="101",
        caller_number="101",
        callee="102",
        callee_number="102",
        did=None,
        answered_by="102",
        manager="102",
        rang=("102",),
        started_at=at("2026-10-10T12:00:00"),
        answered_at=at("2026-10-10T12:00:03"),
        ended_at=at("2026-10-10T12:01:03"),
        ring_seconds=3,
        talk_seconds=60,
    ),
    outbound(9, "2026-10-12T12:00:00", "F", "109", 10),  # an extension no manager holds
    # 23:30 on 31 October in Moscow, 06:30 on 1 November in Vladivostok.
    inbound(10, "2026-10-31T20:30:00", "G", "102", 3, 50),
    # 23:30 on 30 September in Moscow, 06:30 on 1 October in Vladivostok.
    inbound(11, "2026-09-30T20:30:00", "H", "102", 7, 70),
]


def lead_id(customer: str) -> str:
    return "ct-" + CUSTOMER[customer].lstrip("+")


DEALS = [
    # Gleb sells from his own mobile: two deals won, no call with the customer's number, ever.
    DealIn(
        external_id="d-g1",
        contact="c-x",
        owner="m-gleb",
        amount="1000.00",
        currency="RUB",
        opened_at=at("2026-09-10T10:00:00"),
        closed_at=at("2026-10-14T10:00:00"),
        is_won=True,
    ),
    DealIn(
        external_id="d-g2",
        contact="c-x",
        owner="m-gleb",
        amount="2500.50",
        currency="RUB",
        opened_at=at("2026-09-11T10:00:00"),
        closed_at=at("2026-10-15T10:00:00"),
        is_won=True,
    ),
    # Boris converts customer D's lead: a deal for the lead, won.
    DealIn(
        external_id="d-b1",
        lead=lead_id("D"),
        owner="m-boris",
        amount="5000",
        currency="RUB",
        opened_at=at("2026-10-09T12:00:00"),
        closed_at=at("2026-10-20T12:00:00"),
        is_won=True,
    ),
    # Anna opens one deal that is still open.
    DealIn(external_id="d-a1", lead=None, owner="m-anna", opened_at=at("2026-10-15T10:00:00")),
]


async def write_october(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The month above through the real write path: calls with the matcher, then the CRM's deals."""
    matcher = CallMatcher(CrmSettings(), TRACKING, clock=lambda: NOW)
    async with sessions.begin() as session:
        await upsert_managers(session, MANAGERS, NOW)
        await upsert_parties(session, [ContactIn(external_id="c-x", phones=["+79990000001"])], "RU", NOW)
    for call in sorted(CALLS, key=lambda c: c.ended_at):
        async with sessions.begin() as session:
            ids = await save_calls(session, [call])
            await matcher(session, [call], ids)
    async with sessions.begin() as session:
        await upsert_deals(session, DEALS, NOW)
        # The CRM adopts G's lead as a contact: it names the contact the lead became.
        await upsert_parties(
            session,
            [LeadIn(external_id=lead_id("G"), owner="m-boris", phones=[CUSTOMER["G"]], converted_to="c-g")],
            "RU",
            NOW,
        )
