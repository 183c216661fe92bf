"""The call log's enricher (`CallLog.add_enricher`): each batch of calls is attributed in the transaction
that writes it, so the stored call, its rollups and the lead it creates all see the same source."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.record import CallRecord, Direction
from calltracking.calls.repository import earliest_inbound_calls
from calltracking.config import TrackingSettings
from calltracking.tracking.attribution import (
    attribute,
    caller_numbers,
    key_of,
    numbers_to_demote,
    pool_number,
)
from calltracking.tracking.repository import demote_first_calls, visits_between


class CallAttributor:
    def __init__(self, tracking: TrackingSettings) -> None:
        self._tracking = tracking

    async def __call__(self, session: AsyncSession, calls: Sequence[CallRecord]) -> Sequence[CallRecord]:
        inbound = [call for call in calls if call.direction is Direction.INBOUND]
        if not inbound:
            return calls
        keys = {key_of(call) for call in calls}
        pooled = {
            number
            for call in inbound
            if (number := pool_number(call.did, self._tracking.pool.numbers)) is not None
        }
        windows = []
        if pooled:
            start = min(call.started_at for call in inbound)
            end = max(call.started_at for call in inbound)
            windows = await visits_between(session, pooled, start, end)
        numbers = caller_numbers(inbound)
        earliest = await earliest_inbound_calls(session, numbers, excluding=keys)
        await demote_first_calls(session, numbers_to_demote(inbound, earliest), keys)
        return attribute(calls, self._tracking, windows, earliest)
