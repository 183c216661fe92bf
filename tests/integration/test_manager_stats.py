"""The per-manager report on a constructed October (tests/helpers/october.py), on both databases, through
the real write path (the call upsert keeps the rollups, the matcher makes leads and callback tasks).
Every figure below is counted by hand from the calls and deals listed there."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.record import CallStatus
from calltracking.calls.repository import save_calls
from calltracking.stats.manager_report import ReportScope, manager_report, manager_series
from calltracking.stats.managers import ManagerLine, ManagerReport
from calltracking.stats.period import BusinessHours, Period
from tests.helpers.october import CALLS, write_october


@pytest.fixture
async def october(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    await write_october(sessions)
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
    # A manager token for an extension the CRM has not given to anyone sees that extension's line.
    unassigned = await report(october, only="ext:109")
    assert [item.key for item in unassigned.managers] == ["ext:109"]


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
