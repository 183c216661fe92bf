"""SQL for callback tasks: open (or join) one for a missed call, close the open one for a number, read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, case, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.record import CallStatus, Direction
from calltracking.crm.callbacks import CallbackState, CallbackTask
from calltracking.crm.match_repository import CALLS, MATCHES
from calltracking.store.tables import CallbackRow
from calltracking.store.times import from_db
from calltracking.store.upserts import insert_for

CALLBACKS = cast(Table, CallbackRow.__table__)


@dataclass(frozen=True, slots=True)
class CallbackOpening:
    """A missed call that opens its number's task, or joins the one already open."""

    number: str
    call_id: int
    missed_at: datetime
    due_at: datetime
    manager: str | None
    entity_id: int | None


async def open_callbacks(
    session: AsyncSession, openings: Sequence[CallbackOpening]
) -> dict[str, tuple[int, bool]]:
    """Each number's open task, created if there is none: number -> (its id, whether this call made it).
    One upsert for all (numbers distinct), in number order so two writers lock alike: two writers missing
    the same number at once meet on the unique `open_number`, and the second one counts its miss on the
    task the first one made."""
    ordered = sorted(openings, key=lambda opening: opening.number)
    if not ordered:
        return {}
    statement = insert_for(session, CALLBACKS)
    # Misses of one number may be written out of order (concurrent writers, a reconciled call): the
    # latest one stays the latest.
    this_miss = statement.excluded.last_missed_at
    upsert = statement.on_conflict_do_update(
        index_elements=["open_number"],
        set_={
            "missed_calls": CALLBACKS.c.missed_calls + 1,
            "last_missed_at": case(
                (CALLBACKS.c.last_missed_at < this_miss, this_miss), else_=CALLBACKS.c.last_missed_at
            ),
        },
    ).returning(CALLBACKS.c.id, CALLBACKS.c.open_number, CALLBACKS.c.missed_call_id, CALLBACKS.c.missed_calls)
    rows = [
        {
            "number": opening.number,
            "open_number": opening.number,
            "state": CallbackState.OPEN.value,
            "missed_call_id": opening.call_id,
            "missed_calls": 1,
            "entity_id": opening.entity_id,
            "manager": opening.manager,
            "missed_at": opening.missed_at,
            "last_missed_at": opening.missed_at,
            "due_at": opening.due_at,
        }
        for opening in ordered
    ]
    callers = {opening.number: opening.call_id for opening in ordered}
    result = await session.execute(upsert, rows)
    # Only the insert sets missed_call_id to this call (a task is opened by one call only).
    return {
        row.open_number: (
            int(row.id),
            row.missed_call_id == callers[row.open_number] and row.missed_calls == 1,
        )
        for row in result.all()
    }


async def close_callback(
    session: AsyncSession,
    number: str,
    returned_at: datetime,
    call_id: int,
    returned_by: str | None,
) -> int | None:
    """Close the open task for this number if the call came after the miss; returns the task's id."""
    row = (
        await session.execute(
            select(CALLBACKS.c.id, CALLBACKS.c.missed_at).where(CALLBACKS.c.open_number == number)
        )
    ).first()
    if row is None or returned_at < from_db(row.missed_at):
        return None
    await _close(session, row.id, returned_at, call_id, returned_by, from_db(row.missed_at))
    return int(row.id)


async def _close(
    session: AsyncSession,
    task_id: int,
    returned_at: datetime,
    call_id: int,
    returned_by: str | None,
    missed_at: datetime,
) -> None:
    await session.execute(
        update(CALLBACKS)
        .where(CALLBACKS.c.id == task_id)
        .values(
            state=CallbackState.DONE.value,
            open_number=None,
            closed_at=returned_at,
            closed_by_call_id=call_id,
            returned_by=returned_by,
            seconds_to_return=max((returned_at - missed_at).total_seconds(), 0.0),
        )
    )


async def answered_after(session: AsyncSession, number: str, after: datetime) -> Any | None:
    """The first answered call with this number after a miss, already in the database: a return call
    written before the missed one (calls from two PBXs, or a reconciled call) still closes the task."""
    row = (
        await session.execute(
            select(CALLS.c.id, CALLS.c.direction, CALLS.c.answered_at, CALLS.c.answered_by, CALLS.c.manager)
            .join(MATCHES, MATCHES.c.call_id == CALLS.c.id)
            .where(MATCHES.c.number == number, *_answered_since(after))
            .order_by(CALLS.c.answered_at)
            .limit(1)
        )
    ).first()
    return row


async def numbers_answered_since(session: AsyncSession, numbers: Sequence[str], since: datetime) -> set[str]:
    """Which of these numbers have an answered call in the database at or after `since`: only their new
    tasks need `answered_after` (one read for a batch, not one per missed call)."""
    if not numbers:
        return set()
    rows = await session.execute(
        select(MATCHES.c.number)
        .distinct()
        .join(CALLS, MATCHES.c.call_id == CALLS.c.id)
        .where(MATCHES.c.number.in_(sorted(set(numbers))), *_answered_since(since))
    )
    return {row.number for row in rows.all()}


def _answered_since(moment: datetime) -> list[Any]:
    """A call that can be a missed number's return: answered, to or from a customer, at or after the miss."""
    return [
        CALLS.c.status == CallStatus.ANSWERED.value,
        CALLS.c.direction.in_([Direction.INBOUND.value, Direction.OUTBOUND.value]),
        CALLS.c.answered_at >= moment,
    ]


async def close_with(
    session: AsyncSession, task_id: int, returned_at: datetime, call_id: int, returned_by: str | None
) -> None:
    missed_at = (
        await session.execute(select(CALLBACKS.c.missed_at).where(CALLBACKS.c.id == task_id))
    ).scalar_one()
    await _close(session, task_id, returned_at, call_id, returned_by, from_db(missed_at))


async def list_callbacks(
    session: AsyncSession,
    state: CallbackState | None,
    due_before: datetime | None,
    manager: str | None,
    after_id: int | None,
    limit: int,
    pbx: str | None = None,
) -> list[CallbackTask]:
    """`pbx`: the tasks whose first missed call was on that PBX."""
    conditions: list[Any] = _pbx_conditions(pbx)
    if state is not None:
        conditions.append(CALLBACKS.c.state == state.value)
    if due_before is not None:
        conditions.append(CALLBACKS.c.due_at < due_before)
    if manager is not None:
        conditions.append(CALLBACKS.c.manager == manager)
    if after_id is not None:
        conditions.append(CALLBACKS.c.id > after_id)
    statement = select(CALLBACKS).order_by(CALLBACKS.c.id).limit(limit)
    if conditions:
        statement = statement.where(and_(*conditions))
    return [task_of(row) for row in (await session.execute(statement)).all()]


async def callbacks_missed_between(
    session: AsyncSession,
    start: datetime | None,
    end: datetime | None,
    manager: str | None,
    pbx: str | None = None,
) -> list[CallbackTask]:
    """Every task whose first miss falls in the period (and, given `pbx`, was on that PBX), for the SLA
    report."""
    conditions: list[Any] = _pbx_conditions(pbx)
    if start is not None:
        conditions.append(CALLBACKS.c.missed_at >= start)
    if end is not None:
        conditions.append(CALLBACKS.c.missed_at < end)
    if manager is not None:
        conditions.append(CALLBACKS.c.manager == manager)
    statement = select(CALLBACKS).order_by(CALLBACKS.c.id)
    if conditions:
        statement = statement.where(and_(*conditions))
    return [task_of(row) for row in (await session.execute(statement)).all()]


def _pbx_conditions(pbx: str | None) -> list[Any]:
    """A task is its first missed call's PBX's, as the per-manager report counts it."""
    if pbx is None:
        return []
    return [CALLBACKS.c.missed_call_id.in_(select(CALLS.c.id).where(CALLS.c.pbx == pbx))]


def task_of(row: Any) -> CallbackTask:
    return CallbackTask(
        id=row.id,
        number=row.number,
        state=CallbackState(row.state),
        manager=row.manager,
        missed_call_id=row.missed_call_id,
        missed_calls=row.missed_calls,
        entity_id=row.entity_id,
        missed_at=from_db(row.missed_at),
        last_missed_at=from_db(row.last_missed_at),
        due_at=from_db(row.due_at),
        closed_at=from_db(row.closed_at) if row.closed_at else None,
        closed_by_call_id=row.closed_by_call_id,
        returned_by=row.returned_by,
        seconds_to_return=row.seconds_to_return,
    )


async def numbers_with_open_callbacks(session: AsyncSession, numbers: Sequence[str]) -> set[str]:
    """Which of these numbers have an open task: an answered call from any other number closes nothing,
    so the matcher asks once per batch instead of once per call."""
    if not numbers:
        return set()
    rows = await session.execute(
        select(CALLBACKS.c.open_number).where(CALLBACKS.c.open_number.in_(list(numbers)))
    )
    return {str(number) for number in rows.scalars().all()}


async def count_more_misses(
    session: AsyncSession, task_id: int, misses: int, last_missed_at: datetime
) -> None:
    """Add misses of a number to its open task (the matcher counts a batch's misses first, then writes
    them here once)."""
    this_miss = literal(last_missed_at, CALLBACKS.c.last_missed_at.type)
    await session.execute(
        update(CALLBACKS)
        .where(CALLBACKS.c.id == task_id)
        .values(
            missed_calls=CALLBACKS.c.missed_calls + misses,
            last_missed_at=case(
                (CALLBACKS.c.last_missed_at < this_miss, this_miss), else_=CALLBACKS.c.last_missed_at
            ),
        )
    )
