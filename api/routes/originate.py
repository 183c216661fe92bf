"""Click-to-call: ring the manager, then the customer; follow the request until it is a call."""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from ami.originate import OriginateOrder
from api.errors import Conflict, Forbidden, NotFound, ServiceUnavailable
from api.keys import CLICK_TO_CALL, SESSIONS
from api.operations import Api, Context
from api.schemas import (
    EXTENSION_PATTERN,
    REQUEST_ID_PATTERN,
    OriginateAccepted,
    OriginateIn,
    OriginateStatusOut,
)
from api.visibility import Audience
from calltracking.access.tokens import Role
from calltracking.clicktocall.request import OriginateState, PbxUnavailable, RequestConflict
from calltracking.crm.repository import extension_of, manager_of_token

api = Api()
ROLES = [Role.ADMIN, Role.INTEGRATION, Role.MANAGER]
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,200}$"


@api.route(
    "POST",
    "/api/v1/calls/originate",
    summary="Click-to-call: ring the manager, then the customer",
    tag="click-to-call",
    roles=ROLES,
    body=OriginateIn,
    responses={202: OriginateAccepted, 404: None, 409: None, 503: None},
    headers={
        IDEMPOTENCY_HEADER: {
            "type": "string",
            "pattern": IDEMPOTENCY_KEY_PATTERN,
            "description": "printable ASCII, no spaces; a key is this token's own (another token's same "
            "key is another request)",
        }
    },
    description="Answers at once with the request id and a status URL; the PBX dials asynchronously. "
    "Give exactly one of `extension` or `manager`. A retry with the same Idempotency-Key (from the same "
    "token) or request_id returns the first answer and never dials twice; 409 if that request was for "
    "another extension or number. 404 for a `pbx` not configured, or a `manager` the CRM mirror does "
    "not know that is not an extension either. 503 at once when the PBX is not connected. A manager "
    "token may only call from its own extension (403).",
)
async def place_call(request: web.Request, ctx: Context) -> web.StreamResponse:
    body = ctx.body_as(OriginateIn)
    principal = ctx.caller
    extension = body.extension
    if extension is None:
        async with request.app[SESSIONS]() as session:
            extension = await extension_of(session, body.who)
        if not re.fullmatch(EXTENSION_PATTERN, extension):
            raise NotFound(f"no manager {body.who!r} in the CRM mirror, and it is not an extension")
    if principal.is_manager and extension != principal.manager:
        async with request.app[SESSIONS]() as session:
            own = await manager_of_token(session, principal.manager or "")
            theirs = await manager_of_token(session, extension)
        if own is None or own != theirs:
            raise Forbidden("a manager token may only place calls from its own extension")
    key = request.headers.get(IDEMPOTENCY_HEADER)  # its pattern was checked with the request
    service = request.app[CLICK_TO_CALL]
    if body.pbx is not None and not service.has_pbx(body.pbx):
        raise NotFound(f"no PBX named {body.pbx[:64]!r}")
    order = OriginateOrder(
        request_id=body.request_id or uuid.uuid4().hex, extension=extension, number=body.number
    )
    try:
        state, _ = await service.place(order, body.pbx, key, principal.token_id)
    except RequestConflict as exc:
        raise Conflict(str(exc)) from exc
    except PbxUnavailable as exc:
        raise ServiceUnavailable(
            f"PBX {exc.state.pbx} is not connected; nothing was dialled", {"request_id": exc.state.request_id}
        ) from exc
    accepted = OriginateAccepted(
        request_id=state.request_id, status=state.status.value, status_url=_status_url(state)
    )
    return web.json_response(accepted.model_dump(), status=202)


@api.route(
    "GET",
    "/api/v1/calls/originate/{request_id}",
    summary="Where a click-to-call request is",
    tag="click-to-call",
    roles=ROLES,
    path_params={"request_id": {"type": "string", "pattern": REQUEST_ID_PATTERN}},
    responses={200: OriginateStatusOut, 404: None},
)
async def originate_status(request: web.Request, ctx: Context) -> web.StreamResponse:
    state = await request.app[CLICK_TO_CALL].status(request.match_info["request_id"])
    if state is None or not Audience.of(ctx.caller).sees_request(state):
        raise NotFound("no such click-to-call request")
    out = OriginateStatusOut(
        request_id=state.request_id,
        pbx=state.pbx,
        extension=state.extension,
        number=state.number,
        status=state.status.value,
        reason=state.reason,
        call_id=state.call_id,
        created_at=state.created_at,
        updated_at=state.updated_at,
    )
    return web.json_response(text=out.model_dump_json())


def _status_url(state: OriginateState) -> str:
    return f"/api/v1/calls/originate/{state.request_id}"
