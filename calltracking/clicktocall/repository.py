"""All SQL about click-to-call requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ami.originate import OriginateOrder
from calltracking.clicktocall.request import OriginateState, OriginateStatus
from calltracking.store.tables import CallRow, OriginateRow
from calltracking.store.times import from_db


async def add_request(
    session: AsyncSession,
    order: OriginateOrder,
    pbx: str,
    idempotency_key: str | None,
    token_id: int | None,
    status: str,
    now: datetime,
) -> None:
    await session.execute(
        insert(OriginateRow),
        [
            {
                "request_id": order.request_id,
                "idempotency_key": idempotency_key,
                "token_id": token_id,
                "pbx": pbx,
                "extension": order.extension,
                "number": order.number,
                "status": status,
                "reason": None,
                "call_id": None,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )


async def find_request(
    session: AsyncSession, request_id: str, idempotency_key: str | None, token_id: int | None
) -> OriginateState | None:
    """The request with this id, or the one this token made with this idempotency key (another token's
    key is another request)."""
    condition = OriginateRow.request_id == request_id
    if idempotency_key is not None:
        same_key = and_(OriginateRow.idempotency_key == idempotency_key, OriginateRow.token_id == token_id)
        condition = or_(condition, same_key)
    row = (await session.execute(select(OriginateRow).where(condition).limit(1))).scalar_one_or_none()
    return _state(row) if row is not None else None


async def get_request(session: AsyncSession, request_id: str) -> OriginateState | None:
    row = (
        await session.execute(select(OriginateRow).where(OriginateRow.request_id == request_id))
    ).scalar_one_or_none()
    return _state(row) if row is not None else None


async def set_status(
    session: AsyncSession,
    request_id: str,
    status: str,
    reason: str | None,
    now: datetime,
    call_id: int | None = None,
    expected_status: str | None = None,
) -> bool:
    """Compare-and-set: only a request not yet linked to its call, and (with `expected_status`) still in
    that status, changes, so two writers can never move a request backwards or settle it twice."""
    values: dict[str, object] = {"status": status, "reason": reason, "updated_at": now}
    if call_id is not None:
        values["call_id"] = call_id
    # A request linked to its call is settled for good.
    statement = update(OriginateRow).where(
        OriginateRow.request_id == request_id, OriginateRow.call_id.is_(None)
    )
    if expected_status is not None:
        statement = statement.where(OriginateRow.status == expected_status)
    result = await session.execute(statement.values(**values).returning(OriginateRow.id))
    return result.first() is not None


async def call_id_for(session: AsyncSession, request_id: str) -> int | None:
    row = (
        await session.execute(
            select(CallRow.id).where(CallRow.request_id == request_id).order_by(CallRow.id).limit(1)
        )
    ).first()
    return int(row[0]) if row is not None else None


def _state(row: OriginateRow) -> OriginateState:
    return OriginateState(
        request_id=row.request_id,
        pbx=row.pbx,
        extension=row.extension,
        number=row.number,
        status=OriginateStatus(row.status),
        reason=row.reason,
        call_id=row.call_id,
        created_at=from_db(row.created_at),
        updated_at=from_db(row.updated_at),
    )
