"""Call tracking's services: the website's number pool (`NumberPool`) and the report per traffic source
(`source_report`). Each owns its transactions; the rules are in `pool.py` and `sources.py`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.config import PoolSettings
from calltracking.tracking.pool import Reservation, Visit, expiry
from calltracking.tracking.pool_repository import (
    add_pool_numbers,
    claim_free_number,
    hold_visitor,
    renew_fallback,
    renew_held,
    start_session,
)
from calltracking.tracking.report_repository import callers, leads_by_source, rollup_lines, won_deals
from calltracking.tracking.sources import ReportPeriod, SourceReport
from calltracking.tracking.sources import source_report as build_source_report

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class NumberPool:
    """Hands each website visit a pool number of its own. A visitor asking again while it holds one
    (every page view) keeps it and pushes its expiry `ttl_seconds` further."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: PoolSettings,
        clock: Clock = utc_now,
        on_exhausted: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._numbers = frozenset(settings.numbers)
        self._clock = clock
        self._on_exhausted = on_exhausted
        self._stocked = False

    async def reserve(self, visit: Visit) -> Reservation | None:
        """The visit's number; None when the pool is exhausted and there is no fallback number."""
        now = self._clock()
        until = expiry(now, self._settings.ttl_seconds)
        async with self._sessions.begin() as session:
            if not self._stocked:
                await add_pool_numbers(session, self._numbers)
            await hold_visitor(session, visit.visitor_id)
            reservation = await renew_held(session, visit.visitor_id, self._numbers, now, until)
            if reservation is None:
                number = await claim_free_number(session, self._numbers, now, until)
                if number is not None:
                    session_id = await start_session(session, visit, number, False, now, until)
                    reservation = Reservation(session_id, number, until, is_fallback=False)
        self._stocked = True
        if reservation is not None:
            return reservation
        self._on_exhausted()
        fallback = self._settings.fallback_number
        log.warning("tracking_pool_exhausted", pool_size=len(self._numbers), fallback=fallback)
        if fallback is None:
            return None
        async with self._sessions.begin() as session:
            await hold_visitor(session, visit.visitor_id)
            reservation = await renew_fallback(session, visit.visitor_id, fallback, now, until)
            if reservation is None:
                session_id = await start_session(session, visit, fallback, True, now, until)
                reservation = Reservation(session_id, fallback, until, is_fallback=True)
        return reservation


async def source_report(
    sessions: async_sessionmaker[AsyncSession], period: ReportPeriod, pbx: str | None = None
) -> SourceReport:
    """The report per traffic source for `period` (one PBX's calls, or every PBX's), read in one
    transaction so its figures agree with each other."""
    async with sessions.begin() as session:
        return build_source_report(
            period,
            await rollup_lines(session, period, pbx),
            await callers(session, period, pbx),
            await leads_by_source(session, period, pbx),
            await won_deals(session, period, pbx),
        )
