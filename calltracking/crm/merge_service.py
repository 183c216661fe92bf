"""Merging duplicate contacts and leads, in one transaction: everything that pointed at the merged
entities (calls, callback tasks, deals, phones) follows the survivor, the merged ones stay behind
inactive with a pointer to it, and the merge is logged. Either all of it happens or none.

The calls with the survivor's numbers are matched again at the end, so the candidates kept on each call
no longer list entities that are gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.config import CrmSettings
from calltracking.crm import duplicate_repository as duplicates
from calltracking.crm.call_matching import rematch
from calltracking.crm.merging import (
    MergeConflict,
    MergeResult,
    Moved,
    check_mergeable,
    checked_ids,
    deal_moves,
    latest_activity,
    phones_to_add,
)
from calltracking.crm.repository import add_phones, get_parties_by_id

log = structlog.get_logger(__name__)


async def merge_entities(
    sessions: async_sessionmaker[AsyncSession],
    survivor_id: int,
    merged_ids: Sequence[int],
    token_id: int | None,
    crm: CrmSettings,
    now: datetime,
) -> MergeResult:
    """Fold `merged_ids` into `survivor_id`. Raises a `MergeRefused` (and changes nothing) when the
    request is wrong, an id names nothing, or an entity is no longer active."""
    merged = checked_ids(survivor_id, merged_ids)
    async with sessions.begin() as session:
        found = await duplicates.lock_entities(session, [survivor_id, *merged])
        check_mergeable(survivor_id, merged, found)
        survivor = found[survivor_id]
        folded = [found[entity_id] for entity_id in merged]
        claimed = await duplicates.claim_merged(session, merged, survivor_id, now)
        if claimed != len(merged) or not await duplicates.claim_survivor(
            session, survivor_id, latest_activity([survivor, *folded]), now
        ):
            raise MergeConflict("another merge changed these entities meanwhile; list the duplicates again")
        new_phones = phones_to_add(survivor.phones, [phone for entity in folded for phone in entity.phones])
        await add_phones(session, survivor_id, new_phones)
        moved = Moved(
            calls=await duplicates.move_calls(session, merged, survivor_id),
            callbacks=await duplicates.move_callbacks(session, merged, survivor_id),
            deals=await duplicates.move_deals(session, deal_moves(survivor, folded), now),
            phones=len(new_phones),
        )
        merge_id = await duplicates.record_merge(session, token_id, survivor, merged, moved, now)
        after = (await get_parties_by_id(session, [survivor_id]))[survivor_id]
        await rematch(session, after.phones, crm, now)
    log.info(
        "entities_merged",
        merge_id=merge_id,
        survivor_id=survivor_id,
        kind=survivor.kind.value,
        merged_ids=list(merged),
        token_id=token_id,
        **moved.as_dict(),
    )
    return MergeResult(merge_id=merge_id, survivor=after, merged_ids=merged, moved=moved)
