"""Caller-ID lookup for the dialplan (see README, "Caller name and routing in the dialplan")."""

from __future__ import annotations

from aiohttp import web

from api.crm_schemas import LookupEntityOut, LookupManagerOut, LookupOut, LookupQuery
from api.keys import LOOKUP, SETTINGS
from api.operations import Api, Context
from calltracking.access.tokens import Role
from calltracking.crm.lookup import look_up_caller

api = Api()


@api.route(
    "GET",
    "/api/v1/lookup",
    summary="Who is calling, and whose extension should ring",
    tag="crm",
    roles=(Role.ADMIN, Role.INTEGRATION, Role.SUPERVISOR),
    query=LookupQuery,
    responses={200: LookupOut},
    extra_content={200: {"text/plain": {"schema": {"type": "string", "example": "Ivan Orlov|103"}}}},
    description="Matches like a call: exact number, then last digits; contact > company > lead. With "
    "`format=text` the answer is `name|extension` (both may be empty) for `CURL()` in the dialplan.",
)
async def lookup(request: web.Request, ctx: Context) -> web.StreamResponse:
    query = ctx.query_as(LookupQuery)
    info = await look_up_caller(request.app[LOOKUP], query.number, request.app[SETTINGS].crm)
    if query.format == "text":
        return web.Response(text=f"{info.display_name}|{info.extension}", content_type="text/plain")
    hit = info.hit
    out = LookupOut(
        number=query.number,
        e164=info.e164,
        found=hit is not None,
        name=info.display_name,
        extension=info.extension,
        entity=None
        if hit is None
        else LookupEntityOut(
            id=hit.candidate.entity_id,
            kind=hit.candidate.kind,
            external_id=hit.candidate.external_id,
            name=hit.candidate.name,
            matched_by=hit.candidate.matched_by.value,
        ),
        manager=None
        if hit is None or hit.candidate.owner is None
        else LookupManagerOut(
            external_id=hit.candidate.owner, name=hit.manager_name, extension=info.extension or None
        ),
    )
    return web.json_response(text=out.model_dump_json())
