"""The number pool's SQL. Each change of who holds a number is one conditional statement (an UPDATE whose
WHERE still requires the state it read), so two writers can never both get a number: on PostgreSQL the
candidate row is locked `FOR UPDATE SKIP LOCKED` (a concurrent request takes the next free number instead
of waiting), on SQLite the single writer lock orders them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict
from datetime import datetime
from typing import cast

from sqlalchemy import String, Table, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.store.tables import PoolNumberRow, TrackingSessionRow
from calltracking.store.times import as_utc
from calltracking.store.upserts import insert_for
from calltracking.tracking.pool import NEVER, Reservation, Visit

POOL = cast(Table, PoolNumberRow.__table__)
SESSIONS = cast(Table, TrackingSessionRow.__table__)


async def add_pool_numbers(session: AsyncSession, numbers: Collection[str]) -> None:
    """Rows for the configured numbers that have none yet (free, never reserved)."""
    if not numbers:
        return
    statement = insert_for(session, POOL).on_conflict_do_nothing(index_elements=["number"])
    rows = [
        {"number": number, "session_id": None, "reserved_until": NEVER, "last_reserved_at": NEVER}
        for number in sorted(numbers)
    ]
    await session.execute(statement, rows)


async def hold_visitor(session: AsyncSession, visitor_id: str) -> None:
    """Serialise a visitor's requests until the transaction ends: two page views of a first visit at
    the same moment must give one session, not two numbers. PostgreSQL: an advisory lock on the visitor;
    SQLite: the database's writer lock, taken before anything is read."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(literal(visitor_id, String), 0)))
        )
        return
    first = select(func.min(POOL.c.number)).scalar_subquery()
    await session.execute(update(POOL).where(POOL.c.number == first).values(session_id=POOL.c.session_id))


async def renew_held(
    session: AsyncSession, visitor_id: str, numbers: Collection[str], now: datetime, until: datetime
) -> Reservation | None:
    """The visitor's pool number, if it still holds one, now held until `until` (and reserved `now`, for
    the LRU order: a number a visit kept using rests as long as one it dropped at that time)."""
    now, until = as_utc(now), as_utc(until)
    latest = (
        await session.execute(
            select(SESSIONS.c.id, SESSIONS.c.number)
            .where(
                SESSIONS.c.visitor_id == visitor_id,
                SESSIONS.c.is_fallback.is_(False),
                SESSIONS.c.expires_at >= now,
            )
            .order_by(SESSIONS.c.created_at.desc(), SESSIONS.c.id.desc())
            .limit(1)
        )
    ).first()
    if latest is None or latest.number not in numbers:
        return None
    renewed = await session.execute(
        update(POOL)
        .where(POOL.c.number == latest.number, POOL.c.session_id == latest.id, POOL.c.reserved_until >= now)
        .values(reserved_until=until, last_reserved_at=now)
        .returning(POOL.c.number)
    )
    if renewed.first() is None:
        return None
    await _extend(session, latest.id, now, until)
    return Reservation(session_id=latest.id, number=latest.number, expires_at=until, is_fallback=False)


async def claim_free_number(
    session: AsyncSession, numbers: Collection[str], now: datetime, until: datetime
) -> str | None:
    """Reserve the free number reserved least recently, until `until`; None when every one is held."""
    if not numbers:
        return None
    now, until = as_utc(now), as_utc(until)
    candidate = (
        select(POOL.c.number)
        .where(POOL.c.number.in_(sorted(numbers)), POOL.c.reserved_until < now)
        .order_by(POOL.c.last_reserved_at, POOL.c.number)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed = await session.execute(
        update(POOL)
        .where(POOL.c.number == candidate, POOL.c.reserved_until < now)
        .values(reserved_until=until, last_reserved_at=now, session_id=None)
        .returning(POOL.c.number)
    )
    number = claimed.scalar_one_or_none()
    return str(number) if number is not None else None


async def start_session(
    session: AsyncSession, visit: Visit, number: str, is_fallback: bool, now: datetime, until: datetime
) -> int:
    """A new tracking session for the visit, holding `number` until `until`; a pool number is bound to it."""
    now, until = as_utc(now), as_utc(until)
    values = asdict(visit) | {
        "number": number,
        "is_fallback": is_fallback,
        "created_at": now,
        "last_seen_at": now,
        "expires_at": until,
    }
    session_id = (
        await session.execute(insert(SESSIONS).values(values).returning(SESSIONS.c.id))
    ).scalar_one()
    if not is_fallback:
        await session.execute(update(POOL).where(POOL.c.number == number).values(session_id=session_id))
    return int(session_id)


async def renew_fallback(
    session: AsyncSession, visitor_id: str, fallback: str, now: datetime, until: datetime
) -> Reservation | None:
    """The visitor's unexpired fallback session, if any, extended to `until` (no new row per page view)."""
    now, until = as_utc(now), as_utc(until)
    latest = (
        await session.execute(
            select(SESSIONS.c.id)
            .where(
                SESSIONS.c.visitor_id == visitor_id,
                SESSIONS.c.is_fallback.is_(True),
                SESSIONS.c.number == fallback,
                SESSIONS.c.expires_at >= now,
            )
            .order_by(SESSIONS.c.created_at.desc(), SESSIONS.c.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if latest is None:
        return None
    await _extend(session, latest, now, until)
    return Reservation(session_id=latest, number=fallback, expires_at=until, is_fallback=True)


async def _extend(session: AsyncSession, session_id: int, now: datetime, until: datetime) -> None:
    await session.execute(
        update(SESSIONS).where(SESSIONS.c.id == session_id).values(last_seen_at=now, expires_at=until)
    )
