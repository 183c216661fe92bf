"""Attribution's SQL: a few statements per batch of calls, never one per call."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.record import Direction
from calltracking.store.tables import CallRow, TrackingSessionRow
from calltracking.store.times import as_utc, from_db
from calltracking.tracking.attribution import CallKey, VisitWindow

CALLS = cast(Table, CallRow.__table__)
SESSIONS = cast(Table, TrackingSessionRow.__table__)


async def visits_between(
    session: AsyncSession, numbers: Collection[str], start: datetime, end: datetime
) -> list[VisitWindow]:
    """The visits (fallback sessions excepted) that held one of `numbers` at some time in [start, end]."""
    if not numbers:
        return []
    rows = await session.execute(
        select(
            SESSIONS.c.id,
            SESSIONS.c.number,
            SESSIONS.c.created_at,
            SESSIONS.c.expires_at,
            SESSIONS.c.utm_source,
            SESSIONS.c.utm_medium,
            SESSIONS.c.utm_campaign,
        ).where(
            SESSIONS.c.number.in_(sorted(numbers)),
            SESSIONS.c.is_fallback.is_(False),
            SESSIONS.c.created_at <= as_utc(end),
            SESSIONS.c.expires_at >= as_utc(start),
        )
    )
    return [
        VisitWindow(
            session_id=row.id,
            number=row.number,
            created_at=from_db(row.created_at),
            expires_at=from_db(row.expires_at),
            source=row.utm_source,
            medium=row.utm_medium,
            campaign=row.utm_campaign,
        )
        for row in rows.all()
    ]


async def demote_first_calls(
    session: AsyncSession, numbers: Collection[str], excluding: Collection[CallKey]
) -> None:
    """The stored calls from `numbers` flagged first-time are not (a call of this batch started earlier)."""
    if not numbers:
        return
    conditions = [
        CALLS.c.customer_number.in_(sorted(numbers)),
        CALLS.c.direction == Direction.INBOUND.value,
        CALLS.c.first_time_caller.is_(True),
    ]
    if excluding:
        conditions.append(tuple_(CALLS.c.pbx, CALLS.c.pbx_call_id).not_in(sorted(excluding)))
    await session.execute(update(CALLS).where(and_(*conditions)).values(first_time_caller=False))
