"""SQL for duplicates: active contacts and leads sharing a number, and the moves a merge makes.

Every move is one statement whatever the number of rows, and the merged entities are claimed with a
conditional update (`... WHERE is_active`), so two merges racing over the same entity cannot both win,
on PostgreSQL (rows locked in id order) or SQLite (one writer at a time).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.record import EntityKind
from calltracking.crm.match_repository import MATCHES, candidate_select
from calltracking.crm.merging import MERGEABLE_KINDS, DealMove, DuplicateGroup, DuplicateMember, Moved
from calltracking.crm.mirror import Entity, EntityOrigin
from calltracking.crm.repository import DEALS, ENTITIES, PHONES, get_parties_by_id
from calltracking.store.tables import CallbackRow, MergeRow
from calltracking.store.times import from_db

CALLBACKS = cast(Table, CallbackRow.__table__)
MERGES = cast(Table, MergeRow.__table__)
_KINDS = sorted(kind.value for kind in MERGEABLE_KINDS)
_DEAL_COLUMNS = {EntityKind.CONTACT: "contact", EntityKind.COMPANY: "company", EntityKind.LEAD: "lead"}


def _shared_phones() -> Any:
    return (
        select(PHONES.c.e164)
        .join(ENTITIES, ENTITIES.c.id == PHONES.c.entity_id)
        .where(
            ENTITIES.c.is_active.is_(True),
            ENTITIES.c.kind.in_(_KINDS),
            PHONES.c.e164.is_not(None),
        )
    )


async def list_duplicate_groups(session: AsyncSession, after: str | None, limit: int) -> list[DuplicateGroup]:
    """Numbers held by more than one active contact or lead, in number order from after `after`."""
    numbers_query = _shared_phones()
    if after is not None:
        numbers_query = numbers_query.where(PHONES.c.e164 > after)
    numbers_query = (
        numbers_query.group_by(PHONES.c.e164)
        .having(func.count(func.distinct(PHONES.c.entity_id)) > 1)
        .order_by(PHONES.c.e164)
        .limit(limit)
    )
    numbers = list((await session.execute(numbers_query)).scalars().all())
    if not numbers:
        return []
    rows = await session.execute(
        candidate_select(ENTITIES.c.origin, ENTITIES.c.created_at)
        .where(ENTITIES.c.kind.in_(_KINDS), PHONES.c.e164.in_(numbers))
        .distinct()
        .order_by(PHONES.c.e164, ENTITIES.c.id)
    )
    members: dict[str, list[DuplicateMember]] = {number: [] for number in numbers}
    for row in rows.all():
        members[row.e164].append(
            DuplicateMember(
                id=row.id,
                kind=EntityKind(row.kind),
                external_id=row.external_id,
                name=row.name,
                owner=row.owner,
                origin=EntityOrigin(row.origin),
                created_at=from_db(row.created_at),
            )
        )
    return [DuplicateGroup(number=number, members=tuple(members[number])) for number in numbers]


async def lock_entities(session: AsyncSession, ids: Sequence[int]) -> dict[int, Entity]:
    """The named entities, locked for the rest of the transaction on PostgreSQL (in id order, so two
    merges over overlapping entities queue instead of deadlocking)."""
    await session.execute(
        select(ENTITIES.c.id).where(ENTITIES.c.id.in_(list(ids))).order_by(ENTITIES.c.id).with_for_update()
    )
    return await get_parties_by_id(session, ids)


async def claim_merged(
    session: AsyncSession, merged_ids: Sequence[int], survivor_id: int, now: datetime
) -> int:
    """Deactivate the merged entities, pointing them at the survivor; returns how many were still active
    (fewer than asked means another merge got there first)."""
    done = await session.execute(
        update(ENTITIES)
        .where(ENTITIES.c.id.in_(list(merged_ids)), ENTITIES.c.is_active.is_(True))
        .values(is_active=False, merged_into_id=survivor_id, updated_at=now)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


async def claim_survivor(
    session: AsyncSession, survivor_id: int, last_activity_at: datetime | None, now: datetime
) -> bool:
    """Touch the survivor if it is still active; False when it was merged or deleted meanwhile."""
    done = await session.execute(
        update(ENTITIES)
        .where(ENTITIES.c.id == survivor_id, ENTITIES.c.is_active.is_(True))
        .values(last_activity_at=last_activity_at, updated_at=now)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def move_calls(session: AsyncSession, merged_ids: Sequence[int], survivor_id: int) -> int:
    done = await session.execute(
        update(MATCHES).where(MATCHES.c.entity_id.in_(list(merged_ids))).values(entity_id=survivor_id)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


async def move_callbacks(session: AsyncSession, merged_ids: Sequence[int], survivor_id: int) -> int:
    done = await session.execute(
        update(CALLBACKS).where(CALLBACKS.c.entity_id.in_(list(merged_ids))).values(entity_id=survivor_id)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


async def move_deals(session: AsyncSession, moves: Sequence[DealMove], now: datetime) -> int:
    """Apply the moves; returns how many distinct deals moved (a deal naming two merged entities, a
    contact and a lead, counts once)."""
    if not moves:
        return 0
    named = [DEALS.c[_DEAL_COLUMNS[move.column]].in_(list(move.external_ids)) for move in moves]
    moved = (await session.execute(select(func.count()).select_from(DEALS).where(or_(*named)))).scalar_one()
    for move in moves:
        values: dict[str, Any] = {
            _DEAL_COLUMNS[move.set_column]: move.survivor_external_id,
            "updated_at": now,
        }
        if move.clears_column:
            values[_DEAL_COLUMNS[move.column]] = None
        await session.execute(
            update(DEALS)
            .where(DEALS.c[_DEAL_COLUMNS[move.column]].in_(list(move.external_ids)))
            .values(values)
        )
    return int(moved)


async def record_merge(
    session: AsyncSession,
    token_id: int | None,
    survivor: Entity,
    merged_ids: Sequence[int],
    moved: Moved,
    now: datetime,
) -> int:
    merge_id = (
        await session.execute(
            insert(MERGES)
            .values(
                at=now,
                token_id=token_id,
                kind=survivor.kind.value,
                survivor_id=survivor.id,
                merged_ids=list(merged_ids),
                moved=moved.as_dict(),
            )
            .returning(MERGES.c.id)
        )
    ).scalar_one()
    return int(merge_id)
