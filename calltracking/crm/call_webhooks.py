"""Which call facts the CRM hears about by webhook, and with what in them.

call.completed is queued in the very transaction that writes the call (a call in the database always has
its webhook owed); call.ringing and call.answered, live facts with no row of their own, are queued as they
happen, several to a transaction when they come in a burst. Event ids name the fact, so a replayed call
or a repeated ring queues nothing twice.

Both ask a `WebhookRoster` first: when no active webhook subscribes to the event type, they touch no
database at all (see calltracking/webhooks/roster.py for how fresh it is).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.encoding import call_view
from calltracking.calls.hub import BatchHandler
from calltracking.calls.log import StoredHook
from calltracking.calls.record import CallProgress, CallRecord, EntityRef, LiveEvent, ProgressKind, StoredCall
from calltracking.crm.match_repository import entity_refs
from calltracking.webhooks.delivery import enqueue_many
from calltracking.webhooks.roster import WebhookRoster
from calltracking.webhooks.subscription import EVENT_ID_MAX_LENGTH, WebhookEvent

PROGRESS_EVENTS = {ProgressKind.RINGING: "call.ringing", ProgressKind.ANSWERED: "call.answered"}


# How a completed call looks in a payload. `serve` passes the REST API's own call shape, so a webhook and
# the WebSocket carry the call exactly as GET /api/v1/calls shows it (calltracking/ may not import api/).
CallPayload = Callable[[StoredCall, EntityRef | None], dict[str, Any]]


def plain_call_payload(stored: StoredCall, entity: EntityRef | None) -> dict[str, Any]:
    """The call as `calltracking calls --json` shows it, with the CRM entity its number landed on."""
    data = call_view(stored)
    data["entity"] = entity.view() if entity else None
    return data


def completed_event(
    call_id: int, call: CallRecord, entity: EntityRef | None = None, payload: CallPayload = plain_call_payload
) -> WebhookEvent:
    data = payload(StoredCall(call_id, call), entity)
    return WebhookEvent(
        event_id=event_id("call.completed", call.pbx, call.pbx_call_id),
        type="call.completed",
        occurred_at=call.ended_at,
        data=data,
    )


def progress_event(progress: CallProgress) -> WebhookEvent | None:
    kind = PROGRESS_EVENTS.get(progress.kind)
    if kind is None:
        return None
    data: dict[str, Any] = {
        "pbx": progress.pbx,
        "linkedid": progress.pbx_call_id,
        "extension": progress.extension,
        "direction": progress.direction.value,
        "caller": progress.caller,
        "callee": progress.callee,
        "request_id": progress.request_id,
        "entity": progress.entity.view() if progress.entity else None,
    }
    return WebhookEvent(
        event_id=event_id(kind, progress.pbx, progress.pbx_call_id, progress.extension or ""),
        type=kind,
        occurred_at=progress.at,
        data=data,
    )


def event_id(kind: str, *parts: str) -> str:
    """`call.completed:office:1795349935.0`; hashed when a long PBX name would not fit the column."""
    plain = ":".join((kind, *parts))
    if len(plain) <= EVENT_ID_MAX_LENGTH:
        return plain
    return f"{kind}:{hashlib.sha256(plain.encode()).hexdigest()[: EVENT_ID_MAX_LENGTH - len(kind) - 1]}"


def completed_queuer(
    payload: CallPayload = plain_call_payload, roster: WebhookRoster | None = None
) -> StoredHook:
    """A call-log stored hook queueing call.completed inside the transaction that writes the calls, after
    they were matched to the CRM (the matcher is the call log's first hook). Without a roster it always
    asks the database."""

    async def queue_completed(session: AsyncSession, calls: Sequence[CallRecord], ids: Sequence[int]) -> None:
        if not calls or (roster is not None and not roster.may_want("call.completed")):
            return
        entities = await entity_refs(session, ids)
        events = [
            completed_event(call_id, call, entities.get(call_id), payload)
            for call, call_id in zip(calls, ids, strict=True)
        ]
        await enqueue_many(session, events, roster=roster)

    return queue_completed


def progress_queuer(
    sessions: async_sessionmaker[AsyncSession], roster: WebhookRoster | None = None
) -> BatchHandler:
    """A hub batch handler queueing call.ringing / call.answered as they happen: the events that arrived
    together in one transaction, none when no webhook subscribes to them."""

    async def queue_progress(events: Sequence[LiveEvent]) -> None:
        owed = [
            webhook_event
            for event in events
            if isinstance(event, CallProgress) and wants_progress(event, roster)
            for webhook_event in [progress_event(event)]
            if webhook_event is not None
        ]
        if owed:
            async with sessions.begin() as session:
                await enqueue_many(session, owed, roster=roster)

    return queue_progress


def wants_progress(event: LiveEvent, roster: WebhookRoster | None) -> bool:
    """Whether a webhook may be owed this event (for the hub: whether to add the caller's CRM entity)."""
    if not isinstance(event, CallProgress):
        return False
    kind = PROGRESS_EVENTS.get(event.kind)
    return kind is not None and (roster is None or roster.may_want(kind))
