"""Click-to-call: ring the manager, then the customer; follow the request until it is a call."""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from ami.originate import OriginateOrder
from api.errors import Conflict, Forbidden, InvalidRequest, NotFound, ServiceUnavailable
from api.keys import CLICK_TO_CALL, SESSIONS
from api.operations import Api, Context
from api.schemas import (
    EXTENSION_PATTERN,
    REQUEST_ID_PATTERN,
    OriginateAccepted,
    OriginateIn,
    OriginateStatusOut,
)
from calltracking.click_to_call import OriginateState, PbxUnavailable, RequestConflict
from calltracking.repositories.crm import extension_of, manager_of_token
from calltracking.tokens import Principal, Role

api = Api()
ROLES = [Role.ADMIN, Role.INTEGRATION, Role.MANAGER]
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 200


@api.route(
    "POST",
    "/api/v1/calls/originate",
    summary="Click-to-call: ring the manager, then the customer",
    tag="click-to-call",
    roles=ROLES,
    body=OriginateIn,
    responses={202: OriginateAccepted, 409: None, 503: None},
    headers={IDEMPOTENCY_HEADER: {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY}},
    description="Answers at once with the request id and a status URL; the PBX dials asynchronously. "
    "A retry with the same Idempotency-Key (or request_id) returns the first answer and never dials "
    "twice. 503 at once when the PBX is not connected. A manager token may only call from its own extension.",
)
async def place_call(request: web.Request, ctx: Context) -> web.StreamResponse:
    body = ctx.body_as(OriginateIn)
    principal = ctx.caller
    extension = body.extension
    if extension is None:
        async with request.app[SESSIONS]() as session:
            extension = await extension_of(session, body.who)
        if not re.fullmatch(EXTENSION_PATTERN, extension):
            raise InvalidRequest(f"no manager {body.who!r} in the CRM mirror, and it is not an extension")
    if principal.is_manager and extension != principal.manager:
        async with request.app[SESSIONS]() as session:
            own = await manager_of_token(session, principal.manager or "")
            theirs = await manager_of_token(session, extension)
        if own is None or own != theirs:
            raise Forbidden("a manager token may only place calls from its own extension")
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidRequest(f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    service = request.app[CLICK_TO_CALL]
    if body.pbx is not None and not service.has_pbx(body.pbx):
        raise InvalidRequest(f"no PBX named {body.pbx!r}")
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
    if state is None or not _visible(state, ctx.caller):
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


def _visible(state: OriginateState, principal: Principal) -> bool:
    return not principal.is_manager or state.extension == principal.manager


def _status_url(state: OriginateState) -> str:
    return f"/api/v1/calls/originate/{state.request_id}"
