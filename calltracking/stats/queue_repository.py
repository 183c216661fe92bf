"""The SQL of the queue report: each queue's calls in a period, counted in the database.

The queues are found by a seek per queue on `ix_calls_queue_started_at` (the smallest name above the last
one); then the period's calls of those queues are read once, grouped per queue and answering extension
(`_counted`). The 90th percentile waits are PostgreSQL's `percentile_cont`, in the same statement; SQLite
has none, so there the waits are fetched in a second statement (the embedded database is small) and
`percentile_cont` in `queues.py` interpolates the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
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
    sum_tallies,
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
    if session.get_bind().dialect.name == "postgresql":
        tallies, agents, percentiles = await _counted(session, where, service_level_seconds, True)
    else:
        tallies, agents, _ = await _counted(session, where, service_level_seconds, False)
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


# The rows of `_counted`, by `grouping(queue, answered_by)`: one queue and one answering extension (or
# none), one queue, every queue.
_PER_AGENT, _PER_QUEUE, _ALL_QUEUES = 0, 1, 3


async def _counted(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    service_level_seconds: float,
    with_percentiles: bool,
) -> tuple[list[QueueTally], list[AgentTally], dict[str | None, WaitPercentiles]]:
    """The tallies, the agents and (PostgreSQL) the p90 waits in one read of the period's queued calls.

    The calls are counted per queue and answering extension, and a queue's tally is the sum of its rows
    (`answered_by` is NULL for every call nobody answered). Percentiles do not add up: PostgreSQL gets
    them per queue and over all queues from the same sort, as `ROLLUP(queue, answered_by)`; the rows per
    extension compute one too, unused."""
    has_wait = _WAIT.is_not(None)
    columns = [
        func.count().label("offered"),
        _count(_ANSWERED).label("answered"),
        _count(_ABANDONED).label("abandoned"),
        _count(and_(_ABANDONED, _WAIT <= SHORT_ABANDON_SECONDS)).label("short_abandoned"),
        _count(and_(_ANSWERED, CallRow.queue_wait_seconds <= service_level_seconds)).label(
            "within_service_level"
        ),
        _count(and_(_ANSWERED, has_wait)).label("answered_waits"),
        _total(and_(_ANSWERED, has_wait), _WAIT).label("answered_wait_seconds"),
        _count(and_(_ABANDONED, has_wait)).label("abandoned_waits"),
        _total(and_(_ABANDONED, has_wait), _WAIT).label("abandoned_wait_seconds"),
        _total(_ANSWERED, CallRow.talk_seconds).label("talk_seconds"),
    ]
    key = (CallRow.queue, CallRow.answered_by)
    if with_percentiles:
        statement = (
            select(
                *key,
                func.grouping(*key).label("level"),
                *columns,
                _p90(_ANSWERED).label("answered_p90"),
                _p90(_ABANDONED).label("abandoned_p90"),
            )
            .where(*where)
            .group_by(func.rollup(*key))
        )
    else:
        statement = select(*key, literal(_PER_AGENT).label("level"), *columns).where(*where).group_by(*key)
    parts: dict[str, list[QueueTally]] = {}
    agents: list[AgentTally] = []
    percentiles: dict[str | None, WaitPercentiles] = {}
    for row in await session.execute(statement):
        if row.level == _PER_AGENT:
            queue = str(row.queue)
            parts.setdefault(queue, []).append(_tally(queue, row))
            if row.answered_by is not None and row.answered:
                agents.append(
                    AgentTally(
                        queue=queue,
                        agent=str(row.answered_by),
                        answered=int(row.answered),
                        talk_seconds=float(row.talk_seconds),
                    )
                )
        elif row.level == _PER_QUEUE:
            percentiles[str(row.queue)] = WaitPercentiles(row.answered_p90, row.abandoned_p90)
        elif row.level == _ALL_QUEUES:
            percentiles[None] = WaitPercentiles(row.answered_p90, row.abandoned_p90)
    tallies = [sum_tallies(queue, of_queue) for queue, of_queue in parts.items()]
    return tallies, agents, percentiles


def _tally(queue: str, row: Any) -> QueueTally:
    return QueueTally(
        queue=queue,
        offered=int(row.offered),
        answered=int(row.answered),
        abandoned=int(row.abandoned),
        short_abandoned=int(row.short_abandoned),
        answered_within_service_level=int(row.within_service_level),
        answered_waits=int(row.answered_waits),
        answered_wait_seconds=float(row.answered_wait_seconds),
        abandoned_waits=int(row.abandoned_waits),
        abandoned_wait_seconds=float(row.abandoned_wait_seconds),
    )


def _p90(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    # percentile_cont skips NULLs: the waits of other calls are left out.
    return func.percentile_cont(P90).within_group(case((condition, _WAIT)))


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
