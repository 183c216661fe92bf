"""The SQL of the queue report: each queue's calls in a period, counted in the database.

Every query reads calls through `ix_calls_queue_started_at`: the queues are found by a seek per queue
(the smallest name above the last one), then each queue's calls in the period are one range of the index.
The 90th percentile waits are PostgreSQL's `percentile_cont`; SQLite has none, so there the waits are
fetched (the embedded database is small) and `percentile_cont` in `queues.py` interpolates the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.record import CallStatus
from calltracking.stats.queues import (
    P90,
    SHORT_ABANDON_SECONDS,
    AgentTally,
    QueuedWait,
    QueueReport,
    QueueTally,
    WaitPercentiles,
    queue_report,
    wait_percentiles,
)
from calltracking.store.tables import CallRow

_ANSWERED = CallRow.status == CallStatus.ANSWERED.value
_ABANDONED = and_(CallRow.abandoned.is_(True), CallRow.status != CallStatus.ANSWERED.value)
_WAIT = CallRow.queue_wait_seconds


async def queue_report_between(
    session: AsyncSession,
    started_from: datetime,
    started_before: datetime,
    service_level_seconds: float,
    pbx: str | None = None,
    queue: str | None = None,
) -> QueueReport:
    """The report of the queued calls started in [started_from, started_before) (UTC): of one queue, or
    of every queue, and of one PBX or all."""
    names = [queue] if queue is not None else await _queue_names(session)
    if not names:
        return queue_report([], [], {}, service_level_seconds)
    where = [
        CallRow.queue.in_(names),
        CallRow.started_at >= started_from,
        CallRow.started_at < started_before,
    ]
    if pbx is not None:
        where.append(CallRow.pbx == pbx)
    tallies = await _tallies(session, where, service_level_seconds)
    agents = await _agents(session, where)
    if session.get_bind().dialect.name == "postgresql":
        percentiles = await _percentiles_in_sql(session, where)
    else:
        percentiles = await _percentiles_in_python(session, where)
    return queue_report(tallies, agents, percentiles, service_level_seconds)


async def _queue_names(session: AsyncSession) -> list[str]:
    """Every queue that ever had a call, by one index seek each: no scan of the calls."""
    names: list[str] = []
    name = await session.scalar(select(func.min(CallRow.queue)))
    while name is not None:
        names.append(name)
        name = await session.scalar(select(func.min(CallRow.queue)).where(CallRow.queue > name))
    return names


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _total(condition: ColumnElement[bool], value: Any) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, value), else_=0.0)), 0.0)


async def _tallies(
    session: AsyncSession, where: list[ColumnElement[bool]], service_level_seconds: float
) -> list[QueueTally]:
    has_wait = _WAIT.is_not(None)
    statement = (
        select(
            CallRow.queue,
            func.count(),
            _count(_ANSWERED),
            _count(_ABANDONED),
            _count(and_(_ABANDONED, _WAIT <= SHORT_ABANDON_SECONDS)),
            _count(and_(_ANSWERED, CallRow.queue_wait_seconds <= service_level_seconds)),
            _count(and_(_ANSWERED, has_wait)),
            _total(and_(_ANSWERED, has_wait), _WAIT),
            _count(and_(_ABANDONED, has_wait)),
            _total(and_(_ABANDONED, has_wait), _WAIT),
        )
        .where(*where)
        .group_by(CallRow.queue)
    )
    return [
        QueueTally(
            queue=str(row[0]),
            offered=int(row[1]),
            answered=int(row[2]),
            abandoned=int(row[3]),
            short_abandoned=int(row[4]),
            answered_within_service_level=int(row[5]),
            answered_waits=int(row[6]),
            answered_wait_seconds=float(row[7]),
            abandoned_waits=int(row[8]),
            abandoned_wait_seconds=float(row[9]),
        )
        for row in await session.execute(statement)
    ]


async def _agents(session: AsyncSession, where: list[ColumnElement[bool]]) -> list[AgentTally]:
    statement = (
        select(CallRow.queue, CallRow.answered_by, func.count(), func.sum(CallRow.talk_seconds))
        .where(*where, _ANSWERED, CallRow.answered_by.is_not(None))
        .group_by(CallRow.queue, CallRow.answered_by)
    )
    return [
        AgentTally(
            queue=str(row[0]), agent=str(row[1]), answered=int(row[2]), talk_seconds=float(row[3] or 0.0)
        )
        for row in await session.execute(statement)
    ]


def _p90(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    # percentile_cont skips NULLs: the waits of other calls are left out.
    return func.percentile_cont(P90).within_group(case((condition, _WAIT)))


async def _percentiles_in_sql(
    session: AsyncSession, where: list[ColumnElement[bool]]
) -> dict[str | None, WaitPercentiles]:
    columns = (_p90(_ANSWERED), _p90(_ABANDONED))
    per_queue = await session.execute(select(CallRow.queue, *columns).where(*where).group_by(CallRow.queue))
    percentiles: dict[str | None, WaitPercentiles] = {
        row[0]: WaitPercentiles(answered=row[1], abandoned=row[2]) for row in per_queue
    }
    total = (await session.execute(select(*columns).where(*where))).one()
    percentiles[None] = WaitPercentiles(answered=total[0], abandoned=total[1])
    return percentiles


async def _percentiles_in_python(
    session: AsyncSession, where: list[ColumnElement[bool]]
) -> dict[str | None, WaitPercentiles]:
    statement = select(CallRow.queue, _ANSWERED, _ABANDONED, _WAIT).where(
        *where, _WAIT.is_not(None), or_(_ANSWERED, _ABANDONED)
    )
    return wait_percentiles(
        QueuedWait(
            queue=str(row[0]), is_answered=bool(row[1]), is_abandoned=bool(row[2]), wait_seconds=row[3] or 0.0
        )
        for row in await session.execute(statement)
    )
