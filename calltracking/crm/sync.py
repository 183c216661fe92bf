"""Writes to the CRM mirror that keep the calls' matches true: an upsert or removal of contacts,
companies or leads re-matches the calls with the numbers it touched, in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.record import EntityKind
from calltracking.config import CrmSettings
from calltracking.crm.call_matching import rematch
from calltracking.crm.mirror import PartyIn
from calltracking.crm.repository import UpsertResult, deactivate_party, upsert_parties


async def load_parties(
    session: AsyncSession, items: Sequence[PartyIn], crm: CrmSettings, now: datetime
) -> UpsertResult:
    result = await upsert_parties(session, items, crm.default_country, now)
    await rematch(session, result.touched_phones, crm, now)
    return result


async def remove_party(
    session: AsyncSession, kind: EntityKind, external_id: str, crm: CrmSettings, now: datetime
) -> bool:
    phones = await deactivate_party(session, kind, external_id, now)
    if phones is None:
        return False
    await rematch(session, phones, crm, now)
    return True
