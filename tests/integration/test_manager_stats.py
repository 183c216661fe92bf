"""The per-manager report on a constructed October, on both databases, through the real write path (the
call upsert keeps the rollups, the matcher makes leads and callback tasks). Every figure below is
counted by hand from the calls and deals listed here."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.record import CallRecord, CallStatus, Direction
from calltracking.calls.repository import save_calls
from calltracking.config import CrmSettings, TrackingSettings
from calltracking.crm.call_matching import CallMatcher
from calltracking.crm.mirror import ContactIn, DealIn, LeadIn, ManagerIn
from calltracking.crm.repository import upsert_deals, upsert_managers, upsert_parties
from calltracking.stats.manager_report import ReportScope, manager_report, manager_series
from calltracking.stats.managers import ManagerLine, ManagerReport
from calltracking.stats.period import BusinessHours, Period
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


@pytest.fixture
async def october(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
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
    return sessions


async def report(
    sessions: async_sessionmaker[AsyncSession], tz: str = "Europe/Moscow", **scope: object
) -> ManagerReport:
    period = Period.parse("2026-10-01", "2026-10-31", tz, today=date(2026, 11, 30))
    async with sessions() as session:
        return await manager_report(session, ReportScope(period=period, **scope))  # type: ignore[arg-type]


def line(result: ManagerReport, key: str) -> ManagerLine:
    return next(item for item in result.managers if item.key == key)


def figures(item: ManagerLine) -> dict[str, object]:
    return {
        "inbound": (item.calls.inbound_received, item.calls.inbound_answered, item.calls.inbound_missed),
        "outbound": (item.calls.outbound_made, item.calls.outbound_answered),
        "internal": item.calls.internal_calls,
        "talk": item.calls.talk_seconds,
        "average_talk": item.average_talk_seconds,
        "average_ring": item.average_ring_seconds,
        "answer_rate": item.answer_rate,
        "unique_customers": item.unique_customers,
        "callbacks": (item.callback_tasks, item.callbacks_returned, item.callbacks_returned_in_time),
        "median_return": item.median_seconds_to_return,
        "leads": (item.leads.created, item.leads.converted, item.conversion_rate),
        "deals": (item.deals.opened, item.deals.won, item.amounts_won()),
        "calls_per_won_deal": item.calls_per_won_deal,
        "flags": (item.deals_without_calls, item.inactive),
        "won_without_calls": item.won_deals_without_calls,
    }


async def test_every_figure_of_a_month_in_moscow(october: async_sessionmaker[AsyncSession]) -> None:
    result = await report(october)
    assert [item.key for item in result.managers] == ["m-anna", "m-boris", "m-dina", "m-gleb", "ext:109"]
    assert figures(line(result, "m-anna")) == {
        "inbound": (4, 3, 1),
        "outbound": (1, 1),
        "internal": 1,
        "talk": 255.0,
        "average_talk": 63.75,
        "average_ring": 4.0,
        "answer_rate": 0.75,
        "unique_customers": 3,
        "callbacks": (1, 1, 1),
        "median_return": 585.0,
        "leads": (3, 0, 0.0),
        "deals": (1, 0, {}),
        "calls_per_won_deal": None,
        "flags": (False, False),
        "won_without_calls": (),
    }
    assert figures(line(result, "m-boris")) == {
        "inbound": (3, 2, 1),
        "outbound": (1, 0),
        "internal": 1,
        "talk": 250.0,
        "average_talk": 125.0,
        "average_ring": 4.0,
        "answer_rate": 2 / 3,
        "unique_customers": 2,
        "callbacks": (0, 0, 0),
        "median_return": None,
        "leads": (2, 2, 1.0),
        "deals": (1, 1, {"RUB": Decimal("5000")}),
        "calls_per_won_deal": 4.0,
        "flags": (False, False),
        "won_without_calls": (),
    }
    gleb = line(result, "m-gleb")
    assert (gleb.deals_without_calls, gleb.inactive, gleb.has_calls) == (True, False, False)
    assert gleb.deals.won == 2
    assert gleb.amounts_won() == {"RUB": Decimal("3500.50")}
    assert gleb.won_deals_without_calls == ("d-g1", "d-g2")
    dina = line(result, "m-dina")
    assert (dina.inactive, dina.deals_without_calls, dina.customer_calls) == (True, False, 0)
    unassigned = line(result, "ext:109")
    assert (unassigned.manager_id, unassigned.extensions) == (None, ("109",))
    assert unassigned.calls.outbound_answered == 1
    assert unassigned.unique_customers == 1

    assert result.total is not None
    assert figures(result.total) | {"flags": None} == {
        "inbound": (6, 5, 1),
        "outbound": (3, 2),
        "internal": 1,
        "talk": 515.0,
        "average_talk": 515 / 7,
        "average_ring": 4.0,
        "answer_rate": 5 / 6,
        "unique_customers": 6,
        "callbacks": (1, 1, 1),
        "median_return": 585.0,
        "leads": (5, 2, 0.4),
        "deals": (2, 3, {"RUB": Decimal("8500.50")}),
        "calls_per_won_deal": 3.0,
        "flags": None,
        "won_without_calls": ("d-g1", "d-g2"),
    }
    north, south = result.teams
    # The missed call rang both of north's phones: missed by each; its customers count once.
    assert (north.team, north.calls.inbound_received, north.calls.inbound_missed) == ("north", 7, 2)
    assert north.unique_customers == 5
    assert (south.team, south.deals.won, south.won_deals_without_calls) == ("south", 2, ("d-g1", "d-g2"))


async def test_the_last_evening_of_a_month_is_next_month_further_east(
    october: async_sessionmaker[AsyncSession],
) -> None:
    moscow = line(await report(october, tz="Europe/Moscow"), "m-boris")
    vladivostok = line(await report(october, tz="Asia/Vladivostok"), "m-boris")
    # Moscow's October has call 10 (23:30 on the 31st) and not call 11 (23:30 on 30 September);
    # Vladivostok's has call 11 (06:30 on 1 October) and not call 10 (06:30 on 1 November).
    assert (moscow.calls.inbound_answered, moscow.calls.talk_seconds) == (2, 250.0)
    assert (vladivostok.calls.inbound_answered, vladivostok.calls.talk_seconds) == (2, 270.0)
    assert (moscow.leads.created, moscow.leads.converted) == (2, 2)
    assert (vladivostok.leads.created, vladivostok.leads.converted) == (2, 1)


async def test_business_hours_keep_weekday_office_hours_only(
    october: async_sessionmaker[AsyncSession],
) -> None:
    hours = BusinessHours.of("09:00", "18:00", (1, 2, 3, 4, 5))
    result = await report(october, business_hours=hours)
    # Gone: the Saturday internal call and the 23:30 call on 31 October.
    assert line(result, "m-anna").calls.internal_calls == 0
    assert line(result, "m-boris").calls.inbound_answered == 1
    assert result.total is not None
    assert (result.total.calls.inbound_received, result.total.unique_customers) == (5, 5)


async def test_a_manager_sees_only_their_own_line(october: async_sessionmaker[AsyncSession]) -> None:
    result = await report(october, only="m-boris")
    assert [item.key for item in result.managers] == ["m-boris"]
    assert (result.teams, result.total) == ((), None)


async def test_a_team_filter_keeps_its_managers_and_totals_them(
    october: async_sessionmaker[AsyncSession],
) -> None:
    result = await report(october, team="south")
    assert [item.key for item in result.managers] == ["m-dina", "m-gleb"]
    assert result.total is not None
    assert (result.total.team, result.total.deals.won, result.total.customer_calls) == ("south", 2, 0)


async def test_series_per_local_day_and_hour(october: async_sessionmaker[AsyncSession]) -> None:
    period = Period.parse("2026-10-01", "2026-10-31", "Europe/Moscow", today=date(2026, 11, 30))
    async with october() as session:
        days, hours = await manager_series(session, ReportScope(period=period), ["102"])
    assert len(days) == 31 and len(hours) == 24
    by_day = {point.label: point.calls for point in days}
    assert by_day["2026-10-31"].inbound_answered == 1
    assert by_day["2026-10-09"].inbound_answered == 1 and by_day["2026-10-09"].outbound_made == 1
    assert by_day["2026-10-08"].inbound_missed == 1
    assert {point.label: point.calls.inbound_answered for point in hours if point.calls.inbound_answered} == {
        "14": 1,
        "23": 1,
    }


async def test_a_call_written_again_counts_once(october: async_sessionmaker[AsyncSession]) -> None:
    before = await report(october)
    longer = replace(CALLS[0], talk_seconds=90.0, ended_at=CALLS[0].ended_at + timedelta(seconds=30))
    async with october.begin() as session:
        await save_calls(session, [CALLS[1], longer, CALLS[1]])
    after = await report(october)
    assert line(after, "m-anna").calls.inbound_answered == line(before, "m-anna").calls.inbound_answered
    assert line(after, "m-anna").calls.talk_seconds == line(before, "m-anna").calls.talk_seconds + 30
    reconciled = replace(CALLS[5], reconciled=True, talk_seconds=1.0, status=CallStatus.ANSWERED)
    async with october.begin() as session:
        await save_calls(session, [reconciled])
    boris_after = line(await report(october), "m-boris")
    assert boris_after.calls.talk_seconds == line(before, "m-boris").calls.talk_seconds
