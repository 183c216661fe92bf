"""Live call events over a WebSocket: call.ringing (screen pop), call.answered, call.completed."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field

from api.access import MAX_TOKEN_LENGTH
from api.errors import ApiError
from api.keys import HUB
from api.operations import Api, Context
from api.schemas import call_payload
from api.visibility import Audience
from calltracking.calls.hub import SUBSCRIBER_BACKLOG, Subscription
from calltracking.calls.record import CallCompleted, CallProgress, LiveEvent, ProgressKind, StoredCall

log = structlog.get_logger(__name__)
api = Api()
# A client whose backlog (SUBSCRIBER_BACKLOG events) filled is closed with 1008 and this reason.
TOO_SLOW = b"too slow: backlog full, events were lost"
CLOSE_SECONDS = 1.0
PROGRESS_TYPES = {ProgressKind.RINGING: "call.ringing", ProgressKind.ANSWERED: "call.answered"}


class NotAWebSocket(ApiError):
    status = 400
    code = "websocket_expected"


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    access_token: str | None = Field(
        default=None,
        max_length=MAX_TOKEN_LENGTH,
        description="the API token, for browsers (which cannot set headers on a WebSocket); only read "
        "when there is no Authorization header",
    )


@api.route(
    "GET",
    "/api/v1/events",
    summary="Live call events (WebSocket)",
    tag="events",
    query=EventsQuery,
    responses={400: None},
    websocket=True,
    bad_header=lambda name: NotAWebSocket(f"this endpoint speaks WebSocket only ({name} header)"),
    description="A WebSocket upgrade (the handshake's headers are required); then JSON messages "
    "`{type, ...}` with type call.ringing (the ringing extension, caller and callee, and the caller's CRM "
    "entity: a screen pop), call.answered and call.completed (the call record). A manager token receives "
    "the ringing and answer at its own extension and the calls `GET /api/v1/calls` shows it, nothing "
    "more. Browsers, which cannot set headers on a WebSocket, may pass the token as the `access_token` "
    "query parameter.",
)
async def live_events(request: web.Request, ctx: Context) -> web.StreamResponse:
    socket = web.WebSocketResponse(heartbeat=30.0)
    if not socket.can_prepare(request).ok:
        raise NotAWebSocket("this endpoint speaks WebSocket only")
    await socket.prepare(request)
    audience = Audience.of(ctx.caller)
    with request.app[HUB].subscription() as subscription:
        incoming = asyncio.create_task(_until_closed(socket))
        outgoing = asyncio.create_task(_forward(socket, subscription, audience))
        overflowed = asyncio.create_task(subscription.overflowed.wait())
        tasks = {incoming, outgoing, overflowed}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if overflowed in done and not socket.closed:
            await _close_too_slow(request, socket, ctx, subscription)
    return socket


async def _forward(socket: web.WebSocketResponse, subscription: Subscription, audience: Audience) -> None:
    while not socket.closed:
        message = _message(await subscription.next(), audience)
        if message is not None:
            await socket.send_json(message)


async def _close_too_slow(
    request: web.Request, socket: web.WebSocketResponse, ctx: Context, subscription: Subscription
) -> None:
    """A client that reads slower than calls happen: its backlog filled (it lost events), so it is
    closed with 1008 and a reason, to reconnect and catch up from GET /api/v1/calls. A client that does
    not read at all cannot even take the close frame: the connection is then cut."""
    log.warning(
        "live_events_client_too_slow",
        token_id=ctx.caller.token_id,
        backlog=SUBSCRIBER_BACKLOG,
        dropped=subscription.dropped,
    )
    try:
        async with asyncio.timeout(CLOSE_SECONDS):
            await socket.close(code=WSCloseCode.POLICY_VIOLATION, message=TOO_SLOW)
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()


async def _until_closed(socket: web.WebSocketResponse) -> None:
    async for message in socket:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            return


def _message(event: LiveEvent, audience: Audience) -> dict[str, Any] | None:
    """The event as this socket's audience may see it (api/visibility.py), or None."""
    if isinstance(event, CallCompleted):
        if not audience.sees_call(event.call):
            return None
        return {
            "type": "call.completed",
            "call": call_payload(StoredCall(event.call_id, event.call), event.entity),
        }
    if not isinstance(event, CallProgress) or event.kind not in PROGRESS_TYPES:
        return None
    if not audience.sees_progress(event):
        return None
    return {
        "type": PROGRESS_TYPES[event.kind],
        "pbx": event.pbx,
        "linkedid": event.pbx_call_id,
        "extension": event.extension,
        "direction": event.direction.value,
        "caller": event.caller,
        "callee": event.callee,
        "request_id": event.request_id,
        "entity": event.entity.view() if event.entity else None,
        "at": event.at.isoformat(),
    }
