"""All SQL about calls. Writes are idempotent upserts keyed by (pbx, pbx_call_id), so replaying the same
events, or retrying a batch after a database outage, leaves exactly one row per call."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import String, Table, and_, delete, func, insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.record import (
    CallFilter,
    CallLeg,
    CallOrigin,
    CallRecord,
    CallStatus,
    Direction,
    LegKind,
    StoredCall,
)
from calltracking.calls.rollup import RollupDelta
from calltracking.calls.rollup_repository import apply_rollup
from calltracking.calls.transcript_repository import transcript_matches
from calltracking.store.tables import CallLegRow, CallMatchRow, CallRow, EntityRow, RecordingRow
from calltracking.store.times import from_db
from calltracking.store.upserts import insert_for

_CALL_KEY = ("pbx", "pbx_call_id")
# Core tables (not ORM bulk inserts, which start a new statement whenever the set of NULL columns changes
# from one call to the next): a batch stays one round trip per few hundred rows.
CALLS = cast(Table, CallRow.__table__)
LEGS = cast(Table, CallLegRow.__table__)


async def save_calls(session: AsyncSession, calls: Sequence[CallRecord]) -> list[int]:
    """Upsert the calls and replace their legs; returns the call ids in the order given."""
    if not calls:
        return []
    # One statement may not upsert the same key twice (PostgreSQL refuses): the latest version wins.
    latest = {(call.pbx, call.pbx_call_id): call for call in calls}
    unique_calls = list(latest.values())
    previous = await _stored_versions(session, list(latest))
    rows = [_clamped(CallRow, _call_values(call)) for call in unique_calls]
    upsert = insert_for(session, CALLS)
    updated = {name: upsert.excluded[name] for name in rows[0] if name not in _CALL_KEY}
    # A call closed from partial knowledge (reconciled) never replaces one seen whole: the same call can
    # come back reconciled after a restart from a checkpoint taken just before it completed. Of two
    # reconciled versions the one that knew the call until later wins: a hot-standby process that took the
    # call over saw more of it than the old checkpoint its first holder restores when it listens again.
    statement = upsert.on_conflict_do_update(
        index_elements=list(_CALL_KEY),
        set_=updated,
        where=or_(
            upsert.excluded.reconciled.is_(False),
            and_(CALLS.c.reconciled.is_(True), upsert.excluded.ended_at >= CALLS.c.ended_at),
        ),
    ).returning(CALLS.c.id, CALLS.c.pbx, CALLS.c.pbx_call_id)
    ids_by_key: dict[tuple[str, str], int] = {}
    for row in (await session.execute(statement, rows)).all():
        ids_by_key[(row.pbx, row.pbx_call_id)] = row.id
    written = set(ids_by_key.values())
    kept = [
        (row["pbx"], row["pbx_call_id"]) for row in rows if (row["pbx"], row["pbx_call_id"]) not in ids_by_key
    ]
    if kept:
        found = await session.execute(
            select(CALLS.c.id, CALLS.c.pbx, CALLS.c.pbx_call_id).where(
                tuple_(CALLS.c.pbx, CALLS.c.pbx_call_id).in_(kept)
            )
        )
        for row in found.all():
            ids_by_key[(row.pbx, row.pbx_call_id)] = row.id
    updated_ids = [ids_by_key[(call.pbx, call.pbx_call_id)] for call in unique_calls]
    delta = RollupDelta.empty()
    for key, call in latest.items():
        if ids_by_key[key] in written:
            delta.replace(previous.get(key), call)
    await apply_rollup(session, delta)
    await session.execute(delete(LEGS).where(LEGS.c.call_id.in_(written)))
    legs = [
        _clamped(CallLegRow, _leg_values(call_id, leg))
        for call_id, call in zip(updated_ids, unique_calls, strict=True)
        if call_id in written
        for leg in call.legs
    ]
    if legs:
        await session.execute(insert(LEGS), legs)
    return [ids_by_key[(call.pbx, call.pbx_call_id)] for call in calls]


async def _stored_versions(
    session: AsyncSession, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], CallRecord]:
    """The versions of these calls already stored, for what they contributed to the rollups."""
    rows = (
        await session.execute(select(CallRow).where(tuple_(CallRow.pbx, CallRow.pbx_call_id).in_(keys)))
    ).scalars()
    return {(row.pbx, row.pbx_call_id): _record(row, []) for row in rows}


async def list_calls(session: AsyncSession, limit: int | None = None) -> list[StoredCall]:
    statement = select(CallRow).order_by(CallRow.started_at, CallRow.id)
    if limit is not None:
        statement = statement.limit(limit)
    rows = (await session.execute(statement)).scalars().all()
    return await _with_legs(session, list(rows), with_legs=True)


async def search_calls(
    session: AsyncSession,
    where: CallFilter,
    limit: int,
    newest_first: bool = True,
    after: tuple[datetime, int] | None = None,
) -> list[StoredCall]:
    """One page of calls, ordered by start time then id; `after` is the last (started_at, id) seen."""
    statement = select(CallRow)
    conditions = _filter_conditions(where, session.get_bind().dialect.name)
    if after is not None:
        key = tuple_(CallRow.started_at, CallRow.id)
        conditions.append(key < tuple_(*after) if newest_first else key > tuple_(*after))
    if conditions:
        statement = statement.where(and_(*conditions))
    if newest_first:
        statement = statement.order_by(CallRow.started_at.desc(), CallRow.id.desc())
    else:
        statement = statement.order_by(CallRow.started_at, CallRow.id)
    rows = (await session.execute(statement.limit(limit))).scalars().all()
    return await _with_legs(session, list(rows), with_legs=False)


async def get_call(
    session: AsyncSession, call_id: int, manager: str | None = None, with_legs: bool = True
) -> StoredCall | None:
    """One call (only if it is `manager`'s, when given); without its legs when the caller needs only the
    record, e.g. to check who may see it."""
    statement = select(CallRow).where(CallRow.id == call_id)
    if manager is not None:
        statement = statement.where(CallRow.manager == manager)
    row = (await session.execute(statement)).scalar_one_or_none()
    if row is None:
        return None
    [stored] = await _with_legs(session, [row], with_legs=with_legs)
    return stored


def _filter_conditions(where: CallFilter, dialect: str) -> list[Any]:
    conditions: list[Any] = []
    if where.text is not None:
        conditions.append(transcript_matches(dialect, where.text))
    if where.started_from is not None:
        conditions.append(CallRow.started_at >= where.started_from)
    if where.started_before is not None:
        conditions.append(CallRow.started_at < where.started_before)
    if where.pbx is not None:
        conditions.append(CallRow.pbx == where.pbx)
    if where.manager is not None:
        conditions.append(CallRow.manager == where.manager)
    if where.direction is not None:
        conditions.append(CallRow.direction == where.direction.value)
    if where.status is not None:
        conditions.append(CallRow.status == where.status.value)
    if where.numbers:
        numbers = list(where.numbers)
        conditions.append(
            or_(
                CallRow.caller_number.in_(numbers),
                CallRow.callee_number.in_(numbers),
                CallRow.caller.in_(numbers),
                CallRow.callee.in_(numbers),
            )
        )
    if where.did is not None:
        conditions.append(CallRow.did == where.did)
    if where.entity is not None:
        kind, external_id = where.entity
        entity_ids = select(EntityRow.id).where(EntityRow.kind == kind, EntityRow.external_id == external_id)
        conditions.append(
            CallRow.id.in_(select(CallMatchRow.call_id).where(CallMatchRow.entity_id.in_(entity_ids)))
        )
    if where.has_recording is not None:
        # "Has a recording" means there is audio to play, not that the PBX announced a file.
        ready = CallRow.id.in_(
            select(RecordingRow.call_id).where(
                RecordingRow.state == "ready", RecordingRow.call_id.is_not(None)
            )
        )
        conditions.append(ready if where.has_recording else ~ready)
    return conditions


async def _with_legs(session: AsyncSession, rows: list[CallRow], with_legs: bool) -> list[StoredCall]:
    legs_by_call: dict[int, list[CallLegRow]] = {row.id: [] for row in rows}
    if rows and with_legs:
        leg_rows = await session.execute(
            select(CallLegRow).where(CallLegRow.call_id.in_(legs_by_call)).order_by(CallLegRow.created_at)
        )
        for leg in leg_rows.scalars():
            legs_by_call[leg.call_id].append(leg)
    return [StoredCall(id=row.id, call=_record(row, legs_by_call[row.id])) for row in rows]


async def earliest_inbound_calls(
    session: AsyncSession,
    numbers: Collection[str],
    *,
    started_from: datetime | None = None,
    started_before: datetime | None = None,
    excluding: Collection[tuple[str, str]] = (),
) -> dict[str, datetime]:
    """Per customer number, when its earliest inbound call in [started_from, started_before) started:
    a caller's first call ever (first-time flags, leaving out by (pbx, call id) the batch being written,
    whose new versions are the ones that count), or its first of a period (unique in the period)."""
    if not numbers:
        return {}
    conditions = [
        CALLS.c.customer_number.in_(sorted(set(numbers))),
        CALLS.c.direction == Direction.INBOUND.value,
    ]
    if started_from is not None:
        conditions.append(CALLS.c.started_at >= started_from)
    if started_before is not None:
        conditions.append(CALLS.c.started_at < started_before)
    if excluding:
        conditions.append(tuple_(CALLS.c.pbx, CALLS.c.pbx_call_id).not_in(sorted(excluding)))
    rows = await session.execute(
        select(CALLS.c.customer_number, func.min(CALLS.c.started_at).label("first"))
        .where(*conditions)
        .group_by(CALLS.c.customer_number)
    )
    return {row.customer_number: from_db(row.first) for row in rows.all() if row.first is not None}


async def count_calls(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(CallRow))).scalar_one())


def _call_values(call: CallRecord) -> dict[str, Any]:
    return {
        "pbx": call.pbx,
        "pbx_call_id": call.pbx_call_id,
        "direction": call.direction.value,
        "status": call.status.value,
        "origin": call.origin.value,
        "request_id": call.request_id,
        "caller": call.caller,
        "callee": call.callee,
        "did": call.did,
        "caller_number": call.caller_number,
        "callee_number": call.callee_number,
        "answered_by": call.answered_by,
        "manager": call.manager,
        "rang": list(call.rang),
        "queue": call.queue,
        "transferred_to": list(call.transferred_to),
        "abandoned": call.abandoned,
        "reconciled": call.reconciled,
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
        "ring_seconds": call.ring_seconds,
        "talk_seconds": call.talk_seconds,
        "hangup_by": call.hangup_by,
        "failure_reason": call.failure_reason,
        "recording_file": call.recording_file,
        "recording_channel": call.recording_channel,
        "customer_number": call.customer_number,
        "queue_wait_seconds": call.queue_wait_seconds,
        "source": call.source,
        "medium": call.medium,
        "campaign": call.campaign,
        "tracking_session_id": call.tracking_session_id,
        "first_time_caller": call.first_time_caller,
        "is_target": call.is_target,
    }


def _leg_values(call_id: int, leg: CallLeg) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "channel_id": leg.channel_id,
        "channel": leg.channel,
        "endpoint": leg.endpoint,
        "kind": leg.kind.value,
        "created_at": leg.created_at,
        "answered_at": leg.answered_at,
        "ended_at": leg.ended_at,
        "hangup_cause": leg.hangup_cause,
    }


def _clamped(model: Any, values: dict[str, Any]) -> dict[str, Any]:
    """PBX-supplied text can be longer than a column or carry NUL bytes, which PostgreSQL refuses: a
    refused batch would stall the call log, so such text is trimmed here rather than rejected."""
    columns = model.__table__.columns
    for name, value in values.items():
        if isinstance(value, str):
            value = value.replace("\x00", "")
            column_type = columns[name].type
            if isinstance(column_type, String) and column_type.length is not None:
                value = value[: column_type.length]
            values[name] = value
        elif isinstance(value, list):
            values[name] = [str(item).replace("\x00", "")[:128] for item in value]
    return values


def _record(row: CallRow, legs: list[CallLegRow]) -> CallRecord:
    return CallRecord(
        pbx=row.pbx,
        pbx_call_id=row.pbx_call_id,
        direction=Direction(row.direction),
        status=CallStatus(row.status),
        origin=CallOrigin(row.origin),
        request_id=row.request_id,
        caller=row.caller,
        callee=row.callee,
        did=row.did,
        caller_number=row.caller_number,
        callee_number=row.callee_number,
        answered_by=row.answered_by,
        manager=row.manager,
        rang=tuple(row.rang or ()),
        queue=row.queue,
        transferred_to=tuple(row.transferred_to or ()),
        abandoned=row.abandoned,
        reconciled=row.reconciled,
        started_at=from_db(row.started_at),
        answered_at=from_db(row.answered_at) if row.answered_at else None,
        ended_at=from_db(row.ended_at),
        ring_seconds=row.ring_seconds,
        talk_seconds=row.talk_seconds,
        hangup_by=row.hangup_by,
        failure_reason=row.failure_reason,
        recording_file=row.recording_file,
        recording_channel=row.recording_channel,
        queue_wait_seconds=row.queue_wait_seconds,
        source=row.source,
        medium=row.medium,
        campaign=row.campaign,
        tracking_session_id=row.tracking_session_id,
        first_time_caller=row.first_time_caller,
        is_target=row.is_target,
        legs=tuple(
            CallLeg(
                channel_id=leg.channel_id,
                channel=leg.channel,
                endpoint=leg.endpoint,
                kind=LegKind(leg.kind),
                created_at=from_db(leg.created_at),
                answered_at=from_db(leg.answered_at) if leg.answered_at else None,
                ended_at=from_db(leg.ended_at) if leg.ended_at else None,
                hangup_cause=leg.hangup_cause,
            )
            for leg in legs
        ),
    )
