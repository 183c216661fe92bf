"""The CRM mirror: managers, contacts, companies, leads and deals, upserted by the CRM's own ids one by one
(`PUT /api/v1/contacts/{external_id}`) or in bulk (`PUT /api/v1/contacts` with up to 10,000 items, each
checked on its own), read back, and removed (`DELETE` deactivates: history stays, matching stops).

The same five resources are declared from one table below, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.crm_schemas import BulkIn, BulkOut, DealOut, EntityOut, LeadPage, LeadQuery, ManagerOut, RowErrorOut
from api.errors import Conflict, NotFound
from api.keys import SESSIONS, SETTINGS
from api.operations import Api, Context, Handler
from calltracking.access.tokens import Role
from calltracking.calls.record import EntityKind
from calltracking.config import Settings
from calltracking.crm import repository as mirror
from calltracking.crm.mirror import (
    EXTERNAL_ID_PATTERN,
    CompanyIn,
    ContactIn,
    CrmInput,
    DealIn,
    LeadIn,
    ManagerIn,
    validate_rows,
)
from calltracking.crm.repository import UpsertResult
from calltracking.crm.sync import load_parties, remove_party

api = Api()
TAG = "crm"
WRITERS = (Role.ADMIN, Role.INTEGRATION)
READERS = (Role.ADMIN, Role.INTEGRATION, Role.SUPERVISOR)
EXTERNAL_ID = {"external_id": {"type": "string", "pattern": EXTERNAL_ID_PATTERN}}

Upsert = Callable[[AsyncSession, Sequence[Any], Settings, datetime], Awaitable[UpsertResult]]
Read = Callable[[AsyncSession, str], Awaitable[BaseModel | None]]
Remove = Callable[[AsyncSession, str, Settings, datetime], Awaitable[bool]]


@dataclass(frozen=True)
class Resource:
    plural: str
    singular: str
    item: type[CrmInput]
    out: type[BaseModel]
    upsert: Upsert
    read: Read
    remove: Remove


def _party(kind: EntityKind) -> tuple[Upsert, Read, Remove]:
    async def upsert(
        session: AsyncSession, items: Sequence[Any], settings: Settings, now: datetime
    ) -> UpsertResult:
        return await load_parties(session, items, settings.crm, now)

    async def read(session: AsyncSession, external_id: str) -> BaseModel | None:
        entity = await mirror.get_party(session, kind, external_id)
        return EntityOut.of(entity) if entity else None

    async def remove(session: AsyncSession, external_id: str, settings: Settings, now: datetime) -> bool:
        return await remove_party(session, kind, external_id, settings.crm, now)

    return upsert, read, remove


async def _upsert_managers(
    session: AsyncSession, items: Sequence[Any], _settings: Settings, now: datetime
) -> UpsertResult:
    return await mirror.upsert_managers(session, items, now)


async def _read_manager(session: AsyncSession, external_id: str) -> BaseModel | None:
    manager = await mirror.get_manager(session, external_id)
    return ManagerOut.of(manager) if manager else None


async def _remove_manager(
    session: AsyncSession, external_id: str, _settings: Settings, now: datetime
) -> bool:
    return await mirror.deactivate_manager(session, external_id, now)


async def _upsert_deals(
    session: AsyncSession, items: Sequence[Any], _settings: Settings, now: datetime
) -> UpsertResult:
    return await mirror.upsert_deals(session, items, now)


async def _read_deal(session: AsyncSession, external_id: str) -> BaseModel | None:
    deal = await mirror.get_deal(session, external_id)
    return DealOut.of(deal) if deal else None


async def _remove_deal(session: AsyncSession, external_id: str, _settings: Settings, now: datetime) -> bool:
    return await mirror.deactivate_deal(session, external_id, now)


RESOURCES = (
    Resource("managers", "manager", ManagerIn, ManagerOut, _upsert_managers, _read_manager, _remove_manager),
    Resource("contacts", "contact", ContactIn, EntityOut, *_party(EntityKind.CONTACT)),
    Resource("companies", "company", CompanyIn, EntityOut, *_party(EntityKind.COMPANY)),
    Resource("leads", "lead", LeadIn, EntityOut, *_party(EntityKind.LEAD)),
    Resource("deals", "deal", DealIn, DealOut, _upsert_deals, _read_deal, _remove_deal),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _external_id(request: web.Request, resource: Resource) -> str:
    """The path's id; its pattern was checked with the request (a path that breaks it is a 404)."""
    return request.match_info["external_id"]


def _named(name: str, handler: Handler) -> Handler:
    handler.__name__ = name
    return handler


def _declare(resource: Resource) -> None:
    collection = f"/api/v1/{resource.plural}"
    one = f"{collection}/{{external_id}}"

    async def bulk(request: web.Request, ctx: Context) -> web.StreamResponse:
        valid, errors = validate_rows(ctx.body_as(BulkIn).items, resource.item)
        result = UpsertResult()
        if valid:
            async with request.app[SESSIONS].begin() as session:
                result = await resource.upsert(session, valid, request.app[SETTINGS], _now())
        out = BulkOut(
            created=result.created,
            updated=result.updated,
            rejected=len(errors),
            errors=[RowErrorOut.of(error) for error in errors],
        )
        return web.json_response(text=out.model_dump_json())

    async def put_one(request: web.Request, ctx: Context) -> web.StreamResponse:
        external_id = _external_id(request, resource)
        item = ctx.body
        if item is None or getattr(item, "external_id", None) != external_id:
            # RFC 9110: a representation inconsistent with the resource it is PUT to is a conflict.
            raise Conflict("external_id in the body must be the one in the path")
        async with request.app[SESSIONS].begin() as session:
            result = await resource.upsert(session, [item], request.app[SETTINGS], _now())
            stored = await resource.read(session, external_id)
        if stored is None:
            raise NotFound(f"no {resource.singular} {external_id!r}")
        return web.json_response(text=stored.model_dump_json(), status=201 if result.created else 200)

    async def get_one(request: web.Request, _ctx: Context) -> web.StreamResponse:
        external_id = _external_id(request, resource)
        async with request.app[SESSIONS]() as session:
            stored = await resource.read(session, external_id)
        if stored is None:
            raise NotFound(f"no {resource.singular} {external_id!r}")
        return web.json_response(text=stored.model_dump_json())

    async def delete_one(request: web.Request, _ctx: Context) -> web.StreamResponse:
        external_id = _external_id(request, resource)
        async with request.app[SESSIONS].begin() as session:
            found = await resource.remove(session, external_id, request.app[SETTINGS], _now())
        if not found:
            raise NotFound(f"no {resource.singular} {external_id!r}")
        return web.Response(status=204)

    api.route(
        "PUT",
        collection,
        summary=f"Upsert {resource.plural} in bulk",
        tag=TAG,
        roles=WRITERS,
        body=BulkIn,
        is_bulk=True,
        responses={200: BulkOut},
        description=f"Each item is a `{resource.item.__name__}`, keyed by `external_id` (the CRM's id); a "
        "bad item is reported in `errors` by its index and the others are still stored. Idempotent.",
    )(_named(f"upsert_{resource.plural}", bulk))
    api.route(
        "PUT",
        one,
        summary=f"Upsert one {resource.singular}",
        tag=TAG,
        roles=WRITERS,
        body=resource.item,
        path_params=EXTERNAL_ID,
        responses={200: resource.out, 201: resource.out, 404: None, 409: None},
        description="The body's `external_id` must be the one in the path (409 otherwise).",
    )(_named(f"put_{resource.singular}", put_one))
    api.route(
        "GET",
        one,
        summary=f"One {resource.singular}",
        tag=TAG,
        roles=READERS,
        path_params=EXTERNAL_ID,
        responses={200: resource.out, 404: None},
    )(_named(f"get_{resource.singular}", get_one))
    api.route(
        "DELETE",
        one,
        summary=f"Deactivate a {resource.singular}",
        tag=TAG,
        roles=WRITERS,
        path_params=EXTERNAL_ID,
        responses={204: None, 404: None},
        description="Kept with its history, but no longer matched to calls (or given leads).",
    )(_named(f"delete_{resource.singular}", delete_one))


for _resource in RESOURCES:
    _declare(_resource)


@api.route(
    "GET",
    "/api/v1/leads",
    summary="Leads, oldest first (poll for new ones with created_since)",
    tag=TAG,
    roles=READERS,
    query=LeadQuery,
    responses={200: LeadPage},
    description="Leads created here for unknown callers have `origin: call` and an `external_id` of `ct-` "
    "and the number's digits; the CRM adopts one by sending it back under that id.",
)
async def list_leads(request: web.Request, ctx: Context) -> web.StreamResponse:
    query = ctx.query_as(LeadQuery)
    async with request.app[SESSIONS]() as session:
        leads = await mirror.list_leads(
            session, query.created_since, int(query.cursor) if query.cursor else None, query.limit + 1
        )
    items = [EntityOut.of(lead) for lead in leads[: query.limit]]
    next_cursor = str(items[-1].id) if len(leads) > query.limit else None
    return web.json_response(text=LeadPage(items=items, next_cursor=next_cursor).model_dump_json())
