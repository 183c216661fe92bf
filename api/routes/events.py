"""Live call events over a WebSocket: call.ringing (screen pop), call.answered, call.completed."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType, web

from api.errors import ApiError
from api.keys import HUB
from api.operations import Api, Context
from api.schemas import call_payload
from calltracking.calls import CallCompleted, CallProgress, LiveEvent, ProgressKind, StoredCall
from calltracking.tokens import Principal

api = Api()
PROGRESS_TYPES = {ProgressKind.RINGING: "call.ringing", ProgressKind.ANSWERED: "call.answered"}


class NotAWebSocket(ApiError):
    status = 400
    code = "websocket_expected"


@api.route(
    "GET",
    "/api/v1/events",
    summary="Live call events (WebSocket)",
    tag="events",
    responses={101: None, 400: None},
    description="Upgrade to a WebSocket to receive JSON messages `{type, ...}` with type call.ringing "
    "(the ringing extension, caller and callee: a screen pop), call.answered and call.completed (the call "
    "record). A manager token receives only events of its own extension. Browsers, which cannot set "
    "headers on a WebSocket, may pass the token as the `access_token` query parameter.",
)
async def live_events(request: web.Request, ctx: Context) -> web.StreamResponse:
    socket = web.WebSocketResponse(heartbeat=30.0)
    if not socket.can_prepare(request).ok:
        raise NotAWebSocket("this endpoint speaks WebSocket only")
    await socket.prepare(request)
    principal = ctx.caller
    with request.app[HUB].subscription() as subscription:
        incoming = asyncio.create_task(_until_closed(socket))
        try:
            while not socket.closed:
                upcoming = asyncio.create_task(subscription.next())
                await asyncio.wait({upcoming, incoming}, return_when=asyncio.FIRST_COMPLETED)
                if not upcoming.done():
                    upcoming.cancel()
                    break
                message = _message(upcoming.result(), principal)
                if message is not None:
                    await socket.send_json(message)
        finally:
            incoming.cancel()
    return socket


async def _until_closed(socket: web.WebSocketResponse) -> None:
    async for message in socket:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            return


def _message(event: LiveEvent, principal: Principal) -> dict[str, Any] | None:
    if isinstance(event, CallCompleted):
        call = event.call
        if principal.is_manager and principal.manager != call.manager and principal.manager not in call.rang:
            return None
        return {
            "type": "call.completed",
            "call": call_payload(StoredCall(event.call_id, call), event.entity),
        }
    if not isinstance(event, CallProgress) or event.kind not in PROGRESS_TYPES:
        return None
    if principal.is_manager and event.extension != principal.manager:
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
