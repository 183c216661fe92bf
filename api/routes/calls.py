"""Call history: filtered, sorted, cursor-paginated, as JSON or CSV; one call with its legs."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.cursors import CallCursor
from api.errors import NotFound
from api.keys import SESSIONS, SETTINGS
from api.operations import Api, Context
from api.schemas import CallDetailOut, CallOut, CallPage, CallQuery
from api.spreadsheet import inert
from api.visibility import Audience
from calltracking.calls.record import CallFilter, Direction, StoredCall
from calltracking.calls.repository import earliest_inbound_calls, get_call, search_calls
from calltracking.config import Settings
from calltracking.crm.match_repository import entity_refs, get_matches
from calltracking.numbers import normalize_number
from recordings.repository import recordings_of_calls

api = Api()
CSV = "text/csv"


@api.route(
    "GET",
    "/api/v1/calls",
    summary="Call history",
    tag="calls",
    query=CallQuery,
    responses={200: CallPage},
    extra_content={200: {CSV: {"schema": {"type": "string"}}}},
    description="Newest first by default. Pass `next_cursor` back as `cursor` for the next page. "
    "Send `Accept: text/csv` for a CSV export of the page. A manager token sees only its own calls. "
    "`text` finds calls whose transcript has every one of its words (PostgreSQL: in the transcript "
    "language's word forms; SQLite: as written); quotes and operators are only characters.",
)
async def list_calls(request: web.Request, ctx: Context) -> web.StreamResponse:
    query = ctx.query_as(CallQuery)
    page = await call_history(request.app[SESSIONS], request.app[SETTINGS], query, Audience.of(ctx.caller))
    if CSV in request.headers.get("Accept", ""):
        return _csv_response(page.items, page.next_cursor)
    return web.json_response(text=page.model_dump_json())


async def call_history(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, query: CallQuery, audience: Audience
) -> CallPage:
    """One page of the history as `audience` may see it: the API's list and the web interface's."""
    newest_first = query.sort == "-started_at"
    where = _filter(query, audience, settings)
    async with sessions() as session:
        page = await search_calls(
            session, where, query.limit + 1, newest_first=newest_first, after=_position(query.cursor)
        )
        ids = [stored.id for stored in page[: query.limit]]
        entities = await entity_refs(session, ids)
        recordings = await recordings_of_calls(session, ids)
        firsts = (
            await earliest_inbound_calls(
                session,
                [s.call.customer_number for s in page if s.call.customer_number is not None],
                started_from=query.from_,
                started_before=query.to,
            )
            if query.from_ is not None
            else None
        )
    items = [
        _unique_in_period(
            CallOut.of(stored, entities.get(stored.id), recordings.get(stored.id)), stored, firsts
        )
        for stored in page[: query.limit]
    ]
    next_cursor = CallCursor(items[-1].started_at, items[-1].id).encode() if len(page) > query.limit else None
    return CallPage(items=items, next_cursor=next_cursor)


@api.route(
    "GET",
    "/api/v1/calls/{call_id}",
    summary="One call, with its channels",
    tag="calls",
    path_params={"call_id": {"type": "integer", "minimum": 1}},
    responses={200: CallDetailOut, 404: None},
)
async def get_one_call(request: web.Request, ctx: Context) -> web.StreamResponse:
    call_id = int(request.match_info["call_id"])
    audience = Audience.of(ctx.caller)
    async with request.app[SESSIONS]() as session:
        stored = await get_call(session, call_id, manager=audience.call_manager)
        if stored is None:
            raise NotFound(f"no call {call_id}")
        entities = await entity_refs(session, [call_id])
        matches = await get_matches(session, [call_id])
        recordings = await recordings_of_calls(session, [call_id])
    detail = CallDetailOut.of_detail(
        stored, entities.get(call_id), matches.get(call_id), recordings.get(call_id)
    )
    return web.json_response(text=detail.model_dump_json())


def _filter(query: CallQuery, audience: Audience, settings: Settings) -> CallFilter:
    numbers: frozenset[str] = frozenset()
    if query.number:
        countries = {pbx.default_country for pbx in settings.pbxs}
        forms = {query.number.strip()} | {
            normalize_number(query.number, country) for country in countries
        } - {None}
        numbers = frozenset(form for form in forms if form)
    return CallFilter(
        started_from=query.from_,
        started_before=query.to,
        pbx=query.pbx,
        manager=query.manager if audience.sees_everything else audience.call_manager,
        direction=query.direction,
        status=query.status,
        numbers=numbers,
        did=query.did,
        has_recording=query.has_recording,
        entity=_entity(query.entity),
        text=query.text,
    )


def _entity(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    kind, external_id = value.split(":", 1)
    return kind, external_id


def _position(cursor: str | None) -> tuple[datetime, int] | None:
    """The query's pattern already held: every cursor it lets through decodes, within range."""
    if cursor is None:
        return None
    position = CallCursor.decode(cursor)
    return position.started_at, position.call_id


def _csv_response(items: list[CallOut], next_cursor: str | None) -> web.Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CallOut.model_fields))
    writer.writeheader()
    writer.writerows({name: inert(value) for name, value in row.items()} for row in call_rows(items))
    response = web.Response(text=buffer.getvalue(), content_type=CSV)
    if next_cursor:
        response.headers["X-Next-Cursor"] = next_cursor
    return response


def call_rows(items: list[CallOut]) -> list[dict[str, object]]:
    """The history's calls as flat rows (a cell per field), for CSV and Excel files."""
    return [{k: _csv_cell(v) for k, v in item.model_dump(mode="json").items()} for item in items]


def _csv_cell(value: object) -> object:
    if isinstance(value, list):
        return ";".join(map(str, value))
    if isinstance(value, dict) and "url" in value:  # the recording
        return value["url"]
    if isinstance(value, dict):  # the matched entity
        return f"{value.get('kind')}:{value.get('external_id')}"
    return value


def _unique_in_period(item: CallOut, stored: StoredCall, firsts: dict[str, datetime] | None) -> CallOut:
    call = stored.call
    if firsts is None or call.direction is not Direction.INBOUND or call.customer_number is None:
        return item
    item.unique_in_period = firsts.get(call.customer_number) == call.started_at
    return item
